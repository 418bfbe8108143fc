"""The Scrapy item pipeline that hands every `FetchResult` to the store, one transaction each. A store
that cannot be written (a full disk) stops the crawl: the cycle then fails with exit 4, and nothing
is half-recorded, because every page is its own transaction."""

from __future__ import annotations

import logging
import sys
from typing import Any

from scrapy.utils.defer import deferred_from_coro

from crawler.fetch import FetchResult
from store.db import make_engine, session_scope
from store.errors import DatabaseUnavailable
from store.pages import ensure
from store.snapshots import record

log = logging.getLogger(__name__)
STORE_FAILURE = "kvwatch/store_failure"  # a stats key: why the store stopped the crawl


class StorePipeline:
    def __init__(self, crawler: Any, db_url: str, progress: bool = False, total: int = 0):
        self.crawler = crawler
        self.engine = make_engine(db_url)
        self.progress, self.total, self.done = progress, total, 0
        self.failure = ""

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        settings = crawler.settings
        return cls(crawler, settings["KVWATCH_DB"], settings.getbool("KVWATCH_PROGRESS"), settings.getint("KVWATCH_PAGES"))

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, FetchResult):
            return item
        if self.failure:
            return item  # the store already failed: the crawl is stopping
        try:
            with session_scope(self.engine) as session:
                if item.derived is not None:
                    ensure(session, item.derived)
                stored = record(session, item.attempt, item.capture)
        except DatabaseUnavailable as exc:  # a full disk, a lost server: stop, and say so (exit 4)
            self.failure = str(exc)
            log.error("store failed, stopping the crawl: %s", exc, extra={"page": item.attempt.page_id})
            self.crawler.stats.set_value(STORE_FAILURE, self.failure)
            deferred_from_coro(self.crawler.engine.close_spider_async(reason="store_failed"))
            return item
        log.debug("stored %s%s", item.attempt.outcome, " (new snapshot)" if stored.new_snapshot else "", extra={"page": item.attempt.page_id})
        self.done += 1
        if self.progress:
            self._bar(item.attempt.page_id)
        return item

    def _bar(self, page_id: str) -> None:
        """A one-line progress bar on a terminal (stderr), redrawn in place."""
        total = max(self.total, self.done)
        filled = int(30 * self.done / total) if total else 30
        sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{total} {page_id[:40]:40}")
        sys.stderr.flush()

    def close_spider(self) -> None:
        if self.progress and self.done:
            sys.stderr.write("\r" + " " * 80 + "\r")
        self.engine.dispose()
