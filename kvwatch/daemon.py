"""`kvwatch serve`: the daemon. One APScheduler job, the tick, runs every `tick` seconds with
max_instances=1 and coalesce=True, so crawls never overlap and runs missed during downtime are
coalesced into one. Each tick:

1. reloads the watchlist if the file changed (a broken edit is logged and the old list kept);
2. picks the pages that are due: last attempt + interval + a stable per-page jitter (up to a tenth
   of the interval), so 270 embassy pages on the same interval do not all fire at once;
3. crawls them in a child `kvwatch crawl --only …` process (a Twisted reactor runs once per
   process), which takes the database's run lock; with `--workers`, that child sends them to the
   fetch workers and waits for the store to hold them (crawler.dispatch), then analyses once;
4. sends the digests that are due (the subscribers' own times come from their cadence).

SIGTERM or SIGINT: no new tick starts; a running crawl child gets SIGTERM, finishes its in-flight
pages (every page is its own transaction, analysis is idempotent) and the daemon exits 0.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType

from apscheduler.schedulers.blocking import BlockingScheduler

from crawler import watchlist as watchlist_mod
from crawler.watchlist import PageSpec, Watchlist
from store import pages
from store.db import make_engine, prepare, session_scope, utcnow
from store.errors import KvwatchError, RunLocked
from store.lock import run_lock

log = logging.getLogger(__name__)
CHILD_TIMEOUT_SECONDS = 3600  # a crawl child running longer than this is killed


@dataclass(frozen=True)
class DaemonSettings:
    db_url: str
    watchlist_path: str
    subscribers_path: str
    tick: float = 60.0
    verbose: int = 0
    log_json: bool = False
    log_level: str | None = None
    distributed: tuple[str, ...] = ()  # `crawl` options when the fetch workers fetch (--workers --batch N --cycle-timeout S)
    child_timeout: float = CHILD_TIMEOUT_SECONDS

    def child_command(self, *args: str, watchlist: str | None = None) -> tuple[list[str], dict[str, str]]:
        """A `kvwatch` child with every global option of the daemon; the database URL (and its
        password) goes through the environment, never the command line that `ps` shows."""
        command = [sys.executable, "-m", "kvwatch", "--watchlist", watchlist or self.watchlist_path, "--subscribers", self.subscribers_path,
                   *(["--log-json"] if self.log_json else []), *(["--log-level", self.log_level] if self.log_level else ["-v"] * self.verbose), *args]
        return command, {**os.environ, "KVWATCH_DB": self.db_url}


def jitter(spec: PageSpec) -> timedelta:
    """A stable offset of up to a tenth of the page's interval, from its id."""
    spread = max(spec.interval // 10, 1)
    return timedelta(seconds=int(hashlib.sha1(spec.id.encode()).hexdigest()[:8], 16) % spread)


def due_pages(last: dict[str, datetime], watchlist: Watchlist, now: datetime) -> tuple[str, ...]:
    """The enabled pages whose interval (plus jitter) has passed since their last attempt."""
    return tuple(
        spec.id for spec in watchlist.pages
        if spec.enabled and (spec.id not in last or last[spec.id] + timedelta(seconds=spec.interval) + jitter(spec) <= now)
    )


class Daemon:
    def __init__(self, settings: DaemonSettings):
        self.settings = settings
        self.engine = prepare(make_engine(settings.db_url))
        self.watchlist = watchlist_mod.load(settings.watchlist_path)
        self.good_copy = Path(tempfile.mkdtemp(prefix="kvwatch-serve-")) / "watchlist.toml"  # what crawl children read
        self.good_copy.write_bytes(Path(settings.watchlist_path).read_bytes())
        self.mtime = Path(settings.watchlist_path).stat().st_mtime
        self.broken_mtime: float | None = None
        self.scheduler = BlockingScheduler(job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = threading.Event()
        self.cycles = 0

    def run(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        self.scheduler.add_job(self.tick, "interval", seconds=self.settings.tick, next_run_time=datetime.now(), id="tick")
        log.info("kvwatch daemon started: %d pages, tick every %gs", len(self.watchlist.pages), self.settings.tick)
        try:
            self.scheduler.start()
        finally:
            shutil.rmtree(self.good_copy.parent, ignore_errors=True)
        log.info("kvwatch daemon stopped after %d crawl cycles", self.cycles)

    def stop(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: finishing the current cycle, then stopping", signal.Signals(signum).name)
        self.stopping.set()
        child = self.child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
        threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True}, daemon=True).start()

    def tick(self) -> None:
        if self.stopping.is_set():
            return
        self.reload_if_changed()
        with session_scope(self.engine) as session:
            last = pages.last_attempts(session)
        due = due_pages(last, self.watchlist, utcnow())
        if due and not self.stopping.is_set():
            self.crawl(due)
        if not self.stopping.is_set():
            self.deliver()

    def reload_if_changed(self) -> None:
        """Reload a changed watchlist; a broken edit is logged once (not every tick) and the old list kept."""
        try:
            mtime = Path(self.settings.watchlist_path).stat().st_mtime
        except OSError as exc:
            mtime = -1.0
            error: Exception | None = exc
        else:
            error = None
        if mtime in (self.mtime, self.broken_mtime):
            return
        try:
            if error is not None:
                raise error
            text = Path(self.settings.watchlist_path).read_bytes()
            self.watchlist, self.mtime = watchlist_mod.load(self.settings.watchlist_path), mtime
            self.good_copy.write_bytes(text)  # children crawl the list the daemon validated, never a broken edit
            log.info("watchlist reloaded: %d pages", len(self.watchlist.pages))
        except (KvwatchError, OSError) as exc:
            self.broken_mtime = mtime
            log.error("watchlist not reloaded, keeping the previous one: %s", exc)

    def crawl(self, due: tuple[str, ...]) -> None:
        command, env = self.settings.child_command("crawl", *self.settings.distributed, *(arg for page_id in due for arg in ("--only", page_id)),
                                                   watchlist=str(self.good_copy))
        self.child = subprocess.Popen(command, stdout=subprocess.PIPE, env=env)
        try:
            out, _ = self.child.communicate(timeout=self.settings.child_timeout)
        except subprocess.TimeoutExpired:
            self.child.kill()
            out, _ = self.child.communicate()
        code, self.child = self.child.returncode, None
        self.cycles += 1
        log.info("crawl of %d due pages exited %s: %s", len(due), code, out.decode(errors="replace").strip())

    def deliver(self) -> None:
        from notifier.deliver import deliver
        from notifier.subscribers import load

        path = Path(self.settings.subscribers_path)
        if not path.exists():
            return
        try:
            subscribers = load(path, self.watchlist)
            with run_lock(self.engine):
                summary = deliver(self.engine, subscribers)
            if summary.messages or summary.failures:
                log.info("delivered %d messages; %d failures", summary.messages, len(summary.failures))
        except RunLocked:
            log.info("delivery skipped this tick: another run holds the database")
        except KvwatchError as exc:
            log.error("delivery failed this tick: %s", exc)


def serve(settings: DaemonSettings) -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    Daemon(settings).run()
