"""Template variants of a page: the same text re-rendered the way government CMSs re-render.

    variants(body) -> {name: bytes}

Each variant is one line in `TRANSFORMS`; `all` composes every transform. `edited(body, marker)`
adds a sentence inside the page's longest paragraph of main text, for checking that a real edit
still shows through every variant.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from lxml import etree, html

from crawler.charset import decode
from crawler.normalize import normalize_line

SIGNATURE_IDS = ("UCAP-CONTENT", "News_Body_Txt_A")  # ids a family selector names (see crawler.families)
_BLOCKS = ("div", "ul", "ol", "aside", "nav", "section", "table", "dl")


def _new_name(token: str) -> str:
    return "x" + hashlib.sha1(token.encode()).hexdigest()[:6]


def _rename(keep_signature_ids: bool) -> Callable[[etree._Element, set[str]], None]:
    def apply(root: etree._Element, main: set[str]) -> None:
        for el in root.iter(etree.Element):
            if el.get("class"):
                el.set("class", " ".join(_new_name(t) for t in el.get("class", "").split()))
            if el.get("id") and not (keep_signature_ids and el.get("id") in SIGNATURE_IDS):
                el.set("id", _new_name(el.get("id", "")))
    return apply


def _prefix(root: etree._Element, main: set[str]) -> None:
    """A theme prefix on every class: 'content' → 'theme2026-content'."""
    for el in root.iter(etree.Element):
        if el.get("class"):
            el.set("class", " ".join(f"theme2026-{t}" for t in el.get("class", "").split()))


def _reorder(root: etree._Element, main: set[str]) -> None:
    for el in root.iter(etree.Element):
        items = list(el.attrib.items())[::-1]
        el.attrib.clear()
        for key, value in items:
            el.set(key, value)


def _reindent(root: etree._Element, main: set[str]) -> None:
    """Newlines and indentation between block elements (whitespace only, never inside text)."""
    for el in root.iter(etree.Element):
        if el.tag in _BLOCKS or el.tag in ("p", "li", "tr", "h1", "h2", "h3", "h4"):
            el.tail = "\n    " + (el.tail or "").strip() if not (el.tail or "").strip() else el.tail


def _wrap(root: etree._Element, main: set[str]) -> None:
    """Two new wrappers around the body's content, and one around every block holding main text."""
    body = root.find("body")
    if body is None:
        return
    for el in list(body.iter("p", "table", "ul")):
        if _main_text(el, main):
            _wrap_one(el, "para-wrap")
    outer, inner = etree.Element("div", {"class": "page-wrapper"}), etree.SubElement(etree.Element("div"), "div", {"class": "container-fluid"})
    inner.text, body.text = body.text, None
    for child in list(body):
        inner.append(child)
    outer.append(inner)
    body.append(outer)


def _wrap_one(el: etree._Element, name: str) -> None:
    parent = el.getparent()
    if parent is None or parent.tag in ("tr", "table", "tbody", "ul", "ol"):
        return
    wrapper = etree.Element("div", {"class": name})
    el.addprevious(wrapper)
    wrapper.append(el)  # the element's tail moves with it, inside the wrapper


def _sidebar_first(root: etree._Element, main: set[str]) -> None:
    """Blocks with no main text (sidebars, menus, footers) move before their siblings."""
    for parent in list(root.iter("body", "div", "form", "section")):
        kids = [c for c in parent if isinstance(c.tag, str)]
        chrome = [c for c in kids if c.tag in _BLOCKS and not _main_text(c, main) and not (c.tail or "").strip()]
        if chrome and len(chrome) < len(kids):
            for c in reversed(chrome):
                parent.remove(c)
                parent.insert(0, c)


def _main_text(el: etree._Element, main: set[str]) -> bool:
    """Does the element hold (part of) a line of the main text? Compared on letters and characters only."""
    text = _key(normalize_line(el.text_content()))
    return any(line in text or text in line for line in map(_key, main) if len(line) >= 4) if text else False


def _key(text: str) -> str:
    return re.sub(r"[\W_]+", "", text)


TRANSFORMS: dict[str, list[Callable[[etree._Element, set[str]], None]]] = {
    "renamed": [_rename(keep_signature_ids=True)],
    "renamed-every-id": [_rename(keep_signature_ids=False)],
    "theme-prefix": [_prefix],
    "attributes-reordered": [_reorder],
    "reindented": [_reindent],
    "wrapped": [_wrap],
    "sidebar-first": [_sidebar_first],
    "all": [_rename(keep_signature_ids=True), _reorder, _wrap, _sidebar_first, _reindent],
}


def variants(body: bytes, main_text: str) -> dict[str, bytes]:
    """Every template variant of an HTML page, in the page's own character set."""
    main = {line for line in main_text.splitlines() if line}
    out = {}
    for name, steps in TRANSFORMS.items():
        root, encoding = _parse(body)
        for step in steps:
            step(root, main)
        out[name] = html.tostring(root, encoding=encoding, doctype="<!DOCTYPE html>")
    return out


def edited(body: bytes, main_text: str, marker: str) -> bytes:
    """The page with `marker` added to the longest paragraph of its main text."""
    root, encoding = _parse(body)
    main = {line for line in main_text.splitlines() if line}
    candidates = [el for el in root.iter("p", "li", "td", "div", "a", "span") if (el.text or "").strip() and _main_text(el, main)]
    target = max(candidates, key=lambda el: len((el.text or "").strip()))
    for el in candidates:  # every copy of it (a responsive template's mobile copy is edited with the rest)
        if el.text == target.text:
            el.text = (el.text or "") + marker
    return html.tostring(root, encoding=encoding, doctype="<!DOCTYPE html>")


def _parse(body: bytes) -> tuple[etree._Element, str]:
    text, encoding = decode(body, "text/html")
    root = html.document_fromstring(text.encode("utf-8"), parser=html.HTMLParser(encoding="utf-8", remove_comments=True))
    return root, encoding
