"""Fetch: one Scrapy spider driven by the watchlist. Every request ends as exactly one
`FetchResult` item (an `Attempt`, plus a `Capture` when the outcome is `ok`)."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import scrapy
import zstandard
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadCancelledError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    IgnoreRequest,
    ResponseDataLossError,
)
from scrapy.http import Response
from sqlalchemy import URL
from twisted.internet.error import ConnectionLost, ConnectionRefusedError, DNSLookupError, TCPTimedOutError, TimeoutError
from twisted.python.failure import Failure
from twisted.web._newclient import ResponseFailed, ResponseNeverReceived

from crawler import browser as browser_fetch
from crawler.charset import Undecodable, decode
from crawler.documents import DocumentUnreadable, is_office, normalize_office
from crawler.facts import is_relevant, page_is_k
from crawler.feeds import FeedUnreadable, is_feed, normalize_feed
from crawler.noise import apply_ignores
from crawler.normalize import Anchor, MainContentNotFound, Normalized, NoText, SelectorNotFound, normalize_html
from crawler.outcome import classify_status, classify_text, html_complete, truncated
from crawler.pdf import PdfUnreadable, is_pdf, normalize_pdf
from crawler.slots import NoHostSlot
from crawler.watchlist import CrawlSettings, PageSpec
from store.db import utcnow
from store.pages import PageRecord
from store.snapshots import AFTER_PLAIN, Attempt, Capture

log = logging.getLogger(__name__)
NORMALIZE_CPU = "kvwatch/normalize_cpu_us"  # a stats key: CPU microseconds spent normalizing bodies
KEPT_HEADERS = ("content-type", "etag", "last-modified", "content-length", "server", "date")


@dataclass(frozen=True)
class FetchPlan:
    """A page to fetch, with the validators of its last good fetch for a conditional GET, and what
    its current snapshot said (to keep the main region continuous and to recognise a cut-off body)."""

    spec: PageSpec
    etag: str | None = None
    last_modified: str | None = None
    previous: bytes | None = None  # the current snapshot's title, text and region, compressed (see `anchor`)
    complete: bool | None = None  # did the last good HTML body end with </html> or </body>? None: unknown
    body_hash: str | None = None  # the last good fetch's `body_fingerprint`: the same bytes again need no normalizing
    render: str = "auto"  # this cycle: plain; auto (plain, the browser if a challenge blocks it); browser
    remembered: bool = False  # render is "browser" because the page needed it before (not by the watchlist)

    @staticmethod
    def pack(anchor: Anchor) -> bytes:
        """A cycle holds every page's previous text at once: compressed, 3,000 pages take a few MB, not a hundred."""
        packed = zstandard.ZstdCompressor(level=1).compress("\0".join((anchor.title, anchor.text, anchor.region)).encode())
        return bytes(memoryview(packed))  # a copy of its own size: zstandard's result keeps the worst-case allocation (~30 KB a page)

    @property
    def anchor(self) -> Anchor | None:
        if self.previous is None:
            return None
        title, rest = zstandard.ZstdDecompressor().decompress(self.previous).decode().split("\0", 1)
        text, region = rest.rsplit("\0", 1)
        return Anchor(title, text, region)


@dataclass(frozen=True)
class FetchResult:
    attempt: Attempt
    capture: Capture | None = None
    derived: PageRecord | None = None  # set for a linked document or notice found on a watched page


# Every status reaches the callback (304 included) except redirects, which Scrapy must follow:
# `handle_httpstatus_all` would stop RedirectMiddleware and leave a 301 as "the page".
REDIRECTS = (301, 302, 303, 307, 308)
HANDLED_STATUSES = [code for code in range(100, 600) if code not in REDIRECTS]

FOLLOW_SUFFIXES = (".pdf", ".doc", ".docx", ".xls", ".xlsx")
MAX_FOLLOW = 20


