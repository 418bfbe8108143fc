"""The Scrapy item pipeline that hands every `FetchResult` to the store, in batches: one transaction
per `BATCH` results or per `FLUSH_EVERY` seconds, whichever comes first, and at the end of the crawl
(SIGTERM included). A store that cannot be written (a full disk) stops the crawl: the cycle then
fails with exit 4, and nothing is half-recorded, because a batch is one transaction. A process
killed outright loses at most the last second's results, which the next cycle fetches again."""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import replace
from typing import Any

from scrapy.utils.defer import deferred_from_coro
from twisted.internet import task

from crawler.fetch import FetchResult
from store.db import make_engine, session_scope
from store.errors import DatabaseUnavailable
from store.pages import ensure
from store.snapshots import record

log = logging.getLogger(__name__)
STORE_FAILURE = "kvwatch/store_failure"  # a stats key: why the store stopped the crawl
STORE_CPU = "kvwatch/store_cpu_us"  # a stats key: CPU microseconds spent storing
BATCH = 100          # results per transaction
FLUSH_EVERY = 1.0    # seconds a result may wait for its batch


class StorePipeline:
    def __init__(self, crawler: Any, db_url: str, progress: bool = False, total: int = 0, region: str | None = None, cycle: str | None = None):
        self.crawler = crawler
        self.region, self.cycle = region, cycle  # a worker's crawl: stamped on every fetch row
        self.engine = make_engine(db_url)
        self.progress, self.total, self.done = progress, total, 0
        self.failure = ""
        self.pending: list[FetchResult] = []

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        settings = crawler.settings
        return cls(crawler, settings["KVWATCH_DB"], settings.getbool("KVWATCH_PROGRESS"), settings.getint("KVWATCH_PAGES"),
                   settings.get("KVWATCH_REGION"), settings.get("KVWATCH_CYCLE"))

    def open_spider(self) -> None:
        self.timer = task.LoopingCall(self.flush)
        self.timer.start(FLUSH_EVERY, now=False)

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, FetchResult):
            return item
        if self.failure:
            return item  # the store already failed: the crawl is stopping
        if self.cycle:
            item = replace(item, attempt=replace(item.attempt, region=self.region, cycle=self.cycle))
        self.pending.append(item)
        if len(self.pending) >= BATCH:
            self.flush()
        return item

    def flush(self) -> None:
        """Record the waiting results in one transaction."""
        if not self.pending or self.failure:
            return
        batch, self.pending = self.pending, []
        started = time.process_time()
        try:
            with session_scope(self.engine) as session:
                stored = []
                for item in batch:
                    if item.derived is not None:
                        ensure(session, item.derived)
                    stored.append(record(session, item.attempt, item.capture))
        except DatabaseUnavailable as exc:  # a full disk, a lost server: stop, and say so (exit 4)
            self.failure = str(exc)
            log.error("store failed, stopping the crawl: %s", exc, extra={"page": batch[0].attempt.page_id})
            self.crawler.stats.set_value(STORE_FAILURE, self.failure)
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="store_failed"))
            return
        self.crawler.stats.inc_value(STORE_CPU, int((time.process_time() - started) * 1e6))
        for item, done in zip(batch, stored):
            log.debug("stored %s%s", item.attempt.outcome, " (new snapshot)" if done.new_snapshot else "", extra={"page": item.attempt.page_id})
            self.done += 1
            if self.progress:
                self._bar(item.attempt.page_id)

    def _bar(self, page_id: str) -> None:
        """A one-line progress bar on a terminal (stderr), redrawn in place."""
        total = max(self.total, self.done)
        filled = int(30 * self.done / total) if total else 30
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{total} {page_id[:40]:40}")
        sys.stderr.flush()

    def close_spider(self) -> None:
        if self.timer.running:
            self.timer.stop()
        self.flush()
        if self.progress and self.done:
            sys.stderr.write("\r" + " " * 80 + "\r")
        self.engine.dispose()
