"""Distributed cycles: the scheduler sends due pages to fetch workers in several regions, through
Celery on RabbitMQ, and waits for the shared PostgreSQL store to hold every page's attempt.

- One queue per region (`kvwatch.cn`, `kvwatch.eu`…) and `kvwatch.any` for pages that name none; a
  worker consumes its region's queue and `any` (crawler.worker).
- A message is a `Job`: a batch of page ids for one cycle, with each page's regions still to try.
  Messages are acknowledged late (after the batch is stored), one at a time per worker slot; a
  worker that dies (kill -9, a lost machine) has its unacknowledged batch redelivered by RabbitMQ,
  and the worker that takes it skips the pages already stored for that cycle.
- The scheduler holds the database's run lock for the whole cycle, then runs analysis once; a page
  no worker settled by the cycle's deadline is recorded as an error naming the regions that did not
  answer (so a region dark for several cycles raises a health notice). Jobs expire at the deadline, so a worker that comes back later does not fetch them.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, replace
from itertools import zip_longest
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from crawler.cycle import CrawlSummary, select_pages, summarize, sync_watchlist
from crawler.watchlist import PageSpec, Watchlist
from store.db import masked, session_scope, utcnow
from store.errors import BrokerUnavailable, ConfigError
from store.leases import fetched_in_cycle
from store.snapshots import Attempt, record

if TYPE_CHECKING:  # Celery itself is imported when a distributed cycle or a worker runs
    from celery import Celery

log = logging.getLogger(__name__)
BROKER_ENV = "KVWATCH_BROKER"        # amqp://user:password@host:5672// (a secret: from the environment only)
PREFIX_ENV = "KVWATCH_QUEUE_PREFIX"  # queue, exchange and control names start with it (default "kvwatch")
TASK = "kvwatch.fetch_batch"
ANY = "any"
POLL_SECONDS = 0.5                   # how often the scheduler looks at the store while a cycle runs
AUTO = 0                             # --batch 0: size jobs by the live workers (`batch_size`)
JOBS_PER_WORKER = 2                  # ... so each worker gets about two jobs per cycle: few process starts, and the work still evens out
SMALLEST, LARGEST = 20, 500          # pages per automatic job (a job costs a worker one Scrapy process start, about a second of CPU)
FALLBACK_BATCH = 200                 # pages per job when who is live is unknown


@dataclass(frozen=True)
class Job:
    """A batch of pages for one region's workers (region None: any worker), within one cycle."""

    cycle: str
    region: str | None
    pages: tuple[tuple[str, tuple[str, ...]], ...]  # (page id, the regions to try next if this one is blocked)
    deadline: float  # epoch seconds
    host_limit: int

    def message(self) -> dict[str, Any]:
        return {"cycle": self.cycle, "region": self.region, "pages": [[page, list(rest)] for page, rest in self.pages],
                "deadline": self.deadline, "host_limit": self.host_limit}

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> Job:
        return cls(str(data["cycle"]), data.get("region"), tuple((str(p), tuple(rest)) for p, rest in data["pages"]),
                   float(data["deadline"]), int(data["host_limit"]))

    @property
    def page_ids(self) -> tuple[str, ...]:
        return tuple(page for page, _ in self.pages)


def broker_url() -> str | None:
    return os.environ.get(BROKER_ENV) or None


def queue_prefix() -> str:
    return os.environ.get(PREFIX_ENV) or "kvwatch"


def queue_name(region: str | None) -> str:
    return f"{queue_prefix()}.{region or ANY}"


def make_app(url: str) -> Celery:
    """The Celery app both roles share: late acknowledgement, a worker slot takes one job at a time,
    no result backend (the store is the result), and its own control exchange per queue prefix."""
    from celery import Celery

    prefix = queue_prefix()
    app = Celery(prefix, broker=url, set_as_current=False)
    app.conf.update(
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_ignore_result=True, task_serializer="json", accept_content=["json"], task_default_queue=queue_name(None),
        control_exchange=prefix, event_exchange=f"{prefix}.events", worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True, broker_connection_max_retries=3, broker_connection_timeout=5,
        worker_send_task_events=False, task_send_sent_event=False, worker_disable_rate_limits=True,
    )
    return app


def check_broker(url: str, timeout: float = 5.0) -> None:
    """Raise BrokerUnavailable unless the broker accepts a connection."""
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:  # kombu raises the transport's own errors (socket, AMQP, auth)
        raise _unavailable("cannot reach", url, exc) from None


