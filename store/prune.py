"""Pruning: distinct snapshots are history and are kept forever; old fetch attempts and old raw
bodies go. A page keeps every attempt from its newest good fetch on: that one (conditional-GET
validators) and the failure streak going on now (its health alert is keyed by the streak's first
attempt, so an outage pruned mid-way is never alerted twice)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from store.models import Fetch, Snapshot


def _streak_starts(session: Session) -> dict[str, int | None]:
    """Per page, the first fetch to keep: its newest good one (conditional-GET validators). Everything
    after it is the failure streak still going (a health alert is keyed by its first attempt), so
    pruning never restarts an outage. None: a page that never had a good fetch keeps every attempt."""
    ranked = select(Fetch.page_id, Fetch.id, func.row_number().over(partition_by=Fetch.page_id, order_by=Fetch.id.desc()).label("n")) \
        .where(Fetch.outcome.in_(("ok", "not_modified"))).subquery()
    kept = dict(session.execute(select(ranked.c.page_id, ranked.c.id).where(ranked.c.n == 1)).all())
    return {page_id: kept.get(page_id) for page_id in session.scalars(select(Fetch.page_id).distinct())}


@dataclass(frozen=True)
class Pruned:
    fetches: int
    raw_bodies: int


def prune(session: Session, fetches_before: datetime | None, raw_before: datetime | None) -> Pruned:
    fetches = raw = 0
    if fetches_before is not None:
        for page_id, keep_from in _streak_starts(session).items():
            if keep_from is None:
                continue  # never a good fetch: every attempt belongs to the open streak
            result = session.execute(delete(Fetch).where(Fetch.page_id == page_id, Fetch.started_at < fetches_before, Fetch.id < keep_from))
            fetches += getattr(result, "rowcount", 0) or 0
    if raw_before is not None:
        current = select(func.max(Snapshot.id)).group_by(Snapshot.page_id)
        result = session.execute(update(Snapshot).where(Snapshot.last_seen < raw_before, Snapshot.raw.is_not(None), Snapshot.id.not_in(current)).values(raw=None))
        raw = getattr(result, "rowcount", 0) or 0
    return Pruned(fetches, raw)
