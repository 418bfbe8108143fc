"""The Scrapy item pipeline that hands every `FetchResult` to the store, one transaction each."""

from __future__ import annotations

import logging
import sys
from typing import Any

from crawler.fetch import FetchResult
from store.db import make_engine, session_scope
from store.pages import ensure
from store.snapshots import record

log = logging.getLogger(__name__)


class StorePipeline:
    def __init__(self, db_url: str, progress: bool = False, total: int = 0):
        self.engine = make_engine(db_url)
        self.progress, self.total, self.done = progress, total, 0

    @classmethod
    def from_crawler(cls, crawler: Any) -> "StorePipeline":
        settings = crawler.settings
        return cls(settings["KVWATCH_DB"], settings.getbool("KVWATCH_PROGRESS"), settings.getint("KVWATCH_PAGES"))

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, FetchResult):
            return item
        with session_scope(self.engine) as session:
            if item.derived is not None:
                ensure(session, item.derived)
            stored = record(session, item.attempt, item.capture)
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
