"""A fetched body → its main text and links (`Normalized`). HTML here; PDF in `crawler/pdf.py`.

The main region is the page's `selector`, else its site family's selectors, else every family's
selectors tried by markup, else a generic heuristic. Chrome (scripts, navigation, share and
print widgets, related lists, footers) is removed; paragraphs, list items and table rows become
lines; whitespace is collapsed; full-width digits and Latin letters become ASCII; Chinese
punctuation is kept; volatile labels (counters, dates) are removed by `crawler.noise`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit

from bs4 import BeautifulSoup, CData, NavigableString, PageElement, Tag

from crawler.families import FAMILIES, GENERIC_CONTENT, GENERIC_NOISE, NOISE_CLASS_WORDS, family_for_host
from crawler.noise import clean_line


@dataclass(frozen=True)
class Link:
    text: str
    url: str


@dataclass(frozen=True)
class Normalized:
    title: str
    text: str
    links: tuple[Link, ...]
    region: str  # which selector gave the main text ("pdf" for PDFs)


class SelectorNotFound(Exception):
    """The page's own selector matched nothing: the site changed, or the selector is wrong."""


BLOCK_TAGS = (
    "p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section",
    "article", "blockquote", "pre", "dd", "dt", "dl", "center", "caption", "hr",
)
_BLOCKS = frozenset(BLOCK_TAGS)
_FULLWIDTH = {c: c - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A)) for c in range(r[0], r[1] + 1)}
_CJK = r"\u2e80-\u2fdf\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_SPACE_NEAR_CJK = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")
_SPACES = re.compile(r"\s+")
_HIDDEN = re.compile(r"display\s*:\s*none")
CELL = "｜"  # between table cells; full-width, so the CJK spacing rule treats it consistently
_BREAK = "\u2029"  # a structural line break, distinct from newlines in the page source
_NOISE_CLASS = re.compile(r"(^|[-_\s])(" + "|".join(map(re.escape, NOISE_CLASS_WORDS)) + r")($|[-_\s\d])", re.I)
_TITLE_SUFFIX = re.compile(r"\s*[_|｜-]\s*(中国政府网|国家移民管理局|中华人民共和国.*|www\.gov\.cn|.*Embassy.*|.*Consulate.*)$")


def normalize_line(line: str) -> str:
    """Collapse whitespace, ASCII-fy full-width digits/letters, and drop spaces next to CJK text."""
    line = line.translate(_FULLWIDTH).replace("\u00a0", " ").replace("\u3000", " ")
    line = _SPACES.sub(" ", line).strip()
    return _SPACE_NEAR_CJK.sub("", line)


def clean_lines(lines: list[str]) -> str:
    """Normalized, chrome-free, non-empty lines joined by newlines."""
    out = (clean_line(normalize_line(line)) for line in lines)
    return "\n".join(line for line in out if line)


def normalize_html(html: str, url: str, selector: str | None = None, listing: bool = False) -> Normalized:
    """Main text and links of an HTML page. Raises SelectorNotFound if `selector` matches nothing."""
    soup = BeautifulSoup(html, "lxml")
    present = _Present.of(soup)
    title = _title(soup, url, present)
    base = _base_url(soup, url)
    region, region_name = _main_region(soup, url, selector, listing, present)
    _strip_chrome(region, url, present)
    links = _links(region, base)
    body = clean_lines(_lines(region))
    heading = normalize_line(title)
    text = body if not heading or body.startswith(heading) else f"{heading}\n{body}" if body else heading
    return Normalized(title=heading, text=text, links=links, region=region_name)


@dataclass(frozen=True)
class _Present:
    """The ids and classes a document has, so selectors that cannot match are never run (each failing
    select_one scans the whole tree; a page of no known family tries a dozen of them)."""

    ids: frozenset[str]
    classes: frozenset[str]

    @classmethod
    def of(cls, soup: BeautifulSoup) -> "_Present":
        ids, classes = set(), set()
        for el in soup.find_all(True):
            if el.get("id"):
                ids.add(str(el["id"]))
            classes.update(el.get("class") or ())
        return cls(frozenset(ids), frozenset(classes))

    def may_match(self, selector: str) -> bool:
        return all(i in self.ids for i in _SEL_ID.findall(selector)) and all(c in self.classes for c in _SEL_CLASS.findall(selector))


_SEL_ID = re.compile(r"#([\w-]+)")
_SEL_CLASS = re.compile(r"\.([\w-]+)")


