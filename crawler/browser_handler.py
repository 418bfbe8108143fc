"""The download handler for crawls that may need a browser. Plain requests go to Scrapy's own HTTP
handler; the first request that needs the browser imports scrapy-playwright and starts Playwright
(its driver, then Chromium), so a cycle that needs no browser pays nothing for having one. A module
of its own: Scrapy loads it only when a browser is configured (`crawler.browser.scrapy_settings`)."""

from __future__ import annotations

import asyncio
from typing import Any

from scrapy.core.downloader.handlers.base import BaseDownloadHandler
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler


class BrowserOrPlainHandler(BaseDownloadHandler):
    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self.plain = HTTP11DownloadHandler.from_crawler(crawler)
        self.browser: Any = None
        self.starting = asyncio.Lock()

    async def download_request(self, request: Any) -> Any:
        if not request.meta.get("playwright"):
            return await self.plain.download_request(request)
        async with self.starting:
            if self.browser is None:
                from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler

                handler = ScrapyPlaywrightDownloadHandler.from_crawler(self.crawler)
                await handler._maybe_launch_in_thread()  # its engine_started hook: the engine started long ago
                self.browser = handler
        return await self.browser.download_request(request)

    async def close(self) -> None:
        await self.plain.close()
        if self.browser is not None:
            await self.browser.close()
