"""Discovery: China's embassies, consulates-general and missions to organisations, from the foreign
ministry's list of missions, and on each mission's own site the pages worth watching: its consular or
visa section (a `listing`) in every language tree, and any page or attachment whose title names the
K visa. The result is a reviewable file of `[[page]]` entries (`render_toml`), and a report of what
changed since the last run (`compare`).

The list (`www.fmprc.gov.cn/web/zwjg_674741/`): embassies under `zwsg_674743/` in six regional
lists, consulates-general under `zwzlg_674757/`, missions to organisations under `zwtc_674771/`;
each list paginated `index.shtml`, `index_1.shtml`…; each mission's detail page has "label：value"
lines (网址, 地址, 电话) in `#News_Body_Txt_A`. The mission's host comes from 网址.

Bounded and polite: robots.txt is obeyed, the watchlist's `[crawl]` politeness applies, list pages
are followed at most MAX_LIST_PAGES deep, and a mission's site gives at most MAX_PAGES_PER_MISSION
pages from at most three levels (home → language tree → consular section).
"""

from __future__ import annotations

import gettext
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import scrapy
from scrapy.http import Response

from crawler.dom import CELL, Document, EmptyDocument, TooDeep
from crawler.facts import is_relevant

log = logging.getLogger(__name__)

DEFAULT_INDEX = "https://www.fmprc.gov.cn/web/zwjg_674741/"
LISTS = {  # region → the list's path under the index, and the kind of mission it holds
    "asia": ("zwsg_674743/yz_674745/", "embassy"),
    "africa": ("zwsg_674743/fz_674747/", "embassy"),
    "europe": ("zwsg_674743/xo_674749/", "embassy"),
    "west-asia-north-africa": ("zwsg_674743/xybf_674751/", "embassy"),
    "eastern-europe-central-asia": ("zwsg_674743/dozy_674753/", "embassy"),
    "americas-oceania": ("zwsg_674743/bmdyz_674755/", "embassy"),
    "consulates": ("zwzlg_674757/", "consulate-general"),
    "organisations": ("zwtc_674771/", "mission"),
}
LANGUAGES = {"chn": "zh", "eng": "en", "fra": "fr", "rus": "ru", "esp": "es", "ara": "ar", "deu": "de", "ger": "de", "por": "pt",
             "jpn": "ja", "kor": "ko", "ita": "it", "tur": "tr", "vie": "vi", "tha": "th", "ind": "id", "pol": "pl", "ukr": "uk"}
SECTION_TEXT = re.compile(r"领事服务|领事侨务|领事业务|签证|护照签证|Consular|Visa|Visas|Services? consulaires?|Консульск|Виз[аы]|"
                          r"Servicios? [Cc]onsulares|Visados?|Vistos?|Konsular|Visum|التأشيرات|القنصلية", re.I)
SECTION_PATH = re.compile(r"/(zgqz|qz|visa|lsfw|lsyw|ls|consular)(/|$)", re.I)
VISA_PATH = re.compile(r"/(zgqz|qz|visa)(/|$)", re.I)
DETAIL_PATH = re.compile(r"/\d{6}/t\d{8}_\d+\.s?html?$")
LABEL_LINE = re.compile(rf"^\s*([^：:{CELL}]{{1,12}}?)\s*[：:{CELL}](?!//)\s*(.*?)\s*$")  # "http://…" is not a label; a table row is "label｜value"
SITE_LABELS = ("网址", "网站", "网站地址", "馆网址", "Website", "Web site", "Web", "URL")
MAX_LIST_PAGES = 30
MAX_PAGES_PER_MISSION = 20
EMBASSY_HOST = re.compile(r"^([a-z]{2})\.china-embassy\.gov\.cn$")
CONSULATE_HOST = re.compile(r"^([a-z0-9-]+)\.china-consulate\.gov\.cn$")


@dataclass(frozen=True)
class Mission:
    host: str
    url: str
    name: str
    name_en: str
    country: str     # ISO 3166 alpha-2, lower case; "" when it cannot be told
    city: str        # a slug: the consulate's host label, "embassy" or "mission" otherwise
    kind: str        # embassy | consulate-general | mission
    region: str
    found: str       # the detail page it was read from


@dataclass(frozen=True)
class Found:
    """A page worth watching, with how it was found (written as a comment beside its entry)."""

    id: str
    url: str
    name: str
    kind: str
    tags: dict[str, str]
    how: str


