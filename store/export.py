"""Export snapshots, alerts and facts as JSON or CSV, so maintainers can take history elsewhere."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store import alerts as alert_store
from store.models import Alert, Fact, Snapshot

KINDS = ("snapshots", "alerts", "facts")


def rows(session: Session, kind: str, page_id: str | None = None, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Rows of one kind as plain dicts, oldest first."""
    if kind not in KINDS:
        raise ValueError(f"unknown export {kind!r}; valid: {', '.join(KINDS)}")
    model, stamp = {"snapshots": (Snapshot, Snapshot.first_seen), "alerts": (Alert, Alert.detected_at), "facts": (Fact, Fact.valid_from)}[kind]
    stmt = select(model).order_by(model.id)  # type: ignore[attr-defined]
    if page_id:
        stmt = stmt.where(model.page_id == page_id)  # type: ignore[attr-defined]
    if since:
        stmt = stmt.where(stamp >= since)
    for row in session.execute(stmt.execution_options(yield_per=200)).scalars():
        yield _as_dict(kind, row)


def _as_dict(kind: str, row: Any) -> dict[str, Any]:
    if kind == "alerts":
        return {**alert_store.to_json(row), "links": row.links, "from_snapshot_id": row.from_snapshot_id, "to_snapshot_id": row.to_snapshot_id}
    if kind == "snapshots":
        return {"id": row.id, "page_id": row.page_id, "hash": row.hash, "title": row.title, "first_seen": _iso(row.first_seen),
                "last_seen": _iso(row.last_seen), "content_type": row.content_type, "encoding": row.encoding, "text": row.text, "links": row.links}
    return {"id": row.id, "page_id": row.page_id, "field": row.field, "value": row.value, "tier": row.tier, "snapshot_id": row.snapshot_id,
            "valid_from": _iso(row.valid_from), "valid_to": _iso(row.valid_to), "evidence": row.evidence}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") + "Z" if moment else None


COLUMNS = {
    "alerts": ["id", "page_id", "url", "kind", "relevant", "detected_at", "facts", "summary", "diff", "backfilled", "links", "from_snapshot_id", "to_snapshot_id"],
    "snapshots": ["id", "page_id", "hash", "title", "first_seen", "last_seen", "content_type", "encoding", "text", "links"],
    "facts": ["id", "page_id", "field", "value", "tier", "snapshot_id", "valid_from", "valid_to", "evidence"],
}


def write(kind: str, records: Iterator[dict[str, Any]], fmt: str, out: IO[str]) -> int:
    """Write JSON (an array) or CSV (nested values as JSON; the header row even with no rows) to `out`; return the row count."""
    count = 0
    if fmt == "json":
        out.write("[")
        for count, record in enumerate(records, start=1):  # noqa: B007 - count is returned
            out.write(("," if count > 1 else "") + "\n" + json.dumps(record, ensure_ascii=False))
        out.write("\n]\n")
        return count
    writer = csv.DictWriter(out, fieldnames=COLUMNS[kind])
    writer.writeheader()
    for count, record in enumerate(records, start=1):  # noqa: B007 - count is returned
        writer.writerow({k: json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v for k, v in record.items()})
    return count
