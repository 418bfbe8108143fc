"""The floor under any Scrapy-based cycle: a spider that fetches the given URLs with kvwatch's own
Scrapy settings (robots.txt, cookies, retries, compression) and does nothing with the bodies. Run by
`benchmarks/versus_urlwatch.py` beside kvwatch and urlwatch, to show how much of kvwatch's cycle is
Scrapy itself.

    .venv/bin/python benchmarks/bare_scrapy.py urls.txt
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import scrapy
from scrapy.crawler import CrawlerProcess

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.fetch import scrapy_settings  # noqa: E402
from crawler.watchlist import CrawlSettings  # noqa: E402


class Bare(scrapy.Spider):
    name = "bare"

    def __init__(self, urls: list[str], **kwargs: Any):
        super().__init__(**kwargs)
        self.urls = urls

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for url in self.urls:
            yield scrapy.Request(url, callback=self.parse, dont_filter=True)

    def parse(self, response: scrapy.http.Response) -> None:
        return None


def main() -> None:
    urls = Path(sys.argv[1]).read_text(encoding="utf-8").split()
    crawl = CrawlSettings(autothrottle=False, delay=0, concurrency=32, concurrency_per_domain=2, retries=0, timeout=10)
    settings = {**scrapy_settings(crawl, "sqlite://"), "ITEM_PIPELINES": {}, "LOG_LEVEL": "ERROR"}
    process = CrawlerProcess(settings)
    process.crawl(Bare, urls=urls)
    process.start()


if __name__ == "__main__":
    main()