def links_to_follow(spec: PageSpec, page: Normalized) -> list[PageSpec]:
    """Same-host links worth snapshotting themselves: K-visa notices, and documents on a K-visa page."""
    host, about_k = urlsplit(spec.url).hostname, None
    out = []
    for link in page.links:
        parts = urlsplit(link.url)
        if parts.hostname != host:
            continue
        if not is_relevant(link.text):
            if not parts.path.lower().endswith(FOLLOW_SUFFIXES):
                continue
            if about_k is None:  # asked only when the page links a document: it reads the whole text
                about_k = page_is_k(page.title, page.text)
            if not about_k:
                continue
        out.append(linked_spec(spec, link.url, link.text))
    return out[:MAX_FOLLOW]


def linked_spec(parent: PageSpec, url: str, name: str) -> PageSpec:
    """The spec of a page linked from `parent`: its own id, the parent's tags, proxy and politeness."""
    page_id = f"{parent.id}~{hashlib.sha1(url.encode()).hexdigest()[:10]}"
    return replace(parent, id=page_id, url=url, name=name, kind="auto", selector=None, ignore=())


def scrapy_settings(crawl: CrawlSettings, db_url: str | URL, log_level: str = "WARNING") -> dict[str, Any]:
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
            "crawler.slots.HostSlots": 950,  # a worker's crawl only (NotConfigured otherwise): each download holds a global host slot
            # each costs every request a little and does nothing here: no allowed_domains, no HTTP auth,
            # no HTTP cache, no meta refresh; kvwatch records its own figures
            "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
            "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
            "scrapy.downloadermiddlewares.redirect.MetaRefreshMiddleware": None,
            "scrapy.downloadermiddlewares.httpcache.HttpCacheMiddleware": None,
            "scrapy.downloadermiddlewares.stats.DownloaderStats": None,
        },
        "SPIDER_MIDDLEWARES": {  # every status reaches parse (HANDLED_STATUSES); linked pages are followed one level by hand
            "scrapy.spidermiddlewares.urllength.UrlLengthMiddleware": None,
            "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
        },
        # the base list itself, without what kvwatch never uses: Scrapy imports every module named in it,
        # disabled or not (RemoteControl's imports aiohttp, a tenth of a second and 10 MiB)
        "EXTENSIONS_BASE": {f"scrapy.extensions.{name}": 0 for name in (
            "corestats.CoreStats", "logcount.LogCount", "memusage.MemoryUsage", "closespider.CloseSpider", "logstats.LogStats", "throttle.AutoThrottle")},
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
        # Scrapy would re-read the callback's source with `inspect` and `ast` for every response (its cache
        # misses bound methods): a fifth of a cycle's CPU. Our callbacks are checked by ruff and tests instead.
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
    }


