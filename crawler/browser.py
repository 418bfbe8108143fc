"""Browser fetch: pages that only a browser can read — a JavaScript challenge that computes a cookie
and reloads (the NIA's and gov.cn's anti-bot layer), or an article written into an empty shell by
scripts. Done inside the same Scrapy crawl by scrapy-playwright, driving the system's Chromium
(Debian's `chromium`, found on PATH or named by `KVWATCH_CHROMIUM`): Playwright's own browser
downloads are not available on our users' servers.

Optional: without the `browser` extra or a Chromium, a page that needs the browser is recorded as
`blocked` with what to install (`INSTALL`). The browser is started at the first page that needs it
(a crawl that needs none starts none), one per crawl, at most `MAX_PAGES` pages open at once, and
closed with the crawl. The rendered DOM then goes through the same outcome classification and
normalization as a plain body.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import shutil
import subprocess
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from crawler.outcome import classify_status

log = logging.getLogger(__name__)

INSTALL = ("needs a browser: install one with pip install 'kvwatch[browser]' and the system package chromium "
           "(apt-get install chromium), or set KVWATCH_CHROMIUM to a Chromium executable")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# As root, in a container, on a closed network: no sandbox, no GPU, no calls home (which a closed
# network refuses many at a time), a fresh profile (Playwright makes one per launch).
FLAGS = ("--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-default-apps", "--disable-extensions", "--mute-audio")
MAX_PAGES = 4                          # pages open at once in the one browser
PROBE_EVERY = timedelta(days=1)        # a page that needed the browser is tried plainly again this often
SETTLE_ROUNDS = 4                      # challenge reloads followed before giving up on a page
NOT_DOWNLOADED = ("image", "font", "media")
HANDLER = "crawler.browser_handler.BrowserOrPlainHandler"  # imported by Scrapy only when configured
STOPPED = "<html><body><!-- kvwatch: an anti-bot challenge kept reloading; stopped --></body></html>"
DOCUMENTS = "kvwatch_documents"        # request.meta key: statuses of the page's main-frame documents


@dataclass(frozen=True)
class Browser:
    """The Chromium this machine can drive, or why there is none."""

    executable: str | None = None
    missing: str = ""

    @property
    def ok(self) -> bool:
        return not self.missing


@dataclass(frozen=True)
class Rendered:
    """What the browser ended on: the last main-frame document's status, its DOM as HTML, the cookies
    it holds for the page's URL, and how many documents it went through (a challenge reloads)."""

    status: int
    html: str
    cookies: tuple[tuple[str, str], ...] = ()
    documents: int = 1


def find() -> Browser:
    """The browser to use: `KVWATCH_CHROMIUM`, else the first Chromium on PATH; with the reason if none."""
    if importlib.util.find_spec("scrapy_playwright") is None or importlib.util.find_spec("playwright") is None:
        return Browser(missing=f"{INSTALL} (the Python packages playwright and scrapy-playwright are not installed)")
    named = os.environ.get("KVWATCH_CHROMIUM", "").strip()
    if named:
        path = shutil.which(named)
        if not path:
            return Browser(missing=f"{INSTALL} (KVWATCH_CHROMIUM={named} is not an executable)")
        return Browser(path)
    path = next((found for found in map(shutil.which, CHROMIUM_NAMES) if found), None)
    return Browser(path) if path else Browser(missing=f"{INSTALL} (no {' or '.join(CHROMIUM_NAMES[:2])} on PATH)")


def version(executable: str) -> str:
    """`chromium --version`, or why it could not be read."""
    try:
        out = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    return (out.stdout.strip() or out.stderr.strip() or "unknown").splitlines()[0]


def scrapy_settings(browser: Browser, timeout: float) -> dict[str, Any]:
    """The download handler and scrapy-playwright settings; none when there is no browser."""
    if not browser.ok:
        return {}
    return {
        "DOWNLOAD_HANDLERS": {"http": HANDLER, "https": HANDLER},  # plain requests pass through to Scrapy's own
        "PLAYWRIGHT_BROWSER_TYPE": "chromium",
        "PLAYWRIGHT_LAUNCH_OPTIONS": {"executable_path": browser.executable, "headless": True, "args": list(FLAGS),
                                      "timeout": timeout * 1000, "handle_sigterm": False, "handle_sigint": False},
        "PLAYWRIGHT_MAX_CONTEXTS": 1,
        "PLAYWRIGHT_MAX_PAGES_PER_CONTEXT": MAX_PAGES,
        "PLAYWRIGHT_DEFAULT_NAVIGATION_TIMEOUT": timeout * 1000,
        "PLAYWRIGHT_ABORT_REQUEST": "crawler.browser.abort_request",
        "PLAYWRIGHT_RESTART_DISCONNECTED_BROWSER": True,
    }


