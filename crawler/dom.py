"""An HTML document as kvwatch reads it: parsed once with lxml, its chrome marked, walked into lines.

Chrome is *marked* (a skip set), not cut out, so the region chooser can measure every candidate
against the same view of the page without copying or mutating the tree. What counts as chrome:

- tags that never carry content (script, style, form controls, nav, aside, footer; `header`
  outside an article or main element), hidden elements (`display:none`, `hidden`);
- elements whose class or id *names* a widget by a whole word (`share`, `footer_wrap`,
  `print-btn`, `related`…; see `crawler.families.NOISE_CLASS_WORDS`): class names are split into
  words at `-`, `_`, spaces and camelCase humps, and a word must equal a noise word, so
  `no-sidebar` is a layout modifier (its words are `no`, `sidebar`, but it holds the page) and is
  kept by the size guard below, while `sidebarnav` is no match at all;
- a class-marked element holding more than half of the page's text is never chrome (a layout
  wrapper named `has-sidebar` or `content-share-layout` holds the article);
- `form` is never chrome as a whole: ASP.NET pages put the whole body inside one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from lxml import etree, html
from lxml.cssselect import CSSSelector

from crawler.families import NOISE_CLASS_WORDS

BLOCK_TAGS = frozenset((
    "p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "section",
    "article", "blockquote", "pre", "dd", "dt", "dl", "center", "caption", "hr", "main", "form",
    "header", "footer", "nav", "aside", "address", "figure", "figcaption", "tbody", "thead", "tfoot", "body",
))
CHROME_TAGS = frozenset((
    "script", "style", "noscript", "iframe", "template", "svg", "canvas", "button", "select", "input",
    "textarea", "nav", "footer", "aside", "head", "title", "meta", "link", "object", "embed", "option",
))
CELL = "｜"  # between table cells; full-width, so the CJK spacing rule treats it consistently
BREAK = "\u2029"  # a structural line break, distinct from newlines in the page source
_HIDDEN = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_NOISE = frozenset(w.lower() for w in NOISE_CLASS_WORDS)
_SELECTORS: dict[str, CSSSelector] = {}


class EmptyDocument(Exception):
    """The body is not an HTML document with any element in it."""


class TooDeep(Exception):
    """libxml2 would cut the document off at its nesting limit."""


def lenient_lines(text: str) -> list[str]:
    """The text of a document libxml2 cannot build whole, read by BeautifulSoup's pure-Python parser
    (no depth limit; its leniency is worth its cost only here): every string a line, scripts dropped."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    root = soup.find("body") or soup
    return [str(s) for s in root.strings if s.parent is not None and s.parent.name not in CHROME_TAGS]


def selector(css: str) -> CSSSelector:
    """A compiled CSS selector (cached)."""
    compiled = _SELECTORS.get(css)
    if compiled is None:
        compiled = _SELECTORS[css] = CSSSelector(css, translator="html")
    return compiled


def class_words(el: etree._Element) -> set[str]:
    """The words of an element's class and id: 'footer_wrap navBar' → {footer, wrap, nav, bar}."""
    marker = f"{el.get('class') or ''} {el.get('id') or ''}"
    return {w.lower() for w in _WORDS.findall(marker)}


def is_noise_named(el: etree._Element) -> bool:
    return bool(class_words(el) & _NOISE)


@dataclass
class Document:
    """A parsed page and the elements marked as chrome."""

    root: etree._Element
    skip: set[etree._Element]

    @classmethod
    def parse(cls, text: str) -> Document:
        """The parsed page; its chrome is marked by `mark_chrome`, once the site family (and so its noise) is known."""
        try:
            root = html.document_fromstring(text.encode("utf-8"), parser=_PARSER)
        except (etree.ParserError, ValueError) as exc:
            raise EmptyDocument(str(exc) or "empty document") from exc
        if any(e.type_name == "ERR_RESOURCE_LIMIT" for e in _PARSER.error_log):
            # libxml2 stops building the tree past 2,048 levels: never lose the rest silently
            raise TooDeep("the document is nested more than 2,048 elements deep")
        return cls(root, set())

    @property
    def body(self) -> etree._Element:
        body = self.root.find("body")
        return body if body is not None else self.root

    def select(self, css: str) -> list[etree._Element]:
        return [el for el in selector(css)(self.root) if not self.skipped(el)]

    def skipped(self, el: etree._Element) -> bool:
        """Is `el` chrome, or inside chrome?"""
        node: etree._Element | None = el
        while node is not None:
            if node in self.skip:
                return True
            node = node.getparent()
        return False

    def mark_chrome(self, extra_noise: Iterable[str]) -> None:
        named: list[etree._Element] = []
        for el in self.root.iter():
            tag = el.tag
            if not isinstance(tag, str):
                continue
            if tag in CHROME_TAGS or (tag == "header" and not _inside(el, ("article", "main"))):
                self.skip.add(el)
            elif el.get("hidden") is not None or _HIDDEN.search(el.get("style") or ""):
                self.skip.add(el)
            elif tag not in ("html", "body") and (el.get("class") or el.get("id")) and is_noise_named(el):
                named.append(el)
        for css in extra_noise:
            named.extend(selector(css)(self.root))
        if named:
            total = max(len(self.body.text_content().strip()), 1)
            self.skip.update(el for el in named if len(el.text_content().strip()) * 2 < total)

    def elements(self, top: etree._Element) -> Iterator[etree._Element]:
        """`top` and its descendants that are not chrome, in document order."""
        stack = [top]
        while stack:
            el = stack.pop()
            if el in self.skip or not isinstance(el.tag, str):
                continue
            yield el
            stack.extend(reversed(el))

    def lines(self, regions: Iterable[etree._Element], drop: set[etree._Element] | None = None) -> list[str]:
        """Block elements, <br> and table rows become line breaks, cells are joined by CELL; source
        newlines are spaces. Chrome (and `drop`) is skipped, but the text after it is kept."""
        out: list[str] = []
        skip = self.skip | drop if drop else self.skip
        for region in regions:
            stack: list[tuple[etree._Element, bool]] = [(region, False)]
            while stack:
                el, leaving = stack.pop()
                tag = el.tag
                if leaving:
                    if tag in ("td", "th") and _inner_cell(el):
                        out.append(CELL)
                    if tag in BLOCK_TAGS:
                        out.append(BREAK)
                    if el is not region and el.tail:
                        out.append(el.tail)
                    continue
                if el in skip or not isinstance(tag, str):
                    if el is not region and el.tail:
                        out.append(el.tail)
                    continue
                if tag == "br":
                    out.append(BREAK)
                    if el is not region and el.tail:
                        out.append(el.tail)
                    continue
                if tag in BLOCK_TAGS:
                    out.append(BREAK)
                if el.text:
                    out.append(el.text)
                stack.append((el, True))
                stack.extend((child, False) for child in reversed(el))
            out.append(BREAK)
        return "".join(out).replace("\r", " ").replace("\n", " ").split(BREAK)


_PARSER = html.HTMLParser(encoding="utf-8", remove_comments=True, remove_pis=True, default_doctype=False, huge_tree=True)


def _inside(el: etree._Element, tags: tuple[str, ...]) -> bool:
    node = el.getparent()
    while node is not None:
        if node.tag in tags:
            return True
        node = node.getparent()
    return False


def _inner_cell(cell: etree._Element) -> bool:
    """A td/th of a row that has another td/th after it."""
    parent = cell.getparent()
    if parent is None or parent.tag != "tr":
        return False
    return any(sib.tag in ("td", "th") for sib in cell.itersiblings())
