"""Alerts: stored once per dedupe key, queried, and rendered as the public JSON shape.

Kinds: `content` (the main text changed), `new_link` (new links, listed), `health` (a page failing
N times in a row, and its recovery), `fact` (a K-visa fact appeared, changed or disappeared).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Alert, Snapshot

KINDS = ("content", "new_link", "health", "fact")


@dataclass(frozen=True)
class NewAlert:
    key: str
    page_id: str
    url: str
    kind: str
    relevant: bool
    summary: str
    diff: str = ""
    from_snapshot_id: int | None = None
    to_snapshot_id: int | None = None
    facts: tuple[dict[str, Any], ...] = ()
    links: tuple[tuple[str, str], ...] = field(default=())
    backfilled: bool = False


def add(session: Session, new: NewAlert, detected_at: datetime) -> Alert | None:
    """Insert the alert unless one with the same key exists (then None): derivation is idempotent."""
    if new.kind not in KINDS:
        raise ValueError(f"unknown alert kind {new.kind!r}; valid kinds: {', '.join(KINDS)}")
    if session.scalar(select(Alert.id).where(Alert.dedupe_key == new.key)) is not None:
        return None
    alert = Alert(
        dedupe_key=new.key, page_id=new.page_id, url=new.url, kind=new.kind, relevant=new.relevant,
        detected_at=detected_at, from_snapshot_id=new.from_snapshot_id, to_snapshot_id=new.to_snapshot_id,
        facts=list(new.facts), links=[list(link) for link in new.links], summary=new.summary, diff=new.diff,
        backfilled=new.backfilled,
    )
    session.add(alert)
    session.flush()
    return alert


def query(session: Session, since: datetime | None = None, page_id: str | None = None, kind: str | None = None) -> list[Alert]:
    """Alerts, oldest first, optionally filtered."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown alert kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    stmt = select(Alert).order_by(Alert.id)
    if since is not None:
        stmt = stmt.where(Alert.detected_at >= since)
    if page_id is not None:
        stmt = stmt.where(Alert.page_id == page_id)
    if kind is not None:
        stmt = stmt.where(Alert.kind == kind)
    return list(session.scalars(stmt))


def to_json(alert: Alert) -> dict[str, Any]:
    """The public, stable JSON shape of an alert (documented in the README)."""
    return {
        "id": alert.id,
        "page_id": alert.page_id,
        "url": alert.url,
        "kind": alert.kind,
        "relevant": alert.relevant,
        "detected_at": alert.detected_at.isoformat(timespec="seconds") + "Z",
        "facts": [{"field": f["field"], "old": f.get("old"), "new": f.get("new")} for f in alert.facts],
        "summary": alert.summary,
        "diff": alert.diff,
        "backfilled": alert.backfilled,
    }


def pending_snapshots(session: Session) -> list[Snapshot]:
    """Snapshots not yet analysed, oldest first (a crash before analysis leaves them here)."""
    return list(session.scalars(select(Snapshot).where(Snapshot.analysed_at.is_(None)).order_by(Snapshot.id)))


def earlier_snapshots(session: Session, snapshot: Snapshot, limit: int) -> list[Snapshot]:
    """The page's `limit` snapshots before `snapshot`, newest first."""
    return list(session.scalars(
        select(Snapshot).where(Snapshot.page_id == snapshot.page_id, Snapshot.id < snapshot.id)
        .order_by(Snapshot.id.desc()).limit(limit)
    ))
