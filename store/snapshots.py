"""Fetch attempts and snapshots. Only an `ok` attempt can create a snapshot, and only when the
page's normalized text hash differs from its current snapshot; otherwise `last_seen` moves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import zstandard
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.errors import NotFound, UsageError
from store.models import Fetch, Snapshot

_ZSTD_LEVEL = 3


@dataclass(frozen=True)
class Attempt:
    """What happened when a page was fetched."""

    page_id: str
    url: str
    outcome: str
    started_at: datetime
    status: int | None = None
    reason: str = ""
    bytes: int = 0
    duration_ms: int = 0
    etag: str | None = None
    last_modified: str | None = None
    via: str = "plain"  # plain | browser
    body_hash: str | None = None  # SHA-256 of the body (ok fetches)
    region: str | None = None  # the region of the worker that fetched it (a distributed cycle); None on one machine
    cycle: str | None = None  # the distributed cycle it belongs to


@dataclass(frozen=True)
class Capture:
    """What an `ok` attempt said: normalized text and links, plus the raw body."""

    hash: str
    text: str
    title: str = ""
    links: tuple[tuple[str, str], ...] = ()
    content_type: str = ""
    encoding: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes = b""
    region: str = ""
    complete: bool | None = None  # an HTML body that ended as a whole document does; None for PDFs and the like


@dataclass(frozen=True)
class Recorded:
    fetch_id: int
    snapshot_id: int | None
    new_snapshot: bool


def current(session: Session, page_id: str) -> Snapshot | None:
    """The page's current snapshot: the latest distinct state seen by an `ok` fetch."""
    return session.scalars(
        select(Snapshot).where(Snapshot.page_id == page_id).order_by(Snapshot.id.desc()).limit(1)
    ).first()


def record(session: Session, attempt: Attempt, capture: Capture | None = None) -> Recorded:
    """Store one attempt; store or confirm a snapshot for `ok` and `not_modified` attempts."""
    if capture is not None and attempt.outcome != "ok":
        raise ValueError(f"{attempt.page_id}: only an ok fetch can carry content, not {attempt.outcome!r}")
    fetch = Fetch(
        page_id=attempt.page_id, url=attempt.url, outcome=attempt.outcome, started_at=attempt.started_at,
        status=attempt.status, reason=attempt.reason, bytes=attempt.bytes, duration_ms=attempt.duration_ms,
        etag=attempt.etag if attempt.outcome == "ok" else None,
        last_modified=attempt.last_modified if attempt.outcome == "ok" else None, via=attempt.via,
        body_hash=attempt.body_hash if attempt.outcome == "ok" else None, region=attempt.region, cycle=attempt.cycle,
    )
    session.add(fetch)
    snapshot_id, new = None, False
    if attempt.outcome in ("ok", "not_modified"):
        latest = session.execute(  # id and hash only: the text and raw body stay in the database
            select(Snapshot.id, Snapshot.hash).where(Snapshot.page_id == attempt.page_id).order_by(Snapshot.id.desc()).limit(1)
        ).first()
        if capture is not None and (latest is None or latest.hash != capture.hash):
            snap, new = _new_snapshot(attempt, capture), True
            session.add(snap)
            session.flush()
            snapshot_id = snap.id
        elif latest is not None:
            snapshot_id = latest.id
            session.execute(update(Snapshot).where(Snapshot.id == latest.id).values(last_seen=attempt.started_at))
            if attempt.outcome == "not_modified":
                previous = validators(session, attempt.page_id)
                fetch.etag, fetch.last_modified = previous
    fetch.snapshot_id = snapshot_id
    session.flush()
    return Recorded(fetch_id=fetch.id, snapshot_id=snapshot_id, new_snapshot=new)


def _new_snapshot(attempt: Attempt, capture: Capture) -> Snapshot:
    # a copy of its own size: zstandard's result keeps its worst-case allocation, and a batch holds 100 of them
    raw = bytes(memoryview(zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(capture.raw))) if capture.raw else None
    return Snapshot(
        page_id=attempt.page_id, hash=capture.hash, title=capture.title, text=capture.text,
        links=[list(link) for link in capture.links], content_type=capture.content_type,
        encoding=capture.encoding, headers=dict(capture.headers), raw=raw, raw_codec="zstd", region=capture.region,
        complete=capture.complete, first_seen=attempt.started_at, last_seen=attempt.started_at,
    )


def raw_body(snapshot: Snapshot) -> bytes | None:
    """The snapshot's raw body, decompressed (None once pruned)."""
    if snapshot.raw is None:
        return None
    if snapshot.raw_codec != "zstd":
        raise ValueError(f"snapshot {snapshot.id}: unknown codec {snapshot.raw_codec!r}")
    return zstandard.ZstdDecompressor().decompress(snapshot.raw)


