"""Scrapy's RetryMiddleware with exponential backoff between tries (Scrapy retries at once)."""

from __future__ import annotations

import asyncio
import logging

from scrapy import Request
from scrapy.downloadermiddlewares.retry import RetryMiddleware
from scrapy.http import Response

log = logging.getLogger(__name__)


class BackoffRetryMiddleware(RetryMiddleware):
    """Retries 5xx answers, resets and timeouts after `RETRY_BACKOFF * 2**(try-1)` seconds (capped)."""

    def _delay(self, request: Request) -> float:
        base = self.crawler.settings.getfloat("RETRY_BACKOFF", 2.0)
        tries = request.meta.get("retry_times", 0)
        return min(base * 2 ** max(tries - 1, 0), self.crawler.settings.getfloat("RETRY_BACKOFF_MAX", 60.0))

    async def process_response(self, request: Request, response: Response) -> Request | Response:  # type: ignore[override]
        result = super().process_response(request, response)
        if isinstance(result, Request):
            await asyncio.sleep(self._delay(result))
        return result

    async def process_exception(self, request: Request, exception: Exception) -> Request | Response | None:  # type: ignore[override]
        result = super().process_exception(request, exception)
        if isinstance(result, Request):
            await asyncio.sleep(self._delay(result))
        return result
