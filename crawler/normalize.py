"""A fetched body → its main text and links (`Normalized`). HTML here; PDF in `crawler/pdf.py`.

The page is parsed once with lxml (`crawler.dom`), its chrome marked, its main region chosen
(`crawler.region`: selector, site family, text density, and continuity with the previous snapshot),
and the region walked into lines: paragraphs, list items and table rows become lines; whitespace is
collapsed; full-width digits and Latin letters become ASCII; Chinese punctuation is kept; volatile
labels (counters, dates) are removed by `crawler.noise`. A block repeated inside the region (a
responsive template's mobile copy of the article or of its header table) is read once.

The page title is part of the text: it is the first line, unless the region's first lines already
say it (an <h1> equal to the title), so a page with and without an <h1> compare alike and a
renamed notice is a change.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit

from lxml import etree

from crawler.dom import CELL, Document, EmptyDocument, TooDeep, lenient_lines, selector
from crawler.noise import clean_line
from crawler.region import Anchor, MainContentNotFound, NoText, Region, SelectorNotFound, choose, family_of

__all__ = ["CELL", "Anchor", "Link", "Normalized", "NoText", "SelectorNotFound", "MainContentNotFound", "normalize_html"]


@dataclass(frozen=True)
class Link:
    text: str
    url: str


@dataclass(frozen=True)
class Normalized:
    title: str
    text: str
    links: tuple[Link, ...]
    region: str  # which selector or method gave the main text ("pdf" for PDFs)


_FULLWIDTH = {c: c - 0xFEE0 for r in ((0xFF10, 0xFF19), (0xFF21, 0xFF3A), (0xFF41, 0xFF5A)) for c in range(r[0], r[1] + 1)}
_CJK = r"\u2e80-\u2fdf\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_SPACE_NEAR_CJK = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")
_SPACES = re.compile(r"\s+")
_HAS_FULLWIDTH = re.compile("[\uff10-\uff19\uff21-\uff3a\uff41-\uff5a]")
_HAS_SPACE = re.compile("[\\s\u00a0\u3000]")
_TITLE_PARTS = re.compile(r"\s*[_｜]\s*|\s+[-–—|·]\s+|\s*——\s*")  # between a title and its section and site names
_KEY_DROP = re.compile(r"[\W_]+")
REPEAT_MIN = 40  # a repeated block needs this many letters/characters to count as a copy


def normalize_line(line: str) -> str:
    """Collapse whitespace, ASCII-fy full-width digits/letters, and drop spaces next to CJK text."""
    if _HAS_FULLWIDTH.search(line):
        line = line.translate(_FULLWIDTH)
    if _HAS_SPACE.search(line):
        line = _SPACES.sub(" ", line.replace("\u00a0", " ").replace("\u3000", " ")).strip()
        return _SPACE_NEAR_CJK.sub("", line)
    return line


def clean_lines(lines: list[str]) -> str:
    """Normalized, chrome-free, non-empty lines joined by newlines."""
    out = (clean_line(normalize_line(line)) for line in lines)
    return "\n".join(line for line in out if line)


def normalize_html(html: str, url: str, selector: str | None = None, listing: bool = False, anchor: Anchor | None = None) -> Normalized:
    """Main text and links of an HTML page.

    Raises SelectorNotFound (the page's selector matched nothing), MainContentNotFound, or NoText
    (nothing readable: an empty or unrendered body)."""
    try:
        doc = Document.parse(html)
    except EmptyDocument as exc:
        raise NoText(f"no HTML document: {exc}") from exc
    except TooDeep as exc:
        lines = _clean(lenient_lines(html))
        if not lines:
            raise NoText(f"no text ({exc})") from exc
        return Normalized(title=lines[0][:200], text="\n".join(lines), links=(), region=f"whole document, read leniently ({exc})")
    host = urlsplit(url).hostname or ""
    family = family_of(doc, host)
    doc.mark_chrome(family.noise if family else ())
    heading = normalize_line(_title(doc))
    seen: dict[tuple[etree._Element, ...], list[str]] = {}

    article = not listing and not selector

    drops: dict[tuple[etree._Element, ...], set[etree._Element]] = {}

    def dropped(elements: tuple[etree._Element, ...]) -> set[etree._Element]:
        if elements not in drops:
            drops[elements] = _repeats(doc, elements) | (_link_lists(doc, elements) if article else set())
        return drops[elements]

    def lines_of(elements: tuple[etree._Element, ...]) -> list[str]:
        if elements not in seen:
            seen[elements] = _clean(doc.lines(elements, dropped(elements)))
        return seen[elements]

    region = choose(doc, family, selector, listing, anchor, lines_of)
    def is_list(how: str) -> bool:
        return how.startswith(("portal", "article links")) or bool(family and any(how.endswith(f": {css}") for css in family.listing))

    # a list of links is the content of a portal or a listing, unless the page was read as an article before
    if article and is_list(region.how) and not (anchor is not None and anchor.region and not is_list(anchor.region)):
        article = False
        seen.clear()
        drops.clear()
    drop = dropped(region.elements)
    body_lines = lines_of(region.elements)
    if not body_lines:
        raise NoText(f"no text in the main content ({region.how})" + (f"; only a title: {heading[:60]!r}" if heading else ""))
    text = "\n".join(body_lines if not heading or any(heading in line for line in body_lines[:3]) else [heading, *body_lines])
    return Normalized(title=heading, text=text, links=_links(doc, region, drop, _base_url(doc, url)), region=region.how)


def _clean(lines: list[str]) -> list[str]:
    out = (clean_line(normalize_line(line)) for line in lines)
    return [line for line in out if line]


def _title(doc: Document) -> str:
    """The page's title, read only from what a re-render keeps: the CMS's `ArticleTitle` meta tag,
    else the first part of <title> ("通知_国务院文件_中国政府网" → "通知"; "Notice | Site" → "Notice")."""
    for el in selector("meta[name=ArticleTitle]")(doc.root):
        if (el.get("content") or "").strip():
            return el.get("content", "").strip()
    tag = doc.root.find(".//title")
    text = tag.text_content().strip() if tag is not None else ""
    first = _TITLE_PARTS.split(text, maxsplit=1)[0].strip()
    return first if len(first) >= 4 else text


def _base_url(doc: Document, url: str) -> str:
    base = doc.root.find(".//base[@href]")
    return urljoin(url, base.get("href", "")) if base is not None else url


def _repeats(doc: Document, elements: tuple[etree._Element, ...]) -> set[etree._Element]:
    """Blocks inside the region whose text (letters and characters only) repeats an earlier block:
    a responsive template's second copy of the article or of its metadata table."""
    keys: dict[etree._Element, str] = {}
    for top in elements:
        for el in reversed(list(doc.elements(top))):
            parts = [el.text or ""]
            for child in el:
                parts.append(keys.get(child, ""))
                parts.append(child.tail or "")
            keys[el] = _KEY_DROP.sub("", "".join(parts))
    seen: dict[str, etree._Element] = {}
    drop: set[etree._Element] = set()
    for top in elements:
        stack = [top]
        while stack:
            el = stack.pop()
            key = keys.get(el)
            if key is None:
                continue
            if len(key) >= REPEAT_MIN:
                first = seen.get(key)
                if first is not None and first not in set(el.iterancestors()):
                    drop.add(el)
                    continue
                seen.setdefault(key, el)
            stack.extend(reversed(el))
    return drop


_SPACE = re.compile(r"\s+")
_LIST_TAGS = ("ul", "ol", "div", "dl", "table", "section")
_RELATED = re.compile(r"(相关|热点|热门|推荐|最新|其他|更多)(链接|文章|阅读|新闻|推荐|资讯|信息|内容)|猜你喜欢|延伸阅读"
                      r"|(related|more|latest|popular)(links|articles|news|stories|content|posts|reading)?", re.I)
_DOCUMENT = re.compile(r"\.(pdf|docx?|xlsx?|zip|rar|wps|et)(\?|$)", re.I)


def _link_lists(doc: Document, elements: tuple[etree._Element, ...]) -> set[etree._Element]:
    """Inside an article, lists of links to other pages with little text of their own ("相关文章",
    "热点推荐", a rotating related list whose class a re-render renamed) are chrome, as long as the
    article's own text outweighs them two to one. Lists of documents (attachments) are content, and so
    is a list that is most of the page."""
    out: set[etree._Element] = set()
    anchors: dict[etree._Element, list[etree._Element]] = {}
    for top in elements:  # each container's links, in one pass over the links (not one per container)
        for a in top.iter("a"):
            if a.get("href") and not doc.skipped(a):
                for parent in a.iterancestors():
                    if parent is top:
                        break
                    if parent.tag in _LIST_TAGS:
                        anchors.setdefault(parent, []).append(a)
    candidates = [el for el, found in anchors.items() if len(found) >= 3 and el not in elements]
    if not candidates:
        return out
    region = sum(len(_SPACE.sub("", top.text_content())) for top in elements)
    dropped = 0
    for el in sorted(candidates, key=lambda e: sum(1 for _ in e.iterancestors())):  # outermost first
        if any(a in out for a in el.iterancestors()) or any(_DOCUMENT.search(a.get("href", "")) for a in anchors[el]):
            continue
        linked = sum(len(_SPACE.sub("", a.text_content())) for a in anchors[el])
        text = _SPACE.sub("", el.text_content())
        total = len(text)
        # a list of links among an article's text, not the content itself (a page that is only a list of links);
        # one headed like a related list ("相关文章", "热点推荐", "Related") whatever the article's length
        related = bool(_RELATED.match(text[:12])) and total < region
        if total and (linked / total > 0.7 and region - dropped - total >= 2 * (dropped + total) or related and linked / total > 0.5):
            out.add(el)
            dropped += total
    return out

def _links(doc: Document, region: Region, drop: set[etree._Element], base: str) -> tuple[Link, ...]:
    seen: dict[str, Link] = {}
    skip = doc.skip | drop
    for top in region.elements:
        stack = [top]
        while stack:
            el = stack.pop()
            if el in skip or not isinstance(el.tag, str):
                continue
            stack.extend(reversed(el))
            href = (el.get("href") or "").strip() if el.tag == "a" else ""
            if not href or href.lower().startswith(("javascript:", "mailto:", "tel:", "#")):
                continue
            absolute = urldefrag(urljoin(base, href))[0]
            if urlsplit(absolute).scheme not in ("http", "https") or absolute in seen:
                continue
            text = normalize_line(el.text_content()) or absolute.rsplit("/", 1)[-1]
            seen[absolute] = Link(text=unicodedata.normalize("NFC", text), url=absolute)
    return tuple(seen.values())
