"""Pages: synced from the watchlist; their health is derived from fetch attempts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.db import utcnow
from store.errors import NotFound
from store.models import Fetch, Page, Snapshot

# the tags a watched page may carry (and a subscriber filter on); city and kind come with discovered missions
TAG_KEYS = ("agency", "country", "language", "tier", "city", "kind")
GOOD_OUTCOMES = ("ok", "not_modified")
NEUTRAL_OUTCOMES = ("interrupted",)  # the crawl stopped before the page: neither good nor a failure


class PageConfig(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def tags(self) -> dict[str, str]: ...
    @property
    def enabled(self) -> bool: ...


@dataclass(frozen=True)
class PageHealth:
    id: str
    url: str
    name: str
    enabled: bool
    last_fetch: datetime | None
    last_outcome: str | None
    last_good: datetime | None
    last_change: datetime | None
    snapshots: int
    failures: int          # consecutive failed attempts since the last good one
    failing_since: datetime | None
    reason: str            # the latest failure's reason, if failing
    moved_to: str = ""     # the URL the page now answers at, when it redirects
    via: str = ""          # how the last attempt fetched it: plain or browser
    region: str = ""       # the region of the worker that made the last attempt (distributed cycles)


@dataclass(frozen=True)
class PageRecord:
    """A page not in the watchlist: a linked notice or document found on a watched page."""

    id: str
    url: str
    name: str = ""
    kind: str = "auto"
    tags: dict[str, str] | None = None
    options: dict[str, Any] | None = None


def ensure(session: Session, record: PageRecord) -> None:
    """Create or refresh a linked page's row (it is managed by its parent, not the watchlist)."""
    row = session.get(Page, record.id)
    now = utcnow()
    if row is None:
        row = Page(id=record.id, created_at=now)
        session.add(row)
    row.url, row.name, row.kind = record.url, record.name, record.kind
    row.tags, row.options, row.enabled, row.updated_at = dict(record.tags or {}), dict(record.options or {}), True, now
    session.flush()


def sync(session: Session, pages: Iterable[PageConfig], options: dict[str, dict[str, Any]] | None = None) -> None:
    """Upsert watchlist pages; pages no longer listed are disabled (their history is kept)."""
    now, listed = utcnow(), set()
    existing = {p.id: p for p in session.scalars(select(Page))}
    for spec in pages:
        listed.add(spec.id)
        row = existing.get(spec.id) or Page(id=spec.id, created_at=now)
        row.url, row.name, row.kind, row.tags = spec.url, spec.name, spec.kind, dict(spec.tags)
        row.options = (options or {}).get(spec.id, {})
        row.enabled, row.updated_at = spec.enabled, now
        session.add(row)
    for page_id, row in existing.items():
        parent = (row.options or {}).get("parent")
        if page_id not in listed and row.enabled and (parent is None or parent not in listed):
            row.enabled, row.updated_at = False, now


def get(session: Session, page_id: str) -> Page:
    page = session.get(Page, page_id)
    if page is None:
        raise NotFound(f"no page with id {page_id!r} (see `kvwatch pages`)")
    return page


def failure_streak(session: Session, page_id: str) -> list[Fetch]:
    """The failed attempts since the page's last good one, oldest first."""
    last_good = session.scalar(
        select(func.max(Fetch.id)).where(Fetch.page_id == page_id, Fetch.outcome.in_(GOOD_OUTCOMES))
    )
    query = select(Fetch).where(Fetch.page_id == page_id, Fetch.outcome.not_in(NEUTRAL_OUTCOMES)).order_by(Fetch.id)
    if last_good is not None:
        query = query.where(Fetch.id > last_good)
    return list(session.scalars(query))


def previous_failure_streak(session: Session, page_id: str) -> list[Fetch]:
    """The failed attempts just before the page's last good one (the streak that last ended)."""
    goods = list(session.scalars(
        select(Fetch.id).where(Fetch.page_id == page_id, Fetch.outcome.in_(GOOD_OUTCOMES)).order_by(Fetch.id.desc()).limit(2)
    ))
    if not goods:
        return []
    query = select(Fetch).where(Fetch.page_id == page_id, Fetch.id < goods[0], Fetch.outcome.not_in(NEUTRAL_OUTCOMES)).order_by(Fetch.id)
    if len(goods) > 1:
        query = query.where(Fetch.id > goods[1])
    return list(session.scalars(query))


def last_attempts(session: Session) -> dict[str, datetime]:
    """Each page's latest fetch attempt time."""
    return dict(session.execute(select(Fetch.page_id, func.max(Fetch.started_at)).group_by(Fetch.page_id)).all())


def health(session: Session) -> list[PageHealth]:
    """One row per page: last good fetch, last change, consecutive failures and why."""
    rows = []
    for page in session.scalars(select(Page).order_by(Page.id)):
        last = session.scalars(select(Fetch).where(Fetch.page_id == page.id).order_by(Fetch.id.desc()).limit(1)).first()
        last_good = session.scalar(
            select(func.max(Fetch.started_at)).where(Fetch.page_id == page.id, Fetch.outcome.in_(GOOD_OUTCOMES))
        )
        last_change = session.scalar(select(func.max(Snapshot.first_seen)).where(Snapshot.page_id == page.id))
        count = session.scalar(select(func.count()).select_from(Snapshot).where(Snapshot.page_id == page.id)) or 0
        streak = failure_streak(session, page.id)
        rows.append(PageHealth(
            id=page.id, url=page.url, name=page.name, enabled=page.enabled,
            last_fetch=last.started_at if last else None, last_outcome=last.outcome if last else None,
            last_good=last_good, last_change=last_change, snapshots=count, failures=len(streak),
            failing_since=streak[0].started_at if streak else None,
            reason=streak[-1].reason if streak else "",
            moved_to=last.url if last and last.outcome in GOOD_OUTCOMES and last.url != page.url else "",
            via=last.via if last else "", region=(last.region or "") if last else "",
        ))
    return rows


def followed_missions(session: Session, tags: Iterable[tuple[str, str]] = (), page_ids: Iterable[str] = ()) -> list[str]:
    """The missions (pages tagged agency = "mission", as `kvwatch discover` writes them) a subscriber's
    filters follow, among the store's enabled pages: "ke embassy", "us losangeles consulate-general"…"""
    rows = session.execute(select(Page.id, Page.tags).where(Page.enabled.is_(True)).order_by(Page.id))
    return missions_followed(((page_id, page_tags or {}) for page_id, page_tags in rows), tags, page_ids)


def missions_followed(pages: Iterable[tuple[str, dict[str, str]]], tags: Iterable[tuple[str, str]] = (), page_ids: Iterable[str] = ()) -> list[str]:
    """As `followed_missions`, over (id, tags) pairs (the watchlist's pages, say)."""
    wanted, only = dict(tags), set(page_ids)
    if not wanted and not only:
        return []
    out: dict[str, None] = {}
    for page_id, page_tags in pages:
        if page_tags.get("agency") != "mission" or (only and page_id not in only) or any(page_tags.get(k) != v for k, v in wanted.items()):
            continue
        city, kind = page_tags.get("city", ""), page_tags.get("kind", "")
        out[" ".join(filter(None, (page_tags.get("country", ""), city if city != kind else "", kind)))] = None
    return list(out)
