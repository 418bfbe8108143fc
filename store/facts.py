"""The K-visa fact timeline: one row per (page, field, value) with valid_from … valid_to.

"The value on date X" is one query; a change closes the old row and opens a new one in the same
transaction as the snapshot's analysis. Field labels and value formatting live here too, so the
crawler and the notifier say the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import Fact, Page

OFFICIAL_TIERS = ("decree", "qa", "ministry", "mission", "visa-centre")
LABELS = {
    "stay_duration": "stay per entry", "validity": "validity", "entries": "entries", "age_limit": "age limit",
    "education": "education", "extension": "extension / renewal", "institution_list": "recognised institutions",
    "documents": "required documents", "family": "family members", "fee": "fee", "effective_date": "effective date",
    "sponsor": "employer or inviting entity in China", "activities": "permitted activities",
    "residence_permit": "residence permit after entry",
}
LIST_FIELDS = ("institution_list", "activities")  # values are names joined by "; ", compared as sets
_UNITS = {"D": "day", "W": "week", "M": "month", "Y": "year", "TH": "hour", "TM": "minute", "TS": "second"}


class Observed(Protocol):
    @property
    def field(self) -> str: ...
    @property
    def value(self) -> str: ...
    @property
    def evidence(self) -> str: ...


@dataclass(frozen=True)
class FactChange:
    field: str
    old: str | None
    new: str | None
    evidence: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "old": self.old, "new": self.new, "evidence": self.evidence}
        if self.added or self.removed:
            out["added"], out["removed"] = list(self.added), list(self.removed)
        return out


def current(session: Session, page_id: str) -> dict[str, Fact]:
    rows = session.scalars(select(Fact).where(Fact.page_id == page_id, Fact.valid_to.is_(None)))
    return {row.field: row for row in rows}


def record(session: Session, page_id: str, snapshot_id: int, at: datetime, tier: str, observed: Iterable[Observed]) -> list[FactChange]:
    """Bring the page's timeline in line with what its snapshot says; return the changes."""
    now = current(session, page_id)
    seen = {fact.field: fact for fact in observed}
    changes: list[FactChange] = []
    for field in list(seen) + [f for f in now if f not in seen]:
        old, new = now.get(field), seen.get(field)
        if old is not None and new is not None and old.value == new.value:
            continue
        if old is not None:
            old.valid_to = at
        if new is not None:
            session.add(Fact(page_id=page_id, field=field, value=new.value, evidence=new.evidence, tier=tier,
                             snapshot_id=snapshot_id, valid_from=at))
        added, removed = _list_delta(field, old.value if old else None, new.value if new else None)
        changes.append(FactChange(field, old.value if old else None, new.value if new else None,
                                  (new or old).evidence, added, removed))  # type: ignore[union-attr]
    session.flush()
    return changes


def _list_delta(field: str, old: str | None, new: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Names added and removed (institutions, activities), when both sides are name lists (not document URLs)."""
    if field not in LIST_FIELDS:
        return (), ()
    names = lambda v: set() if not v or v.startswith("http") else set(v.split("; "))  # noqa: E731
    return tuple(sorted(names(new) - names(old))), tuple(sorted(names(old) - names(new)))


def as_of(session: Session, at: datetime | None = None, field: str | None = None) -> list[tuple[Fact, Page]]:
    """Every page's value of every field (or one field) at `at` (default: now)."""
    stmt = select(Fact, Page).join(Page, Page.id == Fact.page_id).order_by(Fact.field, Fact.page_id)
    if at is None:
        stmt = stmt.where(Fact.valid_to.is_(None))
    else:
        stmt = stmt.where(Fact.valid_from <= at, (Fact.valid_to.is_(None)) | (Fact.valid_to > at))
    if field is not None:
        stmt = stmt.where(Fact.field == field)
    return [(fact, page) for fact, page in session.execute(stmt).all()]


def disagreements(rows: list[tuple[Fact, Page]]) -> dict[str, dict[str, list[str]]]:
    """Fields whose official sources state different values: field → value → page ids."""
    by_field: dict[str, dict[str, list[str]]] = {}
    for fact, _page in rows:
        if fact.tier in OFFICIAL_TIERS:
            by_field.setdefault(fact.field, {}).setdefault(fact.value, []).append(fact.page_id)
    return {field: values for field, values in by_field.items() if len(values) > 1}


def humanize(field: str, value: str | None) -> str:
    """'P180D' → '180 days'; 'PT12H' → '12 hours'; '18-45' → 'ages 18–45'; other values as they are."""
    if value is None:
        return "—"
    if m := re.fullmatch(r"P(\d+)([DWMY])|PT(\d+)([HMS])", value):
        number, code = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), "T" + m.group(4))
        n, unit = int(number), _UNITS[code]
        return f"{n} {unit}{'s' if n != 1 else ''}"
    if field == "residence_permit" and re.fullmatch(r"(deadline|processing)=P\d+D(; (deadline|processing)=P\d+D)?", value):
        parts = dict(part.split("=") for part in value.split("; "))
        said = [f"apply within {humanize('', parts['deadline'])} of entry"] if "deadline" in parts else []
        said += [f"decided within {humanize('', parts['processing'])} (working days)"] if "processing" in parts else []
        return "; ".join(said)
    if field == "age_limit" and (m := re.fullmatch(r"(\d*)-(\d*)", value)):
        low, high = m.groups()
        return f"ages {low}–{high}" if low and high else (f"up to age {high}" if high else f"from age {low}")
    return value


def label(field: str) -> str:
    return LABELS.get(field, field)
