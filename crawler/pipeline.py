"""The Scrapy item pipeline that hands every `FetchResult` to the store, one transaction each."""

from __future__ import annotations

import logging
from typing import Any

from crawler.fetch import FetchResult
from store.db import make_engine, session_scope
from store.pages import ensure
from store.snapshots import record

log = logging.getLogger(__name__)


class StorePipeline:
    def __init__(self, db_url: str):
        self.engine = make_engine(db_url)

    @classmethod
    def from_crawler(cls, crawler: Any) -> "StorePipeline":
        return cls(crawler.settings["KVWATCH_DB"])

    def process_item(self, item: Any) -> Any:
        if not isinstance(item, FetchResult):
            return item
        with session_scope(self.engine) as session:
            if item.derived is not None:
                ensure(session, item.derived)
            stored = record(session, item.attempt, item.capture)
        log.info("%s: %s%s", item.attempt.page_id, item.attempt.outcome, " (new snapshot)" if stored.new_snapshot else "")
        return item

    def close_spider(self) -> None:
        self.engine.dispose()
