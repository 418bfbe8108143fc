"""One poll cycle: sync the watchlist into the store, fetch every due page through Scrapy once,
record every attempt. Scrapy's reactor runs once per process, so one cycle per process."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from crawler import browser as browser_fetch
from crawler.analyse import analyse
from crawler.fetch import NORMALIZE_CPU, FetchPlan, WatchSpider, linked_spec, scrapy_settings
from crawler.normalize import Anchor
from crawler.pipeline import STORE_CPU, STORE_FAILURE
from crawler.slots import Origin
from crawler.watchlist import PageSpec, Watchlist
from store import pages
from store.db import session_scope, utcnow
from store.errors import DatabaseUnavailable, NotFound
from store.models import Fetch, Page, Snapshot
from store.snapshots import Attempt, BrowserMemory, plan_state, record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrawlSummary:
    started_at: datetime
    finished_at: datetime
    pages: int
    outcomes: dict[str, int] = field(default_factory=dict)
    new_snapshots: int = 0
    alerts: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by stage: plan, fetch, normalize, store, analysis

    @property
    def linked(self) -> int:
        """Linked notices and documents fetched besides the watchlist's pages."""
        return max(sum(self.outcomes.values()) - self.pages, 0)

    @property
    def failed(self) -> int:
        return sum(n for outcome, n in self.outcomes.items() if outcome not in ("ok", "not_modified"))


def run_cycle(engine: Engine, watchlist: Watchlist, only: tuple[str, ...] = (), log_level: str = "WARNING", progress: bool = False) -> CrawlSummary:
    """One cycle: crawl, then derive alerts from whatever the store now holds.

    `KVWATCH_FAULT=after-crawl` makes the process die between the two (used by the crash test):
    the snapshots are stored, their alerts are not, and the next cycle must still produce them, once.
    """
    summary = crawl(engine, watchlist, only, log_level, progress)
    if os.environ.get("KVWATCH_FAULT") == "after-crawl":
        log.error("KVWATCH_FAULT=after-crawl: exiting before analysis")
        os._exit(70)
    started = time.process_time()
    result = analyse(engine, watchlist.crawl.failures_before_alert, only, since=summary.started_at)
    cpu = {**summary.cpu, "analysis": round(time.process_time() - started, 3)}
    log.info("cycle CPU seconds: %s", ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in cpu.items()), extra={"cpu": cpu})
    return replace(summary, alerts=result.alerts, cpu=cpu)


def select_pages(watchlist: Watchlist, only: tuple[str, ...] = ()) -> list[PageSpec]:
    """The enabled pages, or exactly the ones named in `only` (an unknown id is an error)."""
    known = {spec.id: spec for spec in watchlist.pages}
    for page_id in only:
        if page_id not in known:
            raise NotFound(f"no page with id {page_id!r} in {watchlist.path}")
    return [known[i] for i in only] if only else [s for s in watchlist.pages if s.enabled]


def sync_watchlist(engine: Engine, watchlist: Watchlist) -> None:
    options = {s.id: {"ignore": list(s.ignore)} for s in watchlist.pages}  # what analysis needs from the watchlist
    with session_scope(engine) as session:
        pages.sync(session, watchlist.pages, options)


def plan(engine: Engine, specs: list[PageSpec], browser: bool = True) -> tuple[list[FetchPlan], dict[str, list[FetchPlan]]]:
    """Fetch plans with conditional-GET validators, and per parent the plans of pages it linked before."""
    by_id = {spec.id: spec for spec in specs}
    now = utcnow()
    with session_scope(engine) as session:
        plans = [_plan(session, spec, now, browser) for spec in specs]
        known: dict[str, list[FetchPlan]] = {}
        for url, name, options in session.execute(select(Page.url, Page.name, Page.options).where(Page.enabled.is_(True)).order_by(Page.id)):
            parent = by_id.get(str((options or {}).get("parent")))
            if parent is not None:
                known.setdefault(parent.id, []).append(_plan(session, linked_spec(parent, url, name), now, browser))
        return plans, known


def render(spec: PageSpec, memory: BrowserMemory, now: datetime, browser: bool) -> tuple[str, bool]:
    """How to fetch the page this cycle. `render = "auto"` pages that needed the browser keep it until the
    daily plain probe (browser_fetch.PROBE_EVERY) finds a plain fetch does again; with no browser on
    this machine they are fetched plainly (and a challenge says what to install)."""
    if spec.render != "auto":
        return spec.render, False
    recent = memory.plain_tried is not None and now - memory.plain_tried < browser_fetch.PROBE_EVERY
    if memory.needed and recent and browser:
        return "browser", True  # (remembered)
    return "auto", False