@dataclass
class MissionSite:
    mission: Mission
    pages: list[Found] = field(default_factory=list)

    def add(self, page: Found) -> None:
        if len(self.pages) < MAX_PAGES_PER_MISSION and all(p.id != page.id and p.url != page.url for p in self.pages):
            self.pages.append(page)


def country_of(host: str, *texts: str) -> str:
    """A mission's country: from an embassy's host (`ke.china-embassy.gov.cn`), else from a country's
    name (Chinese or English, as pycountry knows them) in its name, address or country line."""
    if m := EMBASSY_HOST.match(host):
        return m.group(1)
    for text in texts:
        for name, code in _country_names():
            if name and name in text:
                return code
    return ""


_NAMES: list[tuple[str, str]] = []


def _country_names() -> list[tuple[str, str]]:
    """(name, alpha-2) for every country, Chinese and English, longest names first (美国 before 美)."""
    if not _NAMES:
        import pycountry

        zh = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["zh_CN"], fallback=True)
        for country in pycountry.countries:
            code = country.alpha_2.lower()
            for name in {country.name, getattr(country, "common_name", ""), zh.gettext(country.name)}:
                if len(name) >= 2:
                    _NAMES.append((name, code))
        _NAMES.sort(key=lambda pair: -len(pair[0]))
    return _NAMES


def slug(text: str) -> str:
    """Letters and digits only (ids split on '-'): 'los-angeles' → 'losangeles'."""
    return re.sub(r"[^a-z0-9]+", "", text.lower())[:30] or "x"


def page_id(mission: Mission, section: str, language: str) -> str:
    return f"mission-{mission.country or 'xx'}-{mission.city}-{section}-{language}"


def read_labels(lines: list[str]) -> dict[str, str]:
    """"label：value" lines, first value wins; a label whose value is on the next line (a table row's two
    cells, a <br> after the colon) takes that line."""
    labels: dict[str, str] = {}
    for i, line in enumerate(lines):
        if m := LABEL_LINE.match(line):
            value = m.group(2) or (lines[i + 1].strip() if i + 1 < len(lines) and not LABEL_LINE.match(lines[i + 1]) else "")
            if value:
                labels.setdefault(m.group(1).strip(), value)
        elif i + 1 < len(lines) and line.strip() in SITE_LABELS + ("地址", "电话", "英文名称") and not LABEL_LINE.match(lines[i + 1]) \
                and lines[i + 1].strip() not in SITE_LABELS:  # a label cell without a colon, its value in the next cell
            labels.setdefault(line.strip(), lines[i + 1].strip())
    return labels


