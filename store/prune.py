"""Pruning: distinct snapshots are history and are kept forever; old fetch attempts and old raw
bodies go. Each page's newest fetch attempt is always kept (it carries the conditional-GET
validators and the page's health)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from store.models import Fetch, Snapshot


@dataclass(frozen=True)
class Pruned:
    fetches: int
    raw_bodies: int


def prune(session: Session, fetches_before: datetime | None, raw_before: datetime | None) -> Pruned:
    fetches = raw = 0
    if fetches_before is not None:
        newest = select(func.max(Fetch.id)).group_by(Fetch.page_id)
        keep_good = select(func.max(Fetch.id)).where(Fetch.outcome.in_(("ok", "not_modified"))).group_by(Fetch.page_id)
        result = session.execute(delete(Fetch).where(Fetch.started_at < fetches_before, Fetch.id.not_in(newest), Fetch.id.not_in(keep_good)))
        fetches = result.rowcount or 0
    if raw_before is not None:
        current = select(func.max(Snapshot.id)).group_by(Snapshot.page_id)
        result = session.execute(update(Snapshot).where(Snapshot.last_seen < raw_before, Snapshot.raw.is_not(None), Snapshot.id.not_in(current)).values(raw=None))
        raw = result.rowcount or 0
    return Pruned(fetches, raw)
