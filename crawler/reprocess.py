"""`kvwatch reprocess`: analysis re-run over stored snapshots after the extractor improves, with no fetch.

For each page (or one, from a date on): the K-visa fact timeline is rebuilt to what the current
extractor reads in each snapshot, in order; a transition it finds that no stored alert holds becomes
a `fact` alert stamped with its snapshot's time and marked `backfilled` (not queued for delivery,
unless `deliver_backfill`); content alerts get their relevance recomputed, and one that becomes
K-relevant is marked backfilled too. Alerts already stored, and everything already delivered, stay
as they are. A second run finds the same timeline and adds nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from crawler.analyse import WINDOW, compare, fact_alert_for, record_facts, relevance, version
from store import alerts as alert_store
from store.db import session_scope
from store.models import Alert, Fact, Page, Snapshot

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reprocessed:
    pages: int
    snapshots: int
    backfilled: int
    relevance_changed: int
    timeline_rows: int


def reprocess(engine: Engine, page_id: str | None = None, since: datetime | None = None, deliver_backfill: bool = False) -> Reprocessed:
    with session_scope(engine) as session:
        ids = [page_id] if page_id else list(session.scalars(select(Page.id).order_by(Page.id)))
    totals = [0, 0, 0, 0]
    for pid in ids:
        with session_scope(engine) as session:  # one transaction per page: a page is rebuilt whole or not at all
            counts = _page(session, session.get(Page, pid), since, deliver_backfill)  # type: ignore[arg-type]
        totals = [a + b for a, b in zip(totals, counts)]
    return Reprocessed(len(ids), *totals)


def _page(session: Session, page: Page, since: datetime | None, deliver_backfill: bool) -> tuple[int, int, int, int]:
    snaps = list(session.scalars(select(Snapshot).where(Snapshot.page_id == page.id).order_by(Snapshot.id)))
    if since is not None:
        session.execute(delete(Fact).where(Fact.page_id == page.id, Fact.valid_from >= since))
        for row in session.scalars(select(Fact).where(Fact.page_id == page.id, Fact.valid_to >= since)):
            row.valid_to = None  # reopened: the rebuild decides when it ends
        snaps = [s for s in snaps if s.first_seen >= since]
    else:
        session.execute(delete(Fact).where(Fact.page_id == page.id))
    session.flush()
    backfilled = flipped = 0
    for snap in snaps:
        changes = record_facts(session, page, snap)
        stored = session.scalars(select(Alert).where(Alert.page_id == page.id, Alert.kind == "fact", Alert.to_snapshot_id == snap.id)).all()
        known = {(f["field"], f.get("old"), f.get("new")) for alert in stored for f in alert.facts}
        missing = [c for c in changes if (c.field, c.old, c.new) not in known]  # transitions no stored alert tells
        suffix = ":backfill:" + ",".join(sorted(c.field for c in missing)) if stored else ""
        new = fact_alert_for(page, snap, missing, suffix, baseline=snap.id == snaps[0].id and since is None)
        if new is not None and alert_store.add(session, replace(new, backfilled=not deliver_backfill), snap.first_seen):
            backfilled += 1
        flipped += _relevance(session, page, snap, deliver_backfill)
    rows = len(session.scalars(select(Fact.id).where(Fact.page_id == page.id)).all())
    log.info("reprocessed %d snapshots: %d backfilled alerts", len(snaps), backfilled, extra={"page": page.id})
    return len(snaps), backfilled, flipped, rows


def _relevance(session: Session, page: Page, snap: Snapshot, deliver_backfill: bool) -> int:
    """Recompute the K-relevance of this snapshot's content alert; 1 if it changed."""
    alert = session.scalars(select(Alert).where(Alert.to_snapshot_id == snap.id, Alert.kind.in_(("content", "new_link")))).first()
    if alert is None:
        return 0
    earlier = alert_store.earlier_snapshots(session, snap, WINDOW)
    if not earlier:
        return 0
    ignore = tuple((page.options or {}).get("ignore", ()))
    history = [version(s, ignore) for s in earlier]
    cur = version(snap, ignore)
    now_relevant = relevance(snap.title, history[0], cur, compare(history[0], cur, history, listing=page.kind == "listing"))
    if now_relevant == alert.relevant:
        return 0
    alert.relevant = now_relevant
    if now_relevant and not deliver_backfill:
        alert.backfilled = True  # newly relevant history is not fresh news
    return 1