def require_broker() -> str:
    """The broker's URL from the environment, once it answers; a ConfigError when none is set."""
    url = broker_url()
    if not url:
        raise ConfigError(BROKER_ENV, "fetch workers need the task broker's URL in the environment (amqp://user:password@host:5672//)")
    check_broker(url)
    return url


def _unavailable(what: str, url: str, exc: Exception) -> BrokerUnavailable:
    return BrokerUnavailable(f"{what} the task broker {masked(url)}: {' '.join(str(exc).split())[:200]}")


def new_cycle() -> str:
    return f"{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def batch_size(batch: int, pages: int, workers: int | None) -> int:
    """Pages per job for one queue: `batch` when given; else about JOBS_PER_WORKER jobs per live worker."""
    if batch != AUTO:
        return batch
    if not workers:
        return FALLBACK_BATCH
    return min(max(-(-pages // (workers * JOBS_PER_WORKER)), SMALLEST), LARGEST)


def first_region(spec: PageSpec, live: dict[str, int] | None) -> int:
    """Where in its list the page starts: its first region with a live worker (all of them when `live`
    is unknown); the first when none of its regions has one (it waits there until the deadline)."""
    if live is None:
        return 0
    return next((n for n, region in enumerate(spec.regions) if region in live), 0)


def jobs_for(cycle: str, specs: list[PageSpec], batch: int, deadline: float, host_limit: int, live: dict[str, int] | None = None) -> list[Job]:
    """Per starting region, batches of pages in which hosts take turns (a batch of one host's pages
    would wait on that host's global slots while other hosts sit idle)."""
    by_region: dict[str | None, dict[str, list[tuple[str, tuple[str, ...]]]]] = defaultdict(lambda: defaultdict(list))
    dark: dict[str, int] = defaultdict(int)
    for spec in specs:
        start = first_region(spec, live) if spec.regions else 0
        for skipped in spec.regions[:start]:
            dark[skipped] += 1
        region = spec.regions[start] if spec.regions else None
        by_region[region][urlsplit(spec.url).hostname or ""].append((spec.id, spec.regions[start + 1:]))
    for region, count in sorted(dark.items()):
        log.warning("region %s: no live worker; %d pages sent to their next region", region, count)
    jobs = []
    for region, hosts in by_region.items():
        order = [page for turn in zip_longest(*hosts.values()) for page in turn if page is not None]
        size = batch_size(batch, len(order), None if live is None else live.get(region or ANY, 0))
        for start in range(0, len(order), size):
            jobs.append(Job(cycle, region, tuple(order[start:start + size]), deadline, host_limit))
    return jobs


def send(app: Celery, jobs: list[Job]) -> None:
    if not jobs:  # most jobs forward nothing: no connection for nothing
        return
    try:
        with app.producer_or_acquire() as producer:
            for job in jobs:
                app.send_task(TASK, kwargs=job.message(), queue=queue_name(job.region), expires=job.deadline - time.time(), producer=producer)
    except Exception as exc:  # kombu's connection and channel errors
        raise _unavailable("cannot send jobs to", str(app.conf.broker_url), exc) from None


def live_regions(app: Celery, timeout: float = 3.0) -> dict[str, int] | None:
    """Per region (and `any`), how many workers answer for it now; None when the question itself fails
    (then nothing is rerouted, and jobs have FALLBACK_BATCH pages)."""
    try:
        queues = app.control.inspect(timeout=timeout).active_queues() or {}
    except Exception as exc:  # a broker hiccup must not stop the cycle: route as the watchlist says
        log.warning("could not ask which workers are live: %s", exc)
        return None
    counts: dict[str, int] = defaultdict(int)
    for regions in _regions_by_worker(queues).values():
        for region in regions:
            counts[region] += 1
    return dict(counts)


def _regions_by_worker(active_queues: dict[str, list[dict[str, Any]]]) -> dict[str, tuple[str, ...]]:
    """Celery's `active_queues` reply as worker → the regions (and `any`) it consumes."""
    prefix = queue_prefix() + "."
    return {name: tuple(sorted(q["name"].removeprefix(prefix) for q in queues)) for name, queues in active_queues.items()}


def settled(spec: PageSpec, attempts: list[tuple[str, str | None]]) -> bool:
    """Has the page had its fetch this cycle? Any attempt but a blocked one settles it; a blocked one
    settles it only from its last allowed region (before that, the next region tries it)."""
    if any(outcome != "blocked" for outcome, _ in attempts):
        return True
    return bool(attempts) and (not spec.regions or any(region == spec.regions[-1] for _, region in attempts))


def dispatch(engine: Engine, watchlist: Watchlist, app: Celery, only: tuple[str, ...] = (), batch: int = AUTO,
             timeout: float = 3600.0) -> CrawlSummary:
    """One distributed crawl: send the pages to the workers, wait until the store holds every page's
    attempt for this cycle (or the deadline passes), and return the cycle's summary."""
    specs = select_pages(watchlist, only)
    sync_watchlist(engine, watchlist)
    cycle, started, deadline = new_cycle(), utcnow(), time.time() + timeout
    jobs = jobs_for(cycle, specs, batch, deadline, watchlist.crawl.concurrency_per_domain, live_regions(app))
    send(app, jobs)
    log.info("cycle %s: %d pages sent to workers as %d jobs (%s)", cycle, len(specs), len(jobs),
             ", ".join(f"{queue_name(r)} {n}" for r, n in sorted(_count(jobs).items())))
    waiting = {spec.id: spec for spec in specs}
    while waiting and time.time() < deadline:  # bounded by the cycle's deadline
        with session_scope(engine) as session:
            seen = fetched_in_cycle(session, cycle, waiting)
        for page_id in [p for p, spec in waiting.items() if settled(spec, seen.get(p, []))]:
            del waiting[page_id]
        if waiting:
            time.sleep(min(POLL_SECONDS, max(deadline - time.time(), 0)))
    if waiting:
        _record_unsettled(engine, cycle, list(waiting.values()), timeout)
    return summarize(engine, started, len(specs))


def _count(jobs: list[Job]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for job in jobs:
        counts[job.region or ANY] += len(job.pages)
    return counts


def _record_unsettled(engine: Engine, cycle: str, specs: list[PageSpec], timeout: float) -> None:
    with session_scope(engine) as session:
        seen = fetched_in_cycle(session, cycle, [s.id for s in specs])
        for spec in specs:
            tried = {region for _, region in seen.get(spec.id, [])}
            left = [r for r in spec.regions if r not in tried] or [ANY]
            reason = f"not fetched: no worker of region {' or '.join(left)} fetched it within {timeout:g} s (is one running? see kvwatch workers)"
            log.error(reason, extra={"page": spec.id, "url": spec.url, "outcome": "error"})
            # an error, not `interrupted`: a page no region polls for cycles on end is a health notice for the maintainer
            record(session, Attempt(spec.id, spec.url, "error", utcnow(), reason=reason, region=None, cycle=cycle))


def run_distributed(engine: Engine, watchlist: Watchlist, only: tuple[str, ...] = (), batch: int = AUTO, timeout: float = 3600.0) -> CrawlSummary:
    """`kvwatch crawl --workers`: one cycle fetched by the workers, then analysis, once, here."""
    from crawler.analyse import analyse

    url = require_broker()
    started = time.process_time()
    summary = dispatch(engine, watchlist, make_app(url), only, batch, timeout)
    dispatched = time.process_time()
    result = analyse(engine, watchlist.crawl.failures_before_alert, only, since=summary.started_at)
    cpu = {"dispatch": round(dispatched - started, 3), "analysis": round(time.process_time() - dispatched, 3)}
    return replace(summary, alerts=result.alerts, cpu=cpu)


@dataclass(frozen=True)
class LiveWorker:
    name: str
    regions: tuple[str, ...]
    jobs: tuple[str, ...]  # what it is doing, one line per running job


def live_workers(timeout: float = 2.0) -> list[LiveWorker]:
    """The workers that answer within `timeout`, their regions, and their running jobs."""
    inspect = make_app(require_broker()).control.inspect(timeout=timeout)
    queues, active = _regions_by_worker(inspect.active_queues() or {}), inspect.active() or {}
    workers = []
    for name, regions in sorted(queues.items()):
        jobs = []
        for running in active.get(name, []):
            job = Job.from_message(running.get("kwargs") or {})
            since = f", for {time.time() - float(running['time_start']):.0f} s" if running.get("time_start") else ""
            jobs.append(f"fetching {len(job.pages)} pages for {job.region or ANY} (cycle {job.cycle}{since})")
        workers.append(LiveWorker(name, regions, tuple(jobs)))
    return workers