class WatchSpider(scrapy.Spider):
    name = "kvwatch"

    def __init__(self, plans: list[FetchPlan], known: dict[str, list[FetchPlan]] | None = None, browser_missing: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self.plans = {plan.spec.id: plan for plan in plans}
        self.known = known or {}  # per parent: the linked pages followed in earlier cycles
        self.parents: dict[str, str] = {}
        self.browser_missing = browser_missing  # why there is no browser ("" when there is one)
        self.cookies: dict[str, dict[str, str]] = {}  # per host: the cookies a browser fetch came away with

    async def start(self) -> AsyncIterator[scrapy.Request | FetchResult]:
        for plan in list(self.plans.values()):  # a snapshot: parse() adds linked pages to self.plans while this runs
            if plan.render == "browser" and self.browser_missing:
                yield self.no_browser(plan)
            else:
                yield self.request_for(plan)

    def request_for(self, plan: FetchPlan, browser: bool | None = None, after: str = "") -> scrapy.Request:
        """A plain request, or one through the browser (`after`: why the plain fetch did not do)."""
        spec = plan.spec
        host = urlsplit(spec.url).hostname or ""
        if browser is None:  # a page remembered as needing the browser first tries this cycle's challenge cookies
            browser = plan.render == "browser" and not (plan.remembered and host in self.cookies)
        headers = {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
        if plan.etag and not browser:
            headers["If-None-Match"] = plan.etag
        if plan.last_modified and not browser:
            headers["If-Modified-Since"] = plan.last_modified
        meta: dict[str, Any] = {"page_id": spec.id, "handle_httpstatus_list": HANDLED_STATUSES, "started": time.monotonic(),
                                "started_at": utcnow(), "via": "browser" if browser else "plain", "after_plain": after}
        if browser:
            meta.update(browser_fetch.request_meta(self.settings.get("USER_AGENT"), self.settings.getfloat("DOWNLOAD_TIMEOUT")))
        if spec.proxy:
            meta["proxy"] = spec.proxy
        if not spec.robots:
            meta["dont_obey_robotstxt"] = True
        cookies: Any = None if browser else self.cookies.get(host)
        return scrapy.Request(spec.url, headers=headers, cookies=cookies, meta=meta, callback=self.parse, errback=self.failed, dont_filter=True)

    def no_browser(self, plan: FetchPlan, after: str = "") -> FetchResult:
        reason = f"{after}; {self.browser_missing}" if after else self.browser_missing
        log.info("blocked: %s", reason, extra={"page": plan.spec.id, "url": plan.spec.url, "outcome": "blocked"})
        return FetchResult(derived=self.derived_record(plan.spec.id), attempt=Attempt(
            page_id=plan.spec.id, url=plan.spec.url, outcome="blocked", reason=reason, started_at=utcnow(), via="browser"))

    def parse(self, response: Response) -> Iterator[FetchResult | scrapy.Request]:
        plan = self.plans[response.meta["page_id"]]
        spec = plan.spec
        view = browser_fetch.rendered(response.meta) if response.meta.get("via") == "browser" else None
        status, body = (view.status, view.html.encode("utf-8")) if view else (response.status, response.body)
        if view and view.cookies:
            self.cookies[urlsplit(response.url).hostname or ""] = dict(view.cookies)
        decided = classify_status(status, body)
        if decided and decided[0] == "blocked" and response.meta["via"] == "plain" and (plan.render == "auto" or plan.remembered) \
                and (status == 412 or "challenge" in decided[1]):
            if self.browser_missing:  # the plain fetch met a JavaScript challenge: only a browser gets past it
                yield self.no_browser(plan, decided[1])
            else:
                yield self.request_for(plan, browser=True, after=decided[1])
            return
        if decided:
            reason = f"the browser did not get past it: {decided[1]}" if view and decided[0] == "blocked" else decided[1]
            yield self.result(response, decided[0], reason, status=status, size=len(body))
            if decided[0] == "not_modified":  # unchanged parent: its links are unchanged too
                yield from self.follow(spec, [plan.spec for plan in self.known.get(spec.id, [])])
            return
        fingerprint = None if view else body_fingerprint(spec, body)  # a browser's DOM is never byte-identical
        if fingerprint is not None and plan.previous is not None and fingerprint == plan.body_hash:
            # byte for byte the body of the last good fetch (a server without validators): its text is the current
            # snapshot's, so the page costs a hash; its linked pages are fetched as after a 304
            log.debug("the same bytes as the last good fetch: not normalized again", extra={"page": spec.id, "url": response.url})
            yield self.result(response, "ok", "", status=status, size=len(body), body_hash=fingerprint)
            yield from self.follow(spec, [p.spec for p in self.known.get(spec.id, [])])
            return
        cut = None if view else truncated(body, bool(_header(response, "content-length")), plan.complete)
        if cut:  # a browser's DOM is always whole: what it was built from is not the question
            yield self.result(response, "error", cut)
            return
        content_type = "text/html; charset=utf-8" if view else _header(response, "content-type")
        started, failed = time.process_time(), None
        try:
            normalized, encoding = read_body(spec, response.url, body, content_type, plan.anchor)
        except (SelectorNotFound, MainContentNotFound, NoText, Undecodable, PdfUnreadable, DocumentUnreadable, FeedUnreadable) as exc:
            failed = str(exc)
        self.crawler.stats.inc_value(NORMALIZE_CPU, int((time.process_time() - started) * 1e6))
        if failed is not None:
            yield self.result(response, "error", failed, status=status, size=len(body))
            return
        decided = classify_text(normalized.text)
        if decided:
            yield self.result(response, *decided, status=status, size=len(body))
            return
        yield self.result(response, "ok", "", capture=capture(spec, normalized, encoding, response, body), status=status, size=len(body),
                          body_hash=fingerprint)
        yield from self.follow(spec, links_to_follow(spec, normalized))

    def follow(self, parent: PageSpec, children: list[PageSpec]) -> Iterator[scrapy.Request]:
        """Requests for linked pages, one level deep: a linked page's own links are not followed."""
        if parent.id in self.parents:
            return
        validators = {plan.spec.id: plan for plan in self.known.get(parent.id, [])}
        for child in children:
            if child.id in self.plans:
                continue
            known = validators.get(child.id)
            self.plans[child.id] = FetchPlan(child, known.etag, known.last_modified) if known else FetchPlan(child)
            self.parents[child.id] = parent.id
            yield self.request_for(self.plans[child.id])

    def failed(self, failure: Failure) -> FetchResult:
        request = failure.request  # type: ignore[attr-defined]
        outcome, reason = describe_failure(failure, self.settings)
        spec = self.plans[request.meta["page_id"]].spec
        reason = _after_plain(request.meta, reason)
        log.info("%s: %s", outcome, reason, extra={"page": spec.id, "url": request.url, "outcome": outcome, "reason": reason, "duration_ms": _elapsed_ms(request.meta)})
        return FetchResult(derived=self.derived_record(spec.id), attempt=Attempt(
            page_id=spec.id, url=request.url, outcome=outcome, reason=reason,
            started_at=request.meta["started_at"], duration_ms=_elapsed_ms(request.meta), via=request.meta.get("via", "plain"),
        ))

    def derived_record(self, page_id: str) -> PageRecord | None:
        parent = self.parents.get(page_id)
        if parent is None:
            return None
        spec = self.plans[page_id].spec
        return PageRecord(id=spec.id, url=spec.url, name=spec.name, kind=spec.kind, tags=dict(spec.tags), options={"parent": parent})

    def result(self, response: Response, outcome: str, reason: str, capture: Capture | None = None,
               status: int | None = None, size: int | None = None, body_hash: str | None = None) -> FetchResult:
        """The attempt; `status` and `size` are the browser's last document's, when it went through one."""
        page_id, status = response.meta["page_id"], response.status if status is None else status
        if response.meta.get("redirect_urls") and not reason:
            codes = response.meta.get("redirect_reasons") or []
            permanent = bool(codes) and all(code in (301, 308) for code in codes)
            reason = f"{'moved permanently' if permanent else 'redirected'} from {response.meta['redirect_urls'][0]}"
        reason = _after_plain(response.meta, reason)
        log.info("%s%s", outcome, f": {reason}" if reason else "", extra={
            "page": page_id, "url": response.url, "outcome": outcome, "status": status, "duration_ms": _elapsed_ms(response.meta)})
        browser = response.meta.get("via") == "browser"
        return FetchResult(derived=self.derived_record(page_id), attempt=Attempt(
            page_id=page_id, url=response.url, outcome=outcome, reason=reason, status=status,
            started_at=response.meta["started_at"], bytes=len(response.body) if size is None else size, duration_ms=_elapsed_ms(response.meta),
            etag=None if browser else _header(response, "etag") or None,
            last_modified=None if browser else _header(response, "last-modified") or None, via="browser" if browser else "plain",
            body_hash=body_hash,
        ), capture=capture)


def body_fingerprint(spec: PageSpec, body: bytes) -> str:
    """The body's SHA-256, with what else decides its text (kvwatch's version, the page's selector, kind,
    encoding and ignores): the same fingerprint twice means the same snapshot text."""
    digest = hashlib.sha256("\0".join((_version(), spec.selector or "", spec.kind, spec.encoding or "", *spec.ignore)).encode())
    digest.update(body)
    return digest.hexdigest()


@functools.cache
def _version() -> str:
    try:
        return importlib.metadata.version("kvwatch")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def read_body(spec: PageSpec, url: str, body: bytes, content_type: str, anchor: Anchor | None = None) -> tuple[Normalized, str]:
    """Normalize an HTML, PDF, Office or feed body; the kind is decided by the bytes, not the URL."""
    if spec.kind == "pdf" or is_pdf(body):
        return normalize_pdf(body), "binary"
    if is_office(body):
        return normalize_office(body, url.rsplit("/", 1)[-1]), "binary"
    if spec.kind == "feed" or (spec.kind == "auto" and is_feed(body)):
        return normalize_feed(body, url), "utf-8"
    html, encoding = decode(body, content_type, spec.encoding)
    if spec.kind == "status":
        return normalize_html(html, url, "title"), encoding
    return normalize_html(html, url, spec.selector, listing=spec.kind == "listing", anchor=anchor), encoding


def _after_plain(meta: dict[str, Any], reason: str) -> str:
    """A browser fetch made because the plain one was blocked says so (and the store counts it as a plain try)."""
    after = meta.get("after_plain")
    if not after:
        return reason
    return f"{AFTER_PLAIN} ({after})" + (f": {reason}" if reason else "")


def capture(spec: PageSpec, page: Normalized, encoding: str, response: Response, raw: bytes | None = None) -> Capture:
    compared = apply_ignores(page.text, spec.ignore)
    links = "\n".join(f"{link.url}\t{link.text}" for link in page.links)
    digest = hashlib.sha256(f"{compared}\n\x00\n{links}".encode()).hexdigest()
    return Capture(
        hash=digest, text=page.text, title=page.title,
        links=tuple((link.text, link.url) for link in page.links),
        content_type=_header(response, "content-type"), encoding=encoding,
        headers={k: _header(response, k) for k in KEPT_HEADERS if _header(response, k)},
        raw=response.body if raw is None else raw, region=page.region,
        complete=html_complete(response.body if raw is None else raw) if encoding != "binary" else None,
    )


def describe_failure(failure: Failure, settings: Any) -> tuple[str, str]:
    """A download failure as (outcome, reason): words for people (they reach health notices), never a
    Python or Twisted repr."""
    exc = failure.value
    if type(exc).__module__.startswith("playwright"):  # the browser's own errors: a timeout, a crash
        said = _said(exc).split(" Call log:")[0]
        return "error", f"the browser {'timed out' if type(exc).__name__ == 'TimeoutError' else 'failed'}: {said}"
    for kinds, outcome, reason in _FAILURE_REASONS:
        if isinstance(exc, kinds):
            return outcome, reason.format(exc=_said(exc), timeout=settings.getfloat("DOWNLOAD_TIMEOUT"), size=_size(settings.getint("DOWNLOAD_MAXSIZE")))
    return "error", f"{type(exc).__name__}: {_said(exc)}"


def _said(exc: BaseException) -> str:
    """An exception's own words on one line, without the reprs of wrapped Twisted failures."""
    text = " ".join(str(exc).split())
    return re.sub(r"\[?<twisted\.python\.failure\.Failure [\w.]+: ?(.*?)>\]?", r"\1", text)[:160].strip(" .:")


def _size(limit: int) -> str:
    return f"{limit / 2**20:g} MiB" if limit >= 2**20 else f"{limit} bytes"


_FAILURE_REASONS: tuple[tuple[tuple[type[BaseException], ...], str, str], ...] = (
    ((NoHostSlot,), "error", "{exc}"),
    ((IgnoreRequest,), "blocked", "not fetched: forbidden by robots.txt or a middleware ({exc})"),
    ((DownloadTimeoutError, TimeoutError, TCPTimedOutError), "error", "timeout after {timeout:g} s"),
    ((CannotResolveHostError, DNSLookupError), "error", "the host name does not resolve (DNS): {exc}"),
    ((DownloadConnectionRefusedError, ConnectionRefusedError), "error", "connection refused by the server"),
    ((ResponseDataLossError,), "error", "truncated: the connection closed before the declared length"),
    ((DownloadCancelledError,), "error", "body larger than {size} (the [crawl] max_bytes limit)"),
    ((DownloadFailedError, ResponseFailed, ConnectionLost, ResponseNeverReceived), "error", "connection reset by the server"),
)


def _header(response: Response, name: str) -> str:
    value = response.headers.get(name)
    return value.decode("latin-1") if value else ""


def _elapsed_ms(meta: dict[str, Any]) -> int:
    return int((time.monotonic() - meta["started"]) * 1000)