class MissionSpider(scrapy.Spider):
    """Lists → mission detail pages → each mission's home → its language trees → consular section."""

    name = "kvwatch-discover"

    def __init__(self, index: str = DEFAULT_INDEX, regions: tuple[str, ...] = (), country: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self.index = index if index.endswith("/") else index + "/"
        self.regions = regions or tuple(LISTS)
        self.country = country.lower()
        self.sites: dict[str, MissionSite] = {}

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for region in self.regions:
            path, kind = LISTS[region]
            yield scrapy.Request(urljoin(self.index, path + "index.shtml"), callback=self.parse_list,
                                 cb_kwargs={"region": region, "kind": kind, "page": 0}, errback=self.failed)

    def failed(self, failure: Any) -> None:
        response = getattr(failure.value, "response", None)
        said = f"HTTP {response.status}" if response is not None else failure.getErrorMessage()
        log.warning("discovery: %s: %s", failure.request.url, said)

    def parse_list(self, response: Response, region: str, kind: str, page: int) -> Iterator[scrapy.Request]:
        seen: set[str] = set()
        for href in response.css("a::attr(href)").getall():
            url = response.urljoin(href)
            if DETAIL_PATH.search(urlsplit(url).path) and url not in seen:
                seen.add(url)
                yield scrapy.Request(url, callback=self.parse_detail, cb_kwargs={"region": region, "kind": kind}, errback=self.failed)
        if page == 0:  # the list's other pages: index_1.shtml … as its pager (or createPageHTML(n, …)) says
            counted = re.search(r"createPageHTML\(\s*(\d+)", response.text)
            pages = int(counted.group(1)) if counted else 1 + max(
                (int(m.group(1)) for m in re.finditer(r"index_(\d+)\.shtml", response.text)), default=0)
            for n in range(1, min(pages, MAX_LIST_PAGES)):
                yield scrapy.Request(response.urljoin(f"index_{n}.shtml"), callback=self.parse_list,
                                     cb_kwargs={"region": region, "kind": kind, "page": n}, errback=self.failed)

    def parse_detail(self, response: Response, region: str, kind: str) -> Iterator[scrapy.Request]:
        try:  # the normalizer's own parse and line walker: blocks and <br> break lines, table cells join by ｜
            doc = Document.parse(response.text)
        except (EmptyDocument, TooDeep) as exc:
            log.warning("discovery: %s: %s", response.url, exc)
            return
        root = doc.root
        body = next(iter(doc.select("#News_Body_Txt_A")), doc.body)
        labels = read_labels([" ".join(line.split()) for line in doc.lines([body]) if line.strip()])
        site = next((v for k, v in labels.items() if k in SITE_LABELS), "")
        if not site:  # 网址 given only as a link's target
            site = next((a.get("href", "") for a in body.iter("a") if (a.text_content() or "").strip().rstrip("：:") in SITE_LABELS), "")
        site = site.split()[0] if site.split() else ""
        if not site:
            log.info("discovery: no 网址 line on %s", response.url)
            return
        url = site if "://" in site else f"http://{site}"
        host = (urlsplit(url).hostname or "").lower()
        if "." not in host:
            log.info("discovery: 网址 on %s is not a site address: %r", response.url, site)
            return
        title = (root.findtext(".//h1") or "").strip() or next(
            (m.get("content", "") for m in root.iter("meta") if m.get("name") == "ArticleTitle"), "") or (root.findtext(".//title") or "").strip()
        name_en = next((v for k, v in labels.items() if k in ("英文名称", "英文名", "English name", "Name")), "")
        country = country_of(host, labels.get("国家", ""), labels.get("所在国", ""), title, labels.get("地址", ""), name_en)
        if kind == "consulate-general" and (m := CONSULATE_HOST.match(host)):
            city = slug(m.group(1))
        else:
            city = "embassy" if kind == "embassy" else slug(host.split(".")[0])
        mission = Mission(host, url, title, name_en, country, city, kind, region, response.url)
        if self.country and mission.country != self.country:
            return
        if host in self.sites:
            return
        self.sites[host] = MissionSite(mission)
        yield scrapy.Request(url, callback=self.parse_home, cb_kwargs={"host": host}, errback=self.failed, dont_filter=True)

    def parse_home(self, response: Response, host: str) -> Iterator[scrapy.Request]:
        trees: dict[str, str] = {}
        for a in response.css("a"):
            href = a.attrib.get("href", "")
            url = response.urljoin(href)
            parts = urlsplit(url)
            m = re.match(r"^/([a-z]{3})/?$", parts.path) or re.match(r"^/([a-z]{3})/(?:index\.s?html?)?$", parts.path)
            if parts.hostname == urlsplit(response.url).hostname and m and m.group(1) in LANGUAGES:
                trees.setdefault(LANGUAGES[m.group(1)], url)
        if not trees:  # one tree: the home itself, in the language it declares
            lang = (response.css("html::attr(lang)").get() or "zh")[:2].lower()
            yield from self.parse_tree(response, host, lang, "home")
            return
        for lang, url in sorted(trees.items()):
            yield scrapy.Request(url, callback=self.parse_tree, cb_kwargs={"host": host, "lang": lang, "how": f"language link {urlsplit(url).path}"},
                                 errback=self.failed)

    def parse_tree(self, response: Response, host: str, lang: str, how: str) -> Iterator[scrapy.Request]:
        site = self.sites[host]
        sections: list[tuple[int, int, str, str]] = []
        for a in response.css("a"):
            url, text = response.urljoin(a.attrib.get("href", "")), " ".join(a.css("::text").getall()).strip()
            if urlsplit(url).hostname != host:
                continue
            path = urlsplit(url).path
            if SECTION_PATH.search(path) or SECTION_TEXT.search(text):
                rank = 0 if VISA_PATH.search(path) else 1 if SECTION_PATH.search(path) else 2
                sections.append((rank, len(sections), url, text))
            self._k_page(site, url, text, lang, f"{how} → link {text!r}")
        if sections:
            _, _, url, text = min(sections)
            yield scrapy.Request(url, callback=self.parse_section, cb_kwargs={"host": host, "lang": lang, "how": f"{how} → link {text!r}"},
                                 errback=self.failed)

    def parse_section(self, response: Response, host: str, lang: str, how: str) -> None:
        site = self.sites[host]
        mission = site.mission
        site.add(Found(page_id(mission, "visa", lang), response.url, f"{mission.name or host}: consular and visa section ({lang})", "listing",
                       self._tags(mission, lang), f"{how} (the consular/visa section)"))
        for a in response.css("a"):
            url, text = response.urljoin(a.attrib.get("href", "")), " ".join(a.css("::text").getall()).strip()
            if urlsplit(url).hostname == host:
                self._k_page(site, url, text, lang, f"{how} → link {text!r}")

    def _k_page(self, site: MissionSite, url: str, text: str, lang: str, how: str) -> None:
        if not text or not is_relevant(text):
            return
        mission = site.mission
        section = "k-" + hashlib.sha1(urlsplit(url).path.encode()).hexdigest()[:6]
        site.add(Found(page_id(mission, section, lang), url, text[:120], "auto", self._tags(mission, lang), f"{how} (names the K visa)"))

    @staticmethod
    def _tags(mission: Mission, lang: str) -> dict[str, str]:
        tags = {"agency": "mission", "country": mission.country, "city": mission.city, "language": lang, "kind": mission.kind}
        return {k: v for k, v in tags.items() if v}


def run(index: str, regions: tuple[str, ...], country: str, settings: dict[str, Any]) -> list[MissionSite]:
    """Crawl the list and the missions' sites once, in this process (Scrapy's reactor runs once)."""
    from scrapy.crawler import CrawlerProcess

    process = CrawlerProcess(settings)
    crawler = process.create_crawler(MissionSpider)
    process.crawl(crawler, index=index, regions=regions, country=country)
    process.start()
    spider = crawler.spider
    return list(spider.sites.values()) if isinstance(spider, MissionSpider) else []


# --- output --------------------------------------------------------------------------------------

def render_toml(sites: list[MissionSite], index: str) -> str:
    """The generated file: a header, then per mission its pages, each with how it was found."""
    out = [f"# Generated by `kvwatch discover missions` from {index}", "# Review before use; a re-run reports what it would add, remove or move.",
           "# Included by the watchlist with: include = [\"watchlist.d/*.toml\"]", ""]
    for site in sorted(sites, key=lambda s: (s.mission.country, s.mission.city, s.mission.host)):
        mission = site.mission
        out.append(f"# --- {mission.name or mission.host} ({mission.kind}, {mission.country or 'country unknown'}) {mission.url}")
        if mission.name_en:
            out.append(f"#     {mission.name_en}")
        if not site.pages:
            out.append("#     no consular/visa section or K-visa page found on its site")
        for page in site.pages:
            tags = ", ".join(f'{k} = "{v}"' for k, v in page.tags.items())
            out += [f"# found: {mission.found} → 网址 {mission.url} → {page.how}", "[[page]]", f'id = "{page.id}"', f'url = "{_q(page.url)}"',
                    f'name = "{_q(page.name)}"'] + ([f'kind = "{page.kind}"'] if page.kind != "auto" else []) + [f"tags = {{ {tags} }}", ""]
    return "\n".join(out).rstrip() + "\n"


def _q(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class Report:
    added: tuple[tuple[str, str], ...]
    removed: tuple[tuple[str, str], ...]
    moved: tuple[tuple[str, str, str], ...]  # id, old URL, new URL
    missions_added: tuple[str, ...]
    missions_removed: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.moved)

    def lines(self) -> list[str]:
        out = [f"missions: {len(self.missions_added)} added, {len(self.missions_removed)} removed; "
               f"pages: {len(self.added)} added, {len(self.removed)} removed, {len(self.moved)} moved"]
        out += [f"+ mission {m}" for m in self.missions_added] + [f"- mission {m} (closed, or no longer listed)" for m in self.missions_removed]
        out += [f"+ {i}  {u}" for i, u in self.added] + [f"- {i}  {u}" for i, u in self.removed]
        out += [f"~ {i}  {old} → {new}" for i, old, new in self.moved]
        return out


def compare(old: dict[str, str], new: dict[str, str]) -> Report:
    """What a re-run changes, by page id → URL: added, removed, moved (same id, new URL); and missions
    (the `mission-<cc>-<city>` part of the ids) that appeared or disappeared."""
    def missions(ids: dict[str, str]) -> set[str]:
        return {"-".join(i.split("-")[:3]) for i in ids}

    return Report(
        added=tuple(sorted((i, u) for i, u in new.items() if i not in old)),
        removed=tuple(sorted((i, u) for i, u in old.items() if i not in new)),
        moved=tuple(sorted((i, old[i], u) for i, u in new.items() if i in old and old[i] != u)),
        missions_added=tuple(sorted(missions(new) - missions(old))),
        missions_removed=tuple(sorted(missions(old) - missions(new))),
    )
