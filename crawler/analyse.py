"""Analyse: stored snapshots → alerts. Reads only the store, so it can be re-run at any time.

For each snapshot not yet analysed, oldest first: compare it with the page's previous snapshot and
derive at most one `content` or `new_link` alert; mark it analysed in the same transaction, so a
crash anywhere leaves it to the next run and the alert's unique key keeps that run from adding it twice.

What counts as a change: lines of the normalized main text (after the page's `ignore` patterns and
the default volatile patterns), compared as a multiset (removing one of two identical lines is a
change), new links, and, on pages that are not listings, removed links (a withdrawn attachment or
notice is news; items falling off the end of a listing are not). Flip-flops alert once: an inserted
line counts only if none of the page's last `WINDOW` snapshots had it as often, a deleted line only
if all of them had it at least as often, a new link only if none of them linked it, a removed link
only if all of them did. A→B alerts; B→A and A→B again do not.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from urllib.parse import urlsplit

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, aliased

from crawler.facts import extract, is_relevant, k_lines, page_is_k
from crawler.families import tier_for
from crawler.noise import apply_ignores, clean_line
from store import alerts, pages
from store import facts as fact_store
from store.db import session_scope, utcnow
from store.diff import Diff, diff, line_changes
from store.models import Fetch, Page, Snapshot

log = logging.getLogger(__name__)
WINDOW = 10


@dataclass(frozen=True)
class Version:
    """A snapshot as compared: its comparison text and links."""

    text: str
    links: tuple[tuple[str, str], ...]

    @cached_property
    def lines(self) -> Counter[str]:
        return Counter(self.text.splitlines())

    @cached_property
    def urls(self) -> frozenset[str]:
        return frozenset(url for _, url in self.links)


@dataclass(frozen=True)
class Change:
    new_lines: tuple[str, ...]
    removed_lines: tuple[str, ...]
    new_links: tuple[tuple[str, str], ...]
    diff: Diff
    removed_links: tuple[tuple[str, str], ...] = ()

    @property
    def substantive(self) -> bool:
        return bool(self.new_lines or self.removed_lines or self.new_links or self.removed_links)


@dataclass(frozen=True)
class AnalysisSummary:
    snapshots: int
    alerts: dict[str, int]


def comparable(text: str, ignore: tuple[str, ...] = ()) -> str:
    """The text that is compared: page `ignore` patterns and volatile labels removed, empty lines dropped."""
    lines = (clean_line(line) for line in apply_ignores(text, ignore).splitlines())
    return "\n".join(line for line in lines if line)


def version(snapshot: Snapshot, ignore: tuple[str, ...] = ()) -> Version:
    return Version(comparable(snapshot.text, ignore), tuple((t, u) for t, u in snapshot.links))


def compare(prev: Version, cur: Version, history: list[Version], listing: bool = False) -> Change:
    """What changed from `prev` to `cur` that `history` (newest first, including prev) had not already shown.
    On a listing, links that fall off are expected; elsewhere a removed link is a change."""
    history = history or [prev]
    inserted, deleted = line_changes(prev.text, cur.text)
    new_lines = tuple(line for line in inserted if cur.lines[line] > max(v.lines[line] for v in history))
    removed = tuple(line for line in deleted if cur.lines[line] < min(v.lines[line] for v in history))
    linked = frozenset().union(*(v.urls for v in history))
    new_links = tuple(link for link in cur.links if link[1] not in linked)
    removed_links = () if listing else tuple(
        link for link in prev.links if link[1] not in cur.urls and all(link[1] in v.urls for v in history))
    substantive = new_lines or removed or new_links or removed_links
    return Change(new_lines, removed, new_links, diff(prev.text, cur.text) if substantive else Diff(()), removed_links)


def relevance(title: str, prev: Version, cur: Version, change: Change) -> bool:
    """A change concerns the K visa if a changed line is attributed to it (see crawler.facts: on a page
    about the K visa that is every line outside another visa type's section), if a link appears on or
    goes from a page about the K visa, or if the link's own text names the K visa."""
    if set(change.new_lines) & k_lines(title, cur.text) or set(change.removed_lines) & k_lines(title, prev.text):
        return True
    if (change.new_links or change.removed_links) and page_is_k(title, cur.text):
        return True
    return is_relevant(*(text for text, _ in change.new_links + change.removed_links))


def snapshot_alert(session: Session, page: Page, snap: Snapshot) -> alerts.NewAlert | None:
    """The alert for one new snapshot, or None (baseline, noise, or a flip-flop)."""
    earlier = alerts.earlier_snapshots(session, snap, WINDOW)
    if not earlier:
        return None
    ignore = tuple((page.options or {}).get("ignore", ()))
    history = [version(s, ignore) for s in earlier]
    cur = version(snap, ignore)
    change = compare(history[0], cur, history, listing=page.kind in ("listing", "feed") or snap.region.startswith("feed"))
    if not change.substantive:
        return None
    kind = "new_link" if change.new_links else "content"
    return alerts.NewAlert(
        key=f"{page.id}:{kind}:{earlier[0].id}:{snap.id}", page_id=page.id, url=page.url, kind=kind,
        relevant=relevance(snap.title, history[0], cur, change), summary=_summary(page, change), diff=change.diff.excerpt(),
        from_snapshot_id=earlier[0].id, to_snapshot_id=snap.id, links=change.new_links,
    )


def _summary(page: Page, change: Change) -> str:
    name = page.name or page.id
    if change.new_links:
        first = change.new_links[0][0]
        more = f" (+{len(change.new_links) - 1} more)" if len(change.new_links) > 1 else ""
        return f"{name}: new link “{first}”{more}"
    if not (change.new_lines or change.removed_lines):
        first = change.removed_links[0][0]
        more = f" (+{len(change.removed_links) - 1} more)" if len(change.removed_links) > 1 else ""
        return f"{name}: link removed “{first}”{more}"
    line = (change.new_lines or change.removed_lines)[0]
    verb = "added" if change.new_lines else "removed"
    count = len(change.new_lines) + len(change.removed_lines)
    return f"{name}: {count} line{'s' if count > 1 else ''} changed; {verb} “{line[:80]}”"


def record_facts(session: Session, page: Page, snap: Snapshot) -> list[fact_store.FactChange]:
    """Extract the snapshot's K-visa facts and bring the page's timeline in line with them."""
    observed = extract(snap.title, snap.text, tuple((t, u) for t, u in snap.links), pdf=snap.region == "pdf")
    tier = tier_for(urlsplit(page.url).hostname or "", page.tags or {})
    return fact_store.record(session, page.id, snap.id, snap.first_seen, tier, observed)


def fact_alert(session: Session, page: Page, snap: Snapshot) -> alerts.NewAlert | None:
    """Record the snapshot's facts and alert on what changed."""
    first = not alerts.earlier_snapshots(session, snap, 1)
    return fact_alert_for(page, snap, record_facts(session, page, snap), baseline=first)


def fact_alert_for(page: Page, snap: Snapshot, changes: list[fact_store.FactChange], key_suffix: str = "", baseline: bool = False) -> alerts.NewAlert | None:
    """The alert for a snapshot's fact changes. On a page's first snapshot they are its `baseline`: what the
    page says, not news (digests summarise them in a few lines instead of listing each as new)."""
    if not changes:
        return None
    name = page.name or page.id
    heads = "; ".join(f"{fact_store.label(c.field)}: {fact_store.humanize(c.field, c.old)} → {fact_store.humanize(c.field, c.new)}" for c in changes)
    return alerts.NewAlert(
        key=f"{page.id}:fact:{snap.id}{key_suffix}", page_id=page.id, url=page.url, kind="fact", relevant=True,
        summary=f"K visa — {heads} ({name})"[:500], diff="\n".join(dict.fromkeys(c.evidence for c in changes)),
        to_snapshot_id=snap.id, facts=tuple({**c.as_dict(), **({"baseline": True} if baseline else {})} for c in changes),
    )


def moved_alert(session: Session, page: Page) -> alerts.NewAlert | None:
    """One notice when a page's newest good fetch was a permanent redirect: the watchlist's URL should change."""
    last = session.scalars(select(Fetch).where(Fetch.page_id == page.id, Fetch.outcome == "ok").order_by(Fetch.id.desc()).limit(1)).first()
    if last is None or not last.reason.startswith("moved permanently") or last.url == page.url:
        return None
    return alerts.NewAlert(key=f"{page.id}:moved:{last.url}"[:300], page_id=page.id, url=page.url, kind="health", relevant=False,
                           summary=f"{page.name or page.id}: moved permanently to {last.url}; update its url in the watchlist")


def health_alert(session: Session, page: Page, threshold: int) -> alerts.NewAlert | None:
    """One alert when a page has failed `threshold` times in a row, one when it recovers; nothing in between."""
    streak = pages.failure_streak(session, page.id)
    current = session.scalars(select(Snapshot).where(Snapshot.page_id == page.id).order_by(Snapshot.id.desc()).limit(1)).first()
    relevant = bool(current and is_relevant(current.title, current.text))
    if len(streak) >= threshold:
        first, last = streak[0], streak[threshold - 1]
        return alerts.NewAlert(
            key=f"{page.id}:health:{first.id}", page_id=page.id, url=page.url, kind="health", relevant=relevant,
            summary=f"{page.name or page.id}: failing since {first.started_at:%Y-%m-%d %H:%M} UTC "
                    f"({threshold} attempts in a row): {last.outcome}: {last.reason}",
        )
    if streak:
        return None
    ended = pages.previous_failure_streak(session, page.id)
    if len(ended) >= threshold:
        return alerts.NewAlert(
            key=f"{page.id}:recovered:{ended[0].id}", page_id=page.id, url=page.url, kind="health", relevant=relevant,
            summary=f"{page.name or page.id}: recovered after {len(ended)} failed attempts (since {ended[0].started_at:%Y-%m-%d %H:%M} UTC)",
        )
    return None


def touched(session: Session, since: datetime) -> set[str]:
    """The pages whose health or address may have changed since `since`: a failed fetch, a good one
    right after failures (a recovery), or a permanent redirect. Two queries, however many pages."""
    out: set[str] = set()
    first_good: dict[str, int] = {}
    for page_id, fetch_id, outcome, reason in session.execute(
            select(Fetch.page_id, Fetch.id, Fetch.outcome, Fetch.reason).where(Fetch.started_at >= since)):
        if outcome in pages.GOOD_OUTCOMES:
            first_good[page_id] = min(first_good.get(page_id, fetch_id), fetch_id)
            if "moved permanently" in reason:
                out.add(page_id)
        elif outcome not in pages.NEUTRAL_OUTCOMES:
            out.add(page_id)
    ids = [fetch_id for page_id, fetch_id in first_good.items() if page_id not in out]
    if ids:
        outer = aliased(Fetch)
        before = select(Fetch.outcome).where(Fetch.page_id == outer.page_id, Fetch.id < outer.id, Fetch.outcome.not_in(pages.NEUTRAL_OUTCOMES)) \
            .order_by(Fetch.id.desc()).limit(1).correlate(outer).scalar_subquery()
        for start in range(0, len(ids), 500):
            for page_id, previous in session.execute(select(outer.page_id, before).where(outer.id.in_(ids[start:start + 500]))):
                if previous is not None and previous not in pages.GOOD_OUTCOMES:
                    out.add(page_id)
    return out


def analyse(engine: Engine, failures_before_alert: int = 3, page_ids: tuple[str, ...] = (), since: datetime | None = None) -> AnalysisSummary:
    """Derive every alert the store implies and does not hold yet. Idempotent. With `since` (a cycle's
    start), health and moves are looked at only for the pages whose fetches since then could change them."""
    counts: Counter[str] = Counter()
    with session_scope(engine) as session:
        todo = [s.id for s in alerts.pending_snapshots(session)]
    for snapshot_id in todo:
        with session_scope(engine) as session:  # one transaction per snapshot: alert + analysed mark
            snap = session.get_one(Snapshot, snapshot_id)
            page = session.get_one(Page, snap.page_id)
            for new in (snapshot_alert(session, page, snap), fact_alert(session, page, snap)):
                if new and alerts.add(session, new, utcnow()):
                    counts[new.kind] += 1
            snap.analysed_at = utcnow()
    with session_scope(engine) as session:
        query = select(Page).where(Page.enabled.is_(True)).order_by(Page.id)
        if since is not None:
            query = query.where(Page.id.in_(sorted(touched(session, since))))
        for page in session.scalars(query):
            if page_ids and page.id not in page_ids:
                continue
            for new in (health_alert(session, page, failures_before_alert), moved_alert(session, page)):
                if new and alerts.add(session, new, utcnow()):
                    counts[new.kind] += 1
    return AnalysisSummary(len(todo), dict(counts))
