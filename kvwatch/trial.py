"""`kvwatch test URL|ID`: fetch a page once through the same spider and normalizer a crawl uses, and
show what kvwatch would make of it (outcome, region and why, text, links, facts with evidence);
urlwatch's `--test-filter`. Nothing is written to the database."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from store.errors import NotFound

if TYPE_CHECKING:
    from kvwatch.cli import Context


def trial(obj: Context, target: str, selector: str | None, kind: str | None, render: str | None) -> dict[str, Any]:
    from scrapy import signals
    from scrapy.crawler import CrawlerProcess

    from crawler import browser as browser_fetch
    from crawler.facts import extract
    from crawler.fetch import FetchPlan, FetchResult, WatchSpider, scrapy_settings
    from crawler.watchlist import CrawlSettings, PageSpec

    crawl_settings, spec = CrawlSettings(), None
    if "://" not in target:
        watchlist = obj.watchlist()
        spec = next((p for p in watchlist.pages if p.id == target), None)
        if spec is None:
            raise NotFound(f"no page with id {target!r} in {obj.watchlist_path} (give a URL to test a page that is not watched)")
        crawl_settings = watchlist.crawl
    spec = spec or PageSpec(id="test", url=target)
    spec = replace(spec, selector=selector or spec.selector, kind=kind or spec.kind, render=render or spec.render)
    browser = browser_fetch.find()
    settings = {**scrapy_settings(crawl_settings, "", obj.log_level), "ITEM_PIPELINES": {}, "LOG_INSTALL_ROOT_HANDLER": False,
                **browser_fetch.scrapy_settings(browser, crawl_settings.timeout)}
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(WatchSpider)
    items: list[FetchResult] = []
    crawler.signals.connect(lambda item, **_: items.append(item), signal=signals.item_scraped, weak=False)
    process.crawl(crawler, plans=[FetchPlan(spec, render=spec.render)], known={}, browser_missing=browser.missing)
    process.start()
    result = next((item for item in items if isinstance(item, FetchResult) and item.attempt.page_id == spec.id), None)
    if result is None:
        return _result(spec.url, "error", "no answer (the crawl stopped)")
    attempt, capture = result.attempt, result.capture
    out = {**_result(attempt.url, attempt.outcome, attempt.reason, attempt.status), "via": attempt.via}
    if capture is not None:
        facts = extract(capture.title, capture.text, capture.links, pdf=capture.region == "pdf")
        out.update(region=capture.region, title=capture.title, text=capture.text, encoding=capture.encoding,
                   links=[{"text": t, "url": u} for t, u in capture.links],
                   facts=[{"field": f.field, "value": f.value, "evidence": f.evidence} for f in facts])
    return out


def _result(url: str, outcome: str, reason: str, status: int | None = None) -> dict[str, Any]:
    return {"url": url, "status": status, "outcome": outcome, "reason": reason, "via": "plain", "region": "", "title": "", "text": "", "encoding": "",
            "links": [], "facts": []}