def _plan(session: Session, spec: PageSpec, now: datetime, browser: bool) -> FetchPlan:
    """The page's validators, how to fetch it, and what its current snapshot said (the region's anchor;
    whether its body was whole)."""
    state = plan_state(session, spec.id)
    how, remembered = render(spec, state.memory, now, browser)
    previous = FetchPlan.pack(Anchor(state.title, state.text, state.region)) if state.has_snapshot else None
    return FetchPlan(spec, state.etag, state.last_modified, previous, state.complete, state.body_hash, how, remembered)


def crawl(engine: Engine, watchlist: Watchlist, only: tuple[str, ...] = (), log_level: str = "WARNING", progress: bool = False,
          origin: Origin | None = None) -> CrawlSummary:
    """Fetch the selected pages once, in this process, and record every attempt (as a worker's batch
    when `origin` says where and for which cycle: see crawler.dispatch)."""
    from scrapy.crawler import CrawlerProcess

    cpu_started = time.process_time()
    specs = select_pages(watchlist, only)
    if origin is None:  # a worker's batch: the scheduler synced the watchlist for the whole cycle
        sync_watchlist(engine, watchlist)
    started = utcnow()
    # the URL object, not a string: Scrapy logs its settings, and a URL object shows its password as ***
    settings = {**scrapy_settings(watchlist.crawl, engine.url, log_level), "LOG_INSTALL_ROOT_HANDLER": False,
                "KVWATCH_PROGRESS": progress, "KVWATCH_PAGES": len(specs), **(origin.scrapy_settings() if origin else {})}
    browser = browser_fetch.find()
    settings.update(browser_fetch.scrapy_settings(browser, watchlist.crawl.timeout))
    process = CrawlerProcess(settings)
    plans, known = plan(engine, specs, browser.ok)
    crawler = process.create_crawler(WatchSpider)
    planned = time.process_time()
    process.crawl(crawler, plans=plans, known=known, browser_missing=browser.missing)
    process.start()
    _default_signals()
    crawled = time.process_time() - planned
    normalize, store = ((crawler.stats.get_value(key) or 0) / 1e6 for key in (NORMALIZE_CPU, STORE_CPU))
    cpu = {"plan": planned - cpu_started, "fetch": crawled - normalize - store, "normalize": normalize, "store": store}
    failure = crawler.stats.get_value(STORE_FAILURE)
    if failure:
        raise DatabaseUnavailable(f"{failure}; the crawl stopped (pages already stored are intact)")
    _record_unfetched(engine, [p.spec for p in plans], started, crawler.stats.get_value("finish_reason") or "unknown", origin)
    return replace(summarize(engine, started, len(specs)), cpu={stage: round(seconds, 3) for stage, seconds in cpu.items()})


def _default_signals() -> None:
    """Scrapy's shutdown handlers outlive its reactor and would swallow SIGTERM/SIGINT during analysis:
    give them back their default meaning (analysis is transactional, so stopping there is safe)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _record_unfetched(engine: Engine, specs: list[PageSpec], since: datetime, reason: str, origin: Origin | None = None) -> None:
    """A page the crawl never got to (stopped by SIGTERM, say) is recorded as `interrupted`: not a
    failure of the page, and the cycle's summary still adds up."""
    with session_scope(engine) as session:
        seen = set(session.scalars(select(Fetch.page_id).where(Fetch.started_at >= since)))
        for spec in specs:
            if spec.id not in seen:
                record(session, Attempt(spec.id, spec.url, "interrupted", utcnow(), reason=f"not fetched: the crawl stopped ({reason})",
                                        region=origin.region if origin else None, cycle=origin.cycle if origin else None))


def summarize(engine: Engine, since: datetime, page_count: int) -> CrawlSummary:
    with session_scope(engine) as session:
        outcomes = Counter(dict(session.execute(
            select(Fetch.outcome, func.count()).where(Fetch.started_at >= since).group_by(Fetch.outcome)
        ).all()))
        new = session.scalar(select(func.count()).select_from(Snapshot).where(Snapshot.first_seen >= since)) or 0
    return CrawlSummary(since, utcnow(), page_count, dict(outcomes), new)
