"""The fetch worker (`kvwatch worker --region cn`): consumes its region's queue and `any`, and runs each
job as a batch crawl in a child process of its own (Scrapy's reactor runs once per process). The child
dies with the worker (PR_SET_PDEATHSIG), so a killed worker leaves no crawl behind to race the
worker that takes its redelivered job.

In the child (`run_batch`): the pages are claimed in the shared store (store.leases: a page is
fetched by one worker at a time); pages this region already fetched in this cycle are skipped (a
redelivered job fetches only what was not stored); the rest are crawled with the worker's `Origin`
(region and cycle on every fetch row, the address it sends from, the global per-host slots).
After the child: pages blocked from this region go to the next region of their list, in the same cycle.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from crawler.cycle import CrawlSummary, crawl
from crawler.dispatch import ANY, TASK, Job, make_app, queue_name, require_broker, send
from crawler.slots import Origin
from crawler.watchlist import Watchlist
from store.db import make_engine, session_scope, utcnow
from store.leases import Leases, fetched_in_cycle
from store.snapshots import Attempt, record

if TYPE_CHECKING:
    from celery import Celery

log = logging.getLogger(__name__)
PARENT_ENV = "KVWATCH_WORKER_PID"  # the batch child checks it still has its worker
GRACE_SECONDS = 60.0                # a batch child still running this long after the cycle's deadline is killed


@dataclass(frozen=True)
class WorkerSettings:
    db_url: str
    region: str | None
    concurrency: int = 1
    source_address: str | None = None  # the local address fetches leave from
    child_command: tuple[str, ...] = ()  # `kvwatch [global options]`, to which `worker-batch` is added

    @property
    def name(self) -> str:
        return f"{self.region or ANY}@{socket.gethostname()}-{os.getpid()}"


def serve(settings: WorkerSettings) -> None:
    """Run the worker until SIGTERM (a warm shutdown: running jobs finish first)."""
    url = require_broker()
    engine = make_engine(settings.db_url)
    Leases(engine).close()  # the shared store answers and is PostgreSQL, or a clear error now
    engine.dispose()
    app = make_app(url)
    app.conf.broker_connection_max_retries = None  # checked above; a broker lost later (a dark region's link) is retried for as long as it takes
    register(app, settings)
    queues = [queue_name(settings.region), queue_name(None)] if settings.region else [queue_name(None)]
    log.info("worker %s: consuming %s with %d slots", settings.name, ", ".join(queues), settings.concurrency)
    app.Worker(hostname=settings.name, queues=queues, pool="threads", concurrency=max(settings.concurrency, 1),
               without_mingle=True, without_gossip=True, loglevel=logging.getLogger().getEffectiveLevel(), quiet=True).start()


def register(app: Celery, settings: WorkerSettings) -> None:
    engine = make_engine(settings.db_url)

    @app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=2)
    def fetch_batch(task: Any, **message: Any) -> None:
        job = Job.from_message(message)
        if time.time() > job.deadline:
            log.warning("cycle %s is over: %d pages not fetched by this worker", job.cycle, len(job.pages))
            return
        code = run_child(settings, job)
        with session_scope(engine) as session:
            seen = fetched_in_cycle(session, job.cycle, job.page_ids, region=job.region)
        missing = [page for page in job.page_ids if page not in seen]
        if missing:  # the child crashed (out of memory, a lost store) or stopped early: again, twice at most, then the deadline decides
            log.error("batch of %d pages for cycle %s exited %s with %d pages not fetched; retrying", len(job.pages), job.cycle, code, len(missing))
            raise task.retry(countdown=2)
        send(app, onward(job, seen))


def run_child(settings: WorkerSettings, job: Job) -> int:
    command = [*settings.child_command, "worker-batch", *(["--region", settings.region] if settings.region else []),
               *(["--source-address", settings.source_address] if settings.source_address else [])]
    env = {**os.environ, "KVWATCH_DB": settings.db_url, PARENT_ENV: str(os.getpid())}
    child = subprocess.Popen(command, stdin=subprocess.PIPE, env=env)
    try:
        child.communicate(json.dumps(job.message()).encode(), timeout=max(job.deadline - time.time(), 0) + GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    return child.returncode


def onward(job: Job, seen: dict[str, list[tuple[str, str | None]]]) -> list[Job]:
    """Jobs for the pages this region could only get `blocked`: the next region of each one's list, same cycle."""
    by_region: dict[str, list[tuple[str, tuple[str, ...]]]] = defaultdict(list)
    for page, rest in job.pages:
        attempts = seen.get(page, [])
        if rest and attempts and all(outcome == "blocked" for outcome, _ in attempts):
            by_region[rest[0]].append((page, rest[1:]))
    for region, pages in by_region.items():
        log.info("cycle %s: %d pages blocked from %s, sent to %s", job.cycle, len(pages), job.region or ANY, region)
    return [Job(job.cycle, region, tuple(pages), job.deadline, job.host_limit) for region, pages in by_region.items()]


def die_with_parent() -> None:
    """Linux: this process gets SIGKILL when its worker dies (kill -9 included); elsewhere a no-op."""
    parent = int(os.environ.get(PARENT_ENV) or 0)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if parent and os.getppid() != parent:  # the worker died before the line above took effect
        os._exit(1)


def run_batch(engine: Engine, watchlist: Watchlist, job: Job, region: str | None = None, source_address: str | None = None,
              log_level: str = "WARNING") -> CrawlSummary | None:
    """The batch child's work: claim, skip what this cycle already holds, crawl the rest (fetch rows name
    `region`, the worker's own, also for a job of the `any` queue)."""
    leases = Leases(engine)
    try:
        known = {spec.id for spec in watchlist.pages}
        unknown = [page for page in job.page_ids if page not in known]
        if unknown:
            _record_unknown(engine, watchlist, job, unknown)
        mine = leases.claim_pages(page for page in job.page_ids if page in known)
        with session_scope(engine) as session:
            done = fetched_in_cycle(session, job.cycle, mine, region=job.region)
        todo = tuple(page for page in mine if page not in done)
        log.info("cycle %s, %s: %d pages to fetch (%d already stored, %d held by another worker)", job.cycle, job.region or ANY,
                 len(todo), len(done), len(job.pages) - len(mine) - len(unknown))
        if not todo:
            return None
        summary = crawl(engine, watchlist, todo, log_level, origin=Origin(region, job.cycle, job.host_limit, job.deadline, source_address))
        log.info("cycle %s, %s: %d pages fetched; CPU seconds %s (process %.2f)", job.cycle, region or ANY, len(todo),
                 ", ".join(f"{stage} {seconds:.2f}" for stage, seconds in summary.cpu.items()), time.process_time())
        return summary
    finally:
        leases.close()


def _record_unknown(engine: Engine, watchlist: Watchlist, job: Job, unknown: list[str]) -> None:
    reason = f"not in this worker's watchlist {watchlist.path}: every worker needs the scheduler's watchlist"
    with session_scope(engine) as session:
        for page in unknown:
            log.error(reason, extra={"page": page, "outcome": "error"})
            record(session, Attempt(page, "", "error", utcnow(), reason=reason, region=job.region, cycle=job.cycle))