def validators(session: Session, page_id: str) -> tuple[str | None, str | None]:
    """(ETag, Last-Modified) of the page's last `ok` or confirmed `not_modified` fetch."""
    row = session.execute(
        select(Fetch.etag, Fetch.last_modified)
        .where(Fetch.page_id == page_id, Fetch.outcome.in_(("ok", "not_modified")))
        .where((Fetch.etag.is_not(None)) | (Fetch.last_modified.is_not(None)))
        .order_by(Fetch.id.desc()).limit(1)
    ).first()
    return (row[0], row[1]) if row else (None, None)


AFTER_PLAIN = "browser, after a blocked plain fetch"  # a browser fetch's reason starts so


@dataclass(frozen=True)
class BrowserMemory:
    """Whether the page's last good fetch needed the browser, and when a plain fetch was last tried."""

    needed: bool = False
    plain_tried: datetime | None = None


def browser_memory(session: Session, page_id: str) -> BrowserMemory:
    needed = session.scalar(
        select(Fetch.via).where(Fetch.page_id == page_id, Fetch.outcome.in_(("ok", "not_modified"))).order_by(Fetch.id.desc()).limit(1)
    ) == "browser"
    tried = session.scalar(select(func.max(Fetch.started_at)).where(
        Fetch.page_id == page_id, (Fetch.via == "plain") | Fetch.reason.startswith(AFTER_PLAIN)))
    return BrowserMemory(needed, tried)


@dataclass(frozen=True)
class PlanState:
    """What planning a page's next fetch needs from the store, in two queries: its last good fetch
    (validators, how it was fetched), and what its current snapshot said."""

    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None  # the last good fetch's body (when it was an ok fetch)
    memory: BrowserMemory = BrowserMemory()
    title: str = ""
    text: str = ""
    region: str = ""
    complete: bool | None = None
    has_snapshot: bool = False


def plan_state(session: Session, page_id: str) -> PlanState:
    good = session.execute(
        select(Fetch.etag, Fetch.last_modified, Fetch.via, Fetch.body_hash).where(Fetch.page_id == page_id, Fetch.outcome.in_(("ok", "not_modified")))
        .order_by(Fetch.id.desc()).limit(1)
    ).first()
    memory = browser_memory(session, page_id) if good is not None and good.via == "browser" else BrowserMemory()
    snap = session.execute(
        select(Snapshot.title, Snapshot.text, Snapshot.region, Snapshot.complete)
        .where(Snapshot.page_id == page_id).order_by(Snapshot.id.desc()).limit(1)
    ).first()
    etag, last_modified, body_hash = (good.etag, good.last_modified, good.body_hash) if good is not None else (None, None, None)
    if snap is None:
        return PlanState(etag, last_modified, None, memory)
    return PlanState(etag, last_modified, body_hash, memory, snap.title, snap.text, snap.region, snap.complete, True)


def history(session: Session, page_id: str) -> list[Snapshot]:
    """Every distinct snapshot of a page, oldest first."""
    return list(session.scalars(select(Snapshot).where(Snapshot.page_id == page_id).order_by(Snapshot.id)))


def attempts(session: Session, page_id: str, limit: int = 50) -> list[Fetch]:
    """The page's latest fetch attempts, newest first."""
    return list(session.scalars(select(Fetch).where(Fetch.page_id == page_id).order_by(Fetch.id.desc()).limit(limit)))


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?$")


def resolve(session: Session, page_id: str, at: str | None) -> Snapshot:
    """A snapshot by its number on the page (1 is the first: `kvwatch history` shows them), by global id
    (`id:123`, as links and JSON carry), the one current at an ISO date/time (UTC), or the current one."""
    if at is None:
        snap = current(session, page_id)
    elif at.isdigit():
        snap = session.scalars(select(Snapshot).where(Snapshot.page_id == page_id).order_by(Snapshot.id).offset(int(at) - 1).limit(1)).first() \
            if int(at) >= 1 else None
    elif at.startswith("id:") and at[3:].isdigit():
        snap = session.get(Snapshot, int(at[3:]))
        snap = snap if snap is not None and snap.page_id == page_id else None
    elif _DATE.match(at):
        moment = datetime.fromisoformat(at if len(at) > 10 else at + "T23:59:59")
        snap = session.scalars(
            select(Snapshot).where(Snapshot.page_id == page_id, Snapshot.first_seen <= moment)
            .order_by(Snapshot.id.desc()).limit(1)
        ).first()
    else:
        raise UsageError(f"{at!r} is neither a snapshot number (1, 2, …), an id (id:123) nor a date like 2026-11-25 or 2026-11-25T10:00")
    if snap is None:
        raise NotFound(f"page {page_id!r} has no snapshot" + (f" at {at}" if at else " yet"))
    return snap
