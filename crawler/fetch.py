"""Fetch: one Scrapy spider driven by the watchlist. Every request ends as exactly one
`FetchResult` item (an `Attempt`, plus a `Capture` when the outcome is `ok`)."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any, AsyncIterator

import scrapy
from scrapy.http import Response
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from twisted.internet.error import ConnectionLost, ConnectionRefusedError, DNSLookupError, TCPTimedOutError, TimeoutError
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived

from crawler.charset import decode
from crawler.noise import apply_ignores
from crawler.normalize import Normalized, SelectorNotFound, normalize_html
from crawler.outcome import classify_status, classify_text
from crawler.pdf import PdfUnreadable, is_pdf, normalize_pdf
from crawler.watchlist import CrawlSettings, PageSpec
from store.db import utcnow
from store.snapshots import Attempt, Capture

log = logging.getLogger(__name__)
KEPT_HEADERS = ("content-type", "etag", "last-modified", "content-length", "server", "date")


@dataclass(frozen=True)
class FetchPlan:
    """A page to fetch, with the validators of its last good fetch for a conditional GET."""

    spec: PageSpec
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    attempt: Attempt
    capture: Capture | None = None


def scrapy_settings(crawl: CrawlSettings, db_url: str, log_level: str = "WARNING") -> dict[str, Any]:
    """Scrapy settings, each set deliberately (see the README's "Politeness" section)."""
    return {
        "USER_AGENT": crawl.user_agent,
        "ROBOTSTXT_OBEY": True,
        "AUTOTHROTTLE_ENABLED": crawl.autothrottle,
        "AUTOTHROTTLE_START_DELAY": crawl.delay,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "DOWNLOAD_DELAY": crawl.delay if crawl.autothrottle else 0,
        "CONCURRENT_REQUESTS": crawl.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawl.concurrency_per_domain,
        "DOWNLOAD_TIMEOUT": crawl.timeout,
        "DNS_TIMEOUT": crawl.dns_timeout,
        "DOWNLOAD_MAXSIZE": crawl.max_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "DOWNLOAD_FAIL_ON_DATALOSS": True,
        "RETRY_ENABLED": crawl.retries > 0,
        "RETRY_TIMES": crawl.retries,
        "RETRY_BACKOFF": crawl.backoff,
        "RETRY_HTTP_CODES": [500, 502, 503, 504, 522, 524, 408],
        "DOWNLOADER_MIDDLEWARES": {
            "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
            "crawler.retry.BackoffRetryMiddleware": 550,
        },
        "ITEM_PIPELINES": {"crawler.pipeline.StorePipeline": 300},
        "KVWATCH_DB": db_url,
        "HTTPCACHE_ENABLED": False,
        "COOKIES_ENABLED": True,
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,  # Scrapy 2.19 would open a control port
        "RETRY_GIVE_UP_LOG_LEVEL": "INFO",  # the outcome is recorded and logged by kvwatch
        "LOG_LEVEL": log_level,
        "REDIRECT_ENABLED": True,
        "METAREFRESH_ENABLED": False,
    }


class WatchSpider(scrapy.Spider):
    name = "kvwatch"

    def __init__(self, plans: list[FetchPlan], **kwargs: Any):
        super().__init__(**kwargs)
        self.plans = {plan.spec.id: plan for plan in plans}

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for plan in self.plans.values():
            yield self.request_for(plan)

    def request_for(self, plan: FetchPlan) -> scrapy.Request:
        spec = plan.spec
        headers = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
        if plan.etag:
            headers["If-None-Match"] = plan.etag
        if plan.last_modified:
            headers["If-Modified-Since"] = plan.last_modified
        meta: dict[str, Any] = {"page_id": spec.id, "handle_httpstatus_all": True, "started": time.monotonic(), "started_at": utcnow()}
        if spec.proxy:
            meta["proxy"] = spec.proxy
        if not spec.robots:
            meta["dont_obey_robotstxt"] = True
        return scrapy.Request(spec.url, headers=headers, meta=meta, callback=self.parse, errback=self.failed, dont_filter=True)

    def parse(self, response: Response) -> FetchResult:
        spec = self.plans[response.meta["page_id"]].spec
        decided = classify_status(response.status, response.body)
        if decided:
            return self.result(response, *decided)
        try:
            normalized, encoding = read_body(spec, response.url, response.body, _header(response, "content-type"))
        except (SelectorNotFound, PdfUnreadable) as exc:
            return self.result(response, "error", str(exc))
        decided = classify_text(normalized.text)
        if decided:
            return self.result(response, *decided)
        return self.result(response, "ok", "", capture=capture(spec, normalized, encoding, response))

    def failed(self, failure: Failure) -> FetchResult:
        request = failure.request  # type: ignore[attr-defined]
        outcome, reason = describe_failure(failure, self.settings)
        spec = self.plans[request.meta["page_id"]].spec
        log.info("%s <%s>: %s: %s", spec.id, spec.url, outcome, reason)
        return FetchResult(Attempt(
            page_id=spec.id, url=request.url, outcome=outcome, reason=reason,
            started_at=request.meta["started_at"], duration_ms=_elapsed_ms(request.meta),
        ))

    def result(self, response: Response, outcome: str, reason: str, capture: Capture | None = None) -> FetchResult:
        page_id = response.meta["page_id"]
        if outcome != "ok":
            log.info("%s <%s>: %s: %s", page_id, response.url, outcome, reason)
        return FetchResult(Attempt(
            page_id=page_id, url=response.url, outcome=outcome, reason=reason, status=response.status,
            started_at=response.meta["started_at"], bytes=len(response.body), duration_ms=_elapsed_ms(response.meta),
            etag=_header(response, "etag") or None, last_modified=_header(response, "last-modified") or None,
        ), capture)


def read_body(spec: PageSpec, url: str, body: bytes, content_type: str) -> tuple[Normalized, str]:
    """Normalize an HTML or PDF body; the kind is decided by the bytes, not the URL."""
    if spec.kind == "pdf" or is_pdf(body):
        return normalize_pdf(body), "binary"
    html, encoding = decode(body, content_type, spec.encoding)
    if spec.kind == "status":
        return normalize_html(html, url, "title"), encoding
    return normalize_html(html, url, spec.selector, listing=spec.kind == "listing"), encoding


def capture(spec: PageSpec, page: Normalized, encoding: str, response: Response) -> Capture:
    compared = apply_ignores(page.text, spec.ignore)
    links = "\n".join(f"{link.url}\t{link.text}" for link in page.links)
    digest = hashlib.sha256(f"{compared}\n\x00\n{links}".encode()).hexdigest()
    return Capture(
        hash=digest, text=page.text, title=page.title,
        links=tuple((link.text, link.url) for link in page.links),
        content_type=_header(response, "content-type"), encoding=encoding,
        headers={k: _header(response, k) for k in KEPT_HEADERS if _header(response, k)},
        raw=response.body,
    )


def describe_failure(failure: Failure, settings: Any) -> tuple[str, str]:
    """A download failure as (outcome, reason)."""
    exc = failure.value
    for kinds, outcome, reason in _FAILURE_REASONS:
        if isinstance(exc, kinds):
            return outcome, reason.format(exc=str(exc)[:160], timeout=settings.getfloat("DOWNLOAD_TIMEOUT"), maxsize=settings.getint("DOWNLOAD_MAXSIZE"))
    return "error", f"{type(exc).__name__}: {str(exc)[:200]}"


_FAILURE_REASONS: tuple[tuple[tuple[type[BaseException], ...], str, str], ...] = (
    ((IgnoreRequest,), "blocked", "not fetched: forbidden by robots.txt or a middleware ({exc})"),
    ((DownloadTimeoutError, TimeoutError, TCPTimedOutError), "error", "timeout after {timeout:g} s"),
    ((CannotResolveHostError, DNSLookupError), "error", "{exc}"),
    ((DownloadConnectionRefusedError, ConnectionRefusedError), "error", "connection refused"),
    ((ResponseDataLossError,), "error", "truncated body (the connection closed before the declared length)"),
    ((DownloadCancelledError,), "error", "download cancelled (larger than {maxsize} bytes?): {exc}"),
    ((DownloadFailedError, ResponseFailed, ConnectionLost, ResponseNeverReceived), "error", "connection reset or closed: {exc}"),
)


def _header(response: Response, name: str) -> str:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else ""


def _elapsed_ms(meta: dict[str, Any]) -> int:
    return int((time.monotonic() - meta["started"]) * 1000)

