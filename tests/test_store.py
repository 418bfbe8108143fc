"""The store on a real SQLite file and, when reachable, a real PostgreSQL server."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select

from crawler.watchlist import PageSpec
from store import pages
from store.db import open_store, schema_revision, session_scope
from store.errors import NotFound
from store.models import Fetch, Snapshot
from store.snapshots import Attempt, Capture, record, resolve, validators

T0 = datetime(2026, 11, 1, 8, 0, 0)


def _attempt(outcome: str, minutes: int, page: str = "p1", **kw: object) -> Attempt:
    return Attempt(page_id=page, url="http://127.0.0.1/p1", outcome=outcome, started_at=T0 + timedelta(minutes=minutes), **kw)  # type: ignore[arg-type]


def _capture(text: str) -> Capture:
    import hashlib

    return Capture(hash=hashlib.sha256(text.encode()).hexdigest(), text=text, raw=("<p>" + text + "</p>").encode())


@pytest.fixture
def engine(db_url: str):  # type: ignore[no-untyped-def]
    engine = open_store(db_url)
    with session_scope(engine) as s:
        pages.sync(s, [PageSpec(id="p1", url="http://127.0.0.1/p1"), PageSpec(id="p2", url="http://127.0.0.1/p2")])
    yield engine
    engine.dispose()


def test_migrations_build_the_schema_from_empty_and_are_idempotent(db_url: str) -> None:
    engine = open_store(db_url)
    assert {"page", "fetch", "snapshot", "alembic_version"} <= set(inspect(engine).get_table_names())
    current, head = schema_revision(engine)
    assert current == head
    open_store(db_url)  # second open: nothing to do, no error
    engine.dispose()


def test_a_quiet_page_polled_1000_times_adds_only_fetch_rows(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        record(s, _attempt("ok", 0, etag='"v1"'), _capture("停留期180日"))
    for i in range(1, 1000):
        with session_scope(engine) as s:
            outcome = "not_modified" if i % 2 else "ok"
            record(s, _attempt(outcome, i), _capture("停留期180日") if outcome == "ok" else None)
    with session_scope(engine) as s:
        assert s.scalar(select(func.count()).select_from(Snapshot)) == 1
        assert s.scalar(select(func.count()).select_from(Fetch)) == 1000
        snap = s.scalars(select(Snapshot)).one()
        assert snap.last_seen == T0 + timedelta(minutes=999)


def test_failures_never_change_what_the_page_currently_says(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        first = record(s, _attempt("ok", 0), _capture("停留期180日"))
        for i, outcome in enumerate(("blocked", "maintenance", "error"), start=1):
            assert record(s, _attempt(outcome, i, reason="x")).snapshot_id is None
        with pytest.raises(ValueError, match="only an ok fetch"):
            record(s, _attempt("error", 9), _capture(""))
    with session_scope(engine) as s:
        assert resolve(s, "p1", None).id == first.snapshot_id
        assert resolve(s, "p1", None).last_seen == T0


def test_a_changed_hash_adds_a_snapshot_and_a_b_a_keeps_three(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        ids = [record(s, _attempt("ok", i), _capture(t)).snapshot_id for i, t in enumerate(["A", "B", "A", "A"])]
    assert ids[0] != ids[1] != ids[2] and ids[2] == ids[3]
    with session_scope(engine) as s:
        assert resolve(s, "p1", "2026-11-01T08:01").text == "B"
        assert resolve(s, "p1", str(ids[0])).text == "A"
        with pytest.raises(NotFound):
            resolve(s, "p1", "2026-10-01")
        with pytest.raises(NotFound):
            resolve(s, "p2", str(ids[0]))  # another page's snapshot


def test_validators_come_from_the_last_good_fetch_only(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        record(s, _attempt("ok", 0, etag='"e1"', last_modified="Mon, 01 Jan 2026 00:00:00 GMT"), _capture("x"))
        record(s, _attempt("error", 1, etag='"broken"'))
        assert validators(s, "p1") == ('"e1"', "Mon, 01 Jan 2026 00:00:00 GMT")
        record(s, _attempt("not_modified", 2))
        assert validators(s, "p1") == ('"e1"', "Mon, 01 Jan 2026 00:00:00 GMT")
        assert validators(s, "p2") == (None, None)


def test_pages_removed_from_the_watchlist_are_disabled_not_deleted(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        record(s, _attempt("ok", 0, page="p2"), _capture("x"))
        pages.sync(s, [PageSpec(id="p1", url="http://127.0.0.1/p1")])
    with session_scope(engine) as s:
        health = {h.id: h for h in pages.health(s)}
        assert health["p2"].enabled is False and health["p2"].snapshots == 1
        assert health["p1"].enabled is True


def test_health_counts_consecutive_failures_since_the_last_good_fetch(engine) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        record(s, _attempt("error", 0, reason="HTTP 502 server error"))
        record(s, _attempt("ok", 1), _capture("x"))
        record(s, _attempt("blocked", 2, reason="HTTP 412"))
        record(s, _attempt("error", 3, reason="timeout after 30 s"))
    with session_scope(engine) as s:
        p1 = {h.id: h for h in pages.health(s)}["p1"]
    assert (p1.failures, p1.reason, p1.failing_since) == (2, "timeout after 30 s", T0 + timedelta(minutes=2))
    assert p1.last_good == T0 + timedelta(minutes=1)


def test_the_head_revision_constant_is_the_newest_migration(tmp_path: Path) -> None:
    from store.db import HEAD, make_engine, schema_revision

    engine = make_engine(f"sqlite:///{tmp_path / 'h.db'}")
    assert schema_revision(engine)[1] == HEAD  # commands skip Alembic when the database is at HEAD
    engine.dispose()


def test_migration_0009_says_whether_each_current_snapshot_was_a_whole_document(tmp_path: Path) -> None:
    """Snapshots stored before `snapshot.complete` existed get it from their raw body, so the next fetch
    recognises a cut-off body as before (one whole, one cut, one PDF left unknown)."""
    import zstandard
    from alembic import command
    from sqlalchemy import text

    from store.db import alembic_config, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    command.upgrade(alembic_config(engine), "0008")
    z = zstandard.ZstdCompressor()
    with engine.begin() as conn:
        for page, body, encoding in (("whole", b"<html><body><p>K</p></body></html>", "utf-8"), ("cut", b"<html><body><p>K", "utf-8"),
                                     ("pdf", b"%PDF-1.4 ...", "binary")):
            conn.execute(text("INSERT INTO page (id, url, name, kind, tags, options, enabled, created_at, updated_at) "
                              "VALUES (:p, 'http://127.0.0.1/', '', 'auto', '{}', '{}', 1, '2026-01-01', '2026-01-01')"), {"p": page})
            conn.execute(text("INSERT INTO snapshot (page_id, hash, title, text, links, content_type, encoding, headers, raw, raw_codec, region, "
                              "first_seen, last_seen) VALUES (:p, 'h', '', 'K', '[]', '', :e, '{}', :r, 'zstd', '', '2026-01-01', '2026-01-01')"),
                         {"p": page, "e": encoding, "r": z.compress(body)})
    command.upgrade(alembic_config(engine), "head")
    with engine.connect() as conn:
        complete = dict(conn.execute(text("SELECT page_id, complete FROM snapshot")).all())
    engine.dispose()
    assert complete == {"whole": 1, "cut": 0, "pdf": None}