def request_meta(user_agent: str, timeout: float) -> dict[str, Any]:
    """Request meta that sends a request through the browser."""
    from scrapy_playwright.page import PageMethod

    documents: list[int] = []
    return {
        "playwright": True,
        "playwright_context": "kvwatch",
        "playwright_context_kwargs": {"user_agent": user_agent, "locale": "zh-CN", "service_workers": "block",
                                      "accept_downloads": False},
        "playwright_page_init_callback": watch_documents,
        "playwright_page_goto_kwargs": {"wait_until": "commit"},  # `settle` does the waiting
        "playwright_page_methods": [PageMethod(settle, documents, timeout)],
        DOCUMENTS: documents,
    }


def rendered(meta: dict[str, Any]) -> Rendered | None:
    """What `settle` found, from a browser response's meta."""
    methods = meta.get("playwright_page_methods") or []
    result = methods[0].result if methods else None
    return result if isinstance(result, Rendered) else None


def abort_request(request: Any) -> bool:
    """Images, fonts and media are not downloaded: the text is all kvwatch reads."""
    return bool(request.resource_type in NOT_DOWNLOADED)


async def watch_documents(page: Any, request: Any) -> None:
    """Before navigating: record the status of every main-frame document the page goes through, and
    refuse main-frame navigations after the first SETTLE_ROUNDS + 1 (a challenge that reloads forever
    then ends on a stand-in document with the challenge's status, and is classified as blocked)."""
    documents: list[int] = request.meta[DOCUMENTS]
    navigations = 0

    def on_response(response: Any) -> None:
        with suppress(Exception):  # a response of a frame already gone
            if response.request.is_navigation_request() and response.frame == page.main_frame:
                documents.append(response.status)

    async def guard(route: Any, req: Any) -> None:
        nonlocal navigations
        if req.is_navigation_request() and req.frame == page.main_frame:
            navigations += 1
            if navigations > SETTLE_ROUNDS + 1:  # a document that loads (an aborted one never fires load)
                await route.fulfill(status=documents[-1] if documents else 412, content_type="text/html", body=STOPPED)
                return
        await route.fallback()  # to scrapy-playwright's own route (headers, aborted resources)

    page.on("response", on_response)
    await page.route("**", guard)


async def settle(page: Any, documents: list[int], timeout: float) -> Rendered:
    """Wait, bounded, until the page is quiet and is no longer a challenge: a challenge computes its
    cookie and reloads, perhaps more than once; a client-rendered page fetches its JSON and writes the
    article. Then keep the document there is (further navigations are refused) and read it."""
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import TimeoutError as PlaywrightTimeout

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout

    def left_ms(cap: float = timeout) -> float:
        return max(min(deadline - loop.time(), cap), 0.1) * 1000

    html = ""
    for _ in range(SETTLE_ROUNDS + 1):
        with suppress(PlaywrightTimeout):
            await page.wait_for_load_state("load", timeout=left_ms())
        with suppress(PlaywrightTimeout):  # scripts that fetch the article (JSON) and write it
            await page.wait_for_load_state("networkidle", timeout=left_ms(10))  # a slow JSON fetch still counts; endless polling does not
        html = await _content(page)
        decided = classify_status(documents[-1] if documents else 200, html.encode("utf-8"))
        if not decided or decided[0] != "blocked" or len(documents) > SETTLE_ROUNDS or loop.time() >= deadline:
            break
        try:  # a challenge: it reloads once its script has set the cookie
            await page.wait_for_event("framenavigated", predicate=lambda frame: frame == page.main_frame, timeout=left_ms(5))
        except PlaywrightTimeout:
            break
    with suppress(PlaywrightError):  # stay on the document we have
        await page.route("**", lambda route: route.abort("aborted"))
    cookies = await page.context.cookies([page.url]) if page.url.startswith("http") else []
    return Rendered(documents[-1] if documents else 200, html,
                    tuple((c["name"], c["value"]) for c in cookies), max(len(documents), 1))


async def _content(page: Any) -> str:
    """The DOM as HTML; a page caught mid-navigation is asked again once it has loaded."""
    from playwright.async_api import Error as PlaywrightError

    for _ in range(3):
        try:
            return str(await page.content())
        except PlaywrightError:
            with suppress(PlaywrightError):
                await page.wait_for_load_state("load", timeout=5000)
    return ""