def _title(soup: BeautifulSoup, url: str, present: _Present) -> str:
    name = family_for_host(urlsplit(url).hostname or "")
    families = [FAMILIES[name]] if name else list(FAMILIES.values())
    for family in families:
        for sel in family.title:
            el = soup.select_one(sel) if present.may_match(sel) else None
            if el is not None:
                text = el.get("content", "") if el.name == "meta" else el.get_text(" ")
                if str(text).strip():
                    return str(text).strip()
    tag = soup.find("title")
    return _TITLE_SUFFIX.sub("", tag.get_text(" ").strip()) if tag else ""


def _base_url(soup: BeautifulSoup, url: str) -> str:
    base = soup.find("base", href=True)
    return urljoin(url, str(base["href"])) if base else url


def _main_region(soup: BeautifulSoup, url: str, selector: str | None, listing: bool, present: _Present) -> tuple[Tag, str]:
    if selector:
        found = soup.select(selector)
        if not found:
            raise SelectorNotFound(f"selector {selector!r} matched nothing")
        return _merge(soup, found), selector
    name = family_for_host(urlsplit(url).hostname or "")
    families = [FAMILIES[name]] if name else list(FAMILIES.values())
    for family in families:
        chains = (family.listing, family.content) if listing else (family.content, family.listing)
        for sel in chains[0] + chains[1]:
            el = soup.select_one(sel) if present.may_match(sel) else None
            if el is not None and el.get_text(strip=True):
                return el, sel
    for sel in GENERIC_CONTENT:
        el = soup.select_one(sel) if present.may_match(sel) else None
        if el is not None and el.get_text(strip=True):
            return el, sel
    return soup, "document"


def _merge(soup: BeautifulSoup, found: list[Tag]) -> Tag:
    if len(found) == 1:
        return found[0]
    wrapper = soup.new_tag("div")
    for el in found:
        wrapper.append(el.extract())
    return wrapper


def _strip_chrome(region: Tag, url: str, present: _Present) -> None:
    name = family_for_host(urlsplit(url).hostname or "")
    family_noise = [s for s in (FAMILIES[name].noise if name else [s for f in FAMILIES.values() for s in f.noise]) if present.may_match(s)]
    doomed = region.find_all(GENERIC_NOISE)
    if family_noise:
        doomed += region.select(", ".join(family_noise))
    for el in region.find_all(True):
        marker = " ".join(el.get("class") or []) + " " + str(el.get("id") or "")
        if (marker.strip() and _NOISE_CLASS.search(marker)) or (el.get("style") and _HIDDEN.search(str(el["style"]))):
            doomed.append(el)
    for el in doomed:
        if el is not region and not el.decomposed:
            el.decompose()


def _lines(region: Tag) -> list[str]:
    """Block elements, <br> and table rows become line breaks, cells are joined by CELL; newlines in the
    source are spaces. One iterative walk (no tree edits: bs4 inserts are linear each; no recursion limit)."""
    out: list[str] = []
    stack: list[tuple[PageElement, bool]] = [(child, False) for child in reversed(region.contents)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            if node.name in ("td", "th") and _is_inner_cell(node):  # type: ignore[arg-type]
                out.append(CELL)
            if node.name in _BLOCKS:
                out.append(_BREAK)
        elif isinstance(node, NavigableString):
            if type(node) in (NavigableString, CData):
                out.append(str(node))
        elif isinstance(node, Tag):
            if node.name == "br":
                out.append(_BREAK)
                continue
            if node.name in _BLOCKS:
                out.append(_BREAK)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
    return "".join(out).replace("\r", " ").replace("\n", " ").split(_BREAK)


def _is_inner_cell(cell: Tag) -> bool:
    """A td/th of a row that has another td/th after it."""
    if cell.parent is None or cell.parent.name != "tr":
        return False
    return any(isinstance(sib, Tag) and sib.name in ("td", "th") for sib in cell.next_siblings)


def _links(region: Tag, base: str) -> tuple[Link, ...]:
    seen: dict[str, Link] = {}
    for a in region.find_all("a", href=True):
        href = str(a["href"]).strip()
        if href.lower().startswith(("javascript:", "mailto:", "tel:", "#")):
            continue
        absolute = urldefrag(urljoin(base, href))[0]
        if urlsplit(absolute).scheme not in ("http", "https") or absolute in seen:
            continue
        text = normalize_line(a.get_text(" ")) or absolute.rsplit("/", 1)[-1]
        seen[absolute] = Link(text=unicodedata.normalize("NFC", text), url=absolute)
    return tuple(seen.values())
