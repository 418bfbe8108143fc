"""`kvwatch reprocess`: a history analysed by a weakened extractor is rebuilt to what a fresh analysis
says, historical transitions are stored as backfilled and not delivered, nothing is sent twice, and a
second run changes nothing."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import crawler.analyse
from crawler.analyse import analyse
from crawler.watchlist import PageSpec
from notifier.deliver import deliver
from notifier.subscribers import Subscriber
from store import pages
from store.db import open_store, session_scope
from store.models import Alert, Fact
from store.snapshots import Attempt, Capture, record
from tests.conftest import kvwatch, write_watchlist
from tests.receivers import SmtpServer

T0 = datetime(2026, 10, 1, 8, 0)
VERSIONS = [  # what an embassy page said, day by day
    "关于K字签证的说明\nK字签证有效期为5年。",
    "关于K字签证的说明\nK字签证有效期为5年。\n三、K字签证（外国青年科技人才）：入境次数：多次；每次停留期限：90日。",
    "关于K字签证的说明\nK字签证有效期为5年。\n三、K字签证（外国青年科技人才）：入境次数：多次；每次停留期限：180日。",
    "关于K字签证的说明\nK字签证有效期为5年。\n三、K字签证（外国青年科技人才）：入境次数：多次；每次停留期限：180日。\n办公时间调整。",
]
SUBSCRIBER = Subscriber(id="office", email=("office@kvwatch.test",))


def _build(db: str, weakened: bool, monkeypatch: pytest.MonkeyPatch, smtp: SmtpServer) -> None:
    """Store the versions as a crawl would, analysing and delivering after each one."""
    engine = open_store(db)
    with session_scope(engine) as s:
        pages.sync(s, [PageSpec(id="emb", url="http://127.0.0.1/emb.htm", tags={"tier": "mission"})])
    real = crawler.analyse.extract
    if weakened:  # the old extractor: blind to the stay per entry
        monkeypatch.setattr(crawler.analyse, "extract", lambda *a, **k: tuple(f for f in real(*a, **k) if f.field != "stay_duration"))
    for day, text in enumerate(VERSIONS):
        with session_scope(engine) as s:
            record(s, Attempt("emb", "http://127.0.0.1/emb.htm", "ok", T0 + timedelta(days=day)), Capture(hash=str(day), text=text, title="关于K字签证的说明"))
        analyse(engine)
        deliver(engine, (SUBSCRIBER,), now=T0 + timedelta(days=day, hours=1))
    monkeypatch.setattr(crawler.analyse, "extract", real)
    engine.dispose()


def _timeline(db: str) -> list[tuple[Any, ...]]:
    engine = open_store(db)
    with session_scope(engine) as s:
        rows = sorted((f.field, f.value, f.valid_from, f.valid_to) for f in s.scalars(select(Fact)))
    engine.dispose()
    return rows


def test_reprocess_rebuilds_the_timeline_and_sends_nothing_twice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpServer() as smtp:
        for key, value in smtp.env.items():
            monkeypatch.setenv(key, value)
        fresh, weak = f"sqlite:///{tmp_path / 'fresh.db'}", f"sqlite:///{tmp_path / 'weak.db'}"
        _build(fresh, False, monkeypatch, smtp)
        sent_fresh = len(smtp.inbox.messages)
        _build(weak, True, monkeypatch, smtp)
        sent_weak = len(smtp.inbox.messages) - sent_fresh
        assert ("stay_duration", "P90D") not in [(f, v) for f, v, *_ in _timeline(weak)]
        assert _timeline(weak) != _timeline(fresh)

        write_watchlist(tmp_path, '[[page]]\nid = "emb"\nurl = "http://127.0.0.1/emb.htm"\n')
        out = kvwatch("--db", weak, "reprocess", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        assert "2 backfilled alerts" in out.stdout, out.stdout
        assert _timeline(weak) == _timeline(fresh)

        alerts = json.loads(kvwatch("--db", weak, "alerts", "--json", "--kind", "fact", cwd=tmp_path).stdout)
        backfilled = [a for a in alerts if a["backfilled"]]
        assert [a["facts"] for a in backfilled] == [[{"field": "stay_duration", "old": None, "new": "P90D"}],
                                                    [{"field": "stay_duration", "old": "P90D", "new": "P180D"}]]
        assert [a["detected_at"] for a in backfilled] == ["2026-10-02T08:00:00Z", "2026-10-03T08:00:00Z"]  # when it happened

        engine = open_store(weak)
        deliver(engine, (SUBSCRIBER,), now=T0 + timedelta(days=5))
        assert len(smtp.inbox.messages) == sent_fresh + sent_weak, "reprocessing sent something (again)"
        with session_scope(engine) as s:
            before = [(a.id, a.dedupe_key, a.relevant, a.backfilled) for a in s.scalars(select(Alert).order_by(Alert.id))]
        engine.dispose()

        again = kvwatch("--db", weak, "reprocess", cwd=tmp_path)
        assert "0 backfilled alerts" in again.stdout and "0 relevance changes" in again.stdout
        assert _timeline(weak) == _timeline(fresh)
        engine = open_store(weak)
        with session_scope(engine) as s:
            assert [(a.id, a.dedupe_key, a.relevant, a.backfilled) for a in s.scalars(select(Alert).order_by(Alert.id))] == before
        engine.dispose()


def test_reprocess_one_page_from_a_date_and_unknown_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpServer() as smtp:
        for key, value in smtp.env.items():
            monkeypatch.setenv(key, value)
        weak = f"sqlite:///{tmp_path / 'weak.db'}"
        _build(weak, True, monkeypatch, smtp)
    write_watchlist(tmp_path, '[[page]]\nid = "emb"\nurl = "http://127.0.0.1/emb.htm"\n')
    out = kvwatch("--db", weak, "reprocess", "--page", "emb", "--since", "2026-10-03", cwd=tmp_path)
    assert out.returncode == 0 and "reprocessed 2 snapshots of 1 pages" in out.stdout, out.stdout + out.stderr
    stays = [(v, f) for field, v, f, _ in _timeline(weak) if field == "stay_duration"]
    assert stays == [("P180D", datetime(2026, 10, 3, 8, 0))]  # only history from the date on was re-read
    missing = kvwatch("--db", weak, "reprocess", "--page", "nope", cwd=tmp_path)
    assert missing.returncode == 1 and "no page with id 'nope'" in missing.stderr
