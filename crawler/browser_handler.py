"""scrapy-playwright's download handler, started lazily. A module of its own so that importing
`crawler.browser` never imports Playwright: Scrapy loads this only when a browser is configured."""

from __future__ import annotations

import asyncio
from typing import Any

from scrapy_playwright.handler import ScrapyPlaywrightDownloadHandler


class LazyPlaywrightHandler(ScrapyPlaywrightDownloadHandler):
    """Playwright (its driver process, then Chromium) starts at the first request that needs the
    browser rather than with every crawl: most cycles need no browser at all. Plain requests pass
    through to Scrapy's own HTTP handler, as in scrapy-playwright."""

    def __init__(self, crawler: Any) -> None:
        super().__init__(crawler)
        self._kv_launch_lock = asyncio.Lock()
        self._kv_launched = False

    async def _maybe_launch_in_thread(self) -> None:  # the engine_started hook: nothing to start yet
        return None

    async def _download_request(self, request: Any, spider: Any = None) -> Any:
        async with self._kv_launch_lock:
            if not self._kv_launched:
                await self._launch()
                self._kv_launched = True
        return await super()._download_request(request, spider)

    async def _close(self) -> None:
        if self._kv_launched:
            await super()._close()
