"""The data behind every page of `kvwatch web`, as plain dicts: the HTML pages render them and the JSON
API returns them, so the two never disagree. Read-only: nothing here writes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kvwatch.cli import iso
from store import alerts as alert_store
from store import facts as fact_store
from store import pages as page_store
from store.diff import DELETE, EQUAL, INSERT, diff
from store.errors import NotFound, UsageError
from store.models import Alert, Fact, Page, Snapshot
from store.snapshots import attempts, raw_body

FILTERS = ("kind", "relevant", "field", "page", "tag", "since")


def alert_filters(kind: str | None = None, relevant: bool = False, field: str | None = None, page: str | None = None,
                  tag: str | None = None, since: datetime | None = None) -> dict[str, Any]:
    """The filters of the alerts page, its feed, `/api/alerts` and `kvwatch feed`, in one shape."""
    return {"kind": kind or "", "relevant": "1" if relevant else "", "field": field or "", "page": page or "", "tag": tag or "", "since": since}


def safe_url(url: str) -> str:
    """Only http(s) URLs become links: a `javascript:` or `data:` URL in page text stays text."""
    return url if url.lower().startswith(("http://", "https://")) else ""


def now_view(session: Session) -> dict[str, Any]:
    """K visa now: per field, the current value per source, disagreements, and the latest fact alerts."""
    rows = fact_store.as_of(session)
    split = fact_store.disagreements(rows)
    fields: dict[str, dict[str, Any]] = {}
    for fact, page in rows:
        entry = fields.setdefault(fact.field, {"field": fact.field, "label": fact_store.label(fact.field), "sources": [],
                                               "disagree": fact.field in split})
        entry["sources"].append({"page_id": page.id, "page": page.name or page.id, "url": safe_url(page.url), "tier": fact.tier,
                                 "value": fact.value, "shown": fact_store.humanize(fact.field, fact.value), "since": iso(fact.valid_from),
                                 "evidence": fact.evidence, "snapshot_id": fact.snapshot_id})
    latest = list(session.scalars(select(Alert).where(Alert.kind == "fact").order_by(Alert.id.desc()).limit(10)))
    return {"fields": list(fields.values()), "alerts": [alert_json(a) for a in latest]}


def pages_view(session: Session, tag: str | None = None) -> dict[str, Any]:
    wanted = _tag(tag)
    tags: dict[str, dict[str, str]] = {page_id: page_tags for page_id, page_tags in session.execute(select(Page.id, Page.tags))}
    rows = []
    for health in page_store.health(session):
        page_tags = tags.get(health.id) or {}
        if wanted and page_tags.get(wanted[0]) != wanted[1]:
            continue
        rows.append({"id": health.id, "name": health.name or health.id, "url": safe_url(health.url), "tags": page_tags, "enabled": health.enabled,
                     "last_good": iso(health.last_good), "last_change": iso(health.last_change), "snapshots": health.snapshots,
                     "failures": health.failures, "reason": health.reason, "via": health.via or "plain", "region": health.region, "last_outcome": health.last_outcome})
    return {"tag": tag or "", "pages": rows}


def page_view(session: Session, page_id: str) -> dict[str, Any]:
    page = page_store.get(session, page_id)
    snaps = session.execute(select(Snapshot.id, Snapshot.first_seen, Snapshot.last_seen, Snapshot.title, func.length(Snapshot.text))
                            .where(Snapshot.page_id == page_id).order_by(Snapshot.id)).all()
    return {"id": page.id, "name": page.name or page.id, "url": safe_url(page.url), "tags": page.tags or {},
            "snapshots": [{"number": n, "id": s.id, "first_seen": iso(s.first_seen), "last_seen": iso(s.last_seen), "title": s.title, "chars": s[4]}
                          for n, s in enumerate(snaps, start=1)],
            "attempts": [{"started_at": iso(f.started_at), "outcome": f.outcome, "status": f.status, "via": f.via, "region": f.region or "", "reason": f.reason}
                         for f in attempts(session, page_id, limit=20)]}


def snapshot_view(session: Session, snapshot_id: int) -> dict[str, Any]:
    snap = _snapshot(session, snapshot_id)
    previous = session.scalar(select(func.max(Snapshot.id)).where(Snapshot.page_id == snap.page_id, Snapshot.id < snap.id))
    return {"id": snap.id, "page_id": snap.page_id, "title": snap.title, "text": snap.text, "first_seen": iso(snap.first_seen),
            "last_seen": iso(snap.last_seen), "region": snap.region, "previous": previous, "has_raw": snap.raw is not None,
            "links": [{"text": t, "url": safe_url(u)} for t, u in snap.links]}


def raw_view(session: Session, snapshot_id: int) -> tuple[bytes, str]:
    snap = _snapshot(session, snapshot_id)
    body = raw_body(snap)
    if body is None:
        raise NotFound(f"snapshot {snapshot_id}'s raw body was pruned (kvwatch prune --raw-older-than)")
    return body, snap.encoding if snap.encoding not in ("", "binary") else "utf-8"


def diff_view(session: Session, from_id: int, to_id: int) -> dict[str, Any]:
    """A diff between two snapshots of one page, at character level for Chinese (as `kvwatch diff`),
    with the two sides for a side-by-side view."""
    a, b = _snapshot(session, from_id), _snapshot(session, to_id)
    if a.page_id != b.page_id:
        raise UsageError(f"snapshots {from_id} and {to_id} belong to different pages ({a.page_id}, {b.page_id})")
    ops = diff(a.text, b.text).ops
    return {"page_id": a.page_id, "from": from_id, "to": to_id, "from_seen": iso(a.first_seen), "to_seen": iso(b.first_seen),
            "ops": [{"op": op, "text": text} for op, text in ops],
            "left": [{"op": op, "text": text} for op, text in ops if op != INSERT],
            "right": [{"op": op, "text": text} for op, text in ops if op != DELETE], "changed": any(op != EQUAL for op, _ in ops)}


def field_view(session: Session, field: str, at: datetime | None = None) -> dict[str, Any]:
    """A field across all sources over time; with `at`, what every source said then (and the snapshot that proves it)."""
    rows = session.execute(select(Fact, Page).join(Page, Page.id == Fact.page_id).where(Fact.field == field).order_by(Fact.valid_from, Fact.page_id)).all()
    timeline = [{"page_id": p.id, "page": p.name or p.id, "value": f.value, "shown": fact_store.humanize(field, f.value), "tier": f.tier,
                 "from": iso(f.valid_from), "to": iso(f.valid_to), "snapshot_id": f.snapshot_id, "evidence": f.evidence} for f, p in rows]
    then = [{"page_id": p.id, "page": p.name or p.id, "shown": fact_store.humanize(field, f.value), "snapshot_id": f.snapshot_id, "evidence": f.evidence}
            for f, p in fact_store.as_of(session, at, field)] if at else []
    return {"field": field, "label": fact_store.label(field), "timeline": timeline, "at": iso(at), "then": then}


def alerts_view(session: Session, filters: dict[str, Any], limit: int = 200) -> dict[str, Any]:
    """Alerts, newest first, filtered by kind, relevant, field, page, tag (key:value) and since."""
    stmt = select(Alert).order_by(Alert.id.desc())
    if filters.get("kind"):
        if filters["kind"] not in alert_store.KINDS:
            raise UsageError(f"unknown alert kind {filters['kind']!r} (valid kinds: {', '.join(alert_store.KINDS)})")
        stmt = stmt.where(Alert.kind == filters["kind"])
    if filters.get("relevant"):
        stmt = stmt.where(Alert.relevant.is_(True))
    if filters.get("page"):
        stmt = stmt.where(Alert.page_id == filters["page"])
    if filters.get("since"):
        stmt = stmt.where(Alert.detected_at >= filters["since"])
    wanted = _tag(filters.get("tag"))
    tags: dict[str, dict[str, str]] = {page_id: page_tags for page_id, page_tags in session.execute(select(Page.id, Page.tags))} if wanted else {}
    out = []
    for alert in session.scalars(stmt):
        if filters.get("field") and not any(f.get("field") == filters["field"] for f in alert.facts):
            continue
        if wanted and (tags.get(alert.page_id) or {}).get(wanted[0]) != wanted[1]:
            continue
        out.append(alert_json(alert))
        if len(out) >= limit:
            break
    return {"filters": {k: v for k, v in filters.items() if v}, "alerts": out}


def alert_view(session: Session, alert_id: int) -> dict[str, Any]:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise NotFound(f"no alert {alert_id}")
    out = alert_json(alert)
    if out["from_snapshot_id"] is None and alert.to_snapshot_id is not None:  # a fact alert: the version before, for its diff
        out["from_snapshot_id"] = session.scalar(select(func.max(Snapshot.id)).where(Snapshot.page_id == alert.page_id, Snapshot.id < alert.to_snapshot_id))
    return out


def alert_json(alert: Alert) -> dict[str, Any]:
    """The public JSON shape (`kvwatch alerts --json`), with the snapshots it links and its facts' evidence."""
    return {**alert_store.to_json(alert), "url": safe_url(alert.url), "from_snapshot_id": alert.from_snapshot_id, "to_snapshot_id": alert.to_snapshot_id,
            "evidence": [f.get("evidence", "") for f in alert.facts if f.get("evidence")],
            "facts": [{"field": f["field"], "old": f.get("old"), "new": f.get("new"), "label": fact_store.label(f["field"]),
                       "old_shown": fact_store.humanize(f["field"], f.get("old")), "new_shown": fact_store.humanize(f["field"], f.get("new"))}
                      for f in alert.facts]}


def _snapshot(session: Session, snapshot_id: int) -> Snapshot:
    snap = session.get(Snapshot, snapshot_id)
    if snap is None:
        raise NotFound(f"no snapshot {snapshot_id}")
    return snap


def _tag(tag: str | None) -> tuple[str, str] | None:
    if not tag:
        return None
    key, sep, value = tag.partition(":")
    if not sep or key not in page_store.TAG_KEYS:
        raise UsageError(f"tag filters look like country:ke (keys: {', '.join(page_store.TAG_KEYS)}), not {tag!r}")
    return key, value


__all__ = ["FILTERS", "alert_view", "alerts_view", "diff_view", "field_view", "now_view", "page_view", "pages_view", "raw_view", "snapshot_view"]
