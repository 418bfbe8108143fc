"""Which part of a page is its main text. In order:

1. the page's own `selector` (an error when it matches nothing);
2. the site family's selectors, on that family's hosts or where the markup names the family
   unambiguously (`#UCAP-CONTENT` is gov.cn's, `#News_Body_Txt_A` the missions'), when what they
   match holds a plausible share of the page's text;
3. otherwise a text-density method (readability's paragraph scoring, adapted to Chinese: lengths
   in UTF-8 bytes so a CJK character weighs three Latin letters, Chinese punctuation counted), or for
   listings the smallest element holding most of the article links;
4. then the continuity guard: when the page's previous main text is known, the element whose text
   matches it best (F1 over lines, weighted by length) wins over the choice above if it matches
   clearly better. A template re-render (renamed classes, new wrappers, moved sidebars) therefore
   keeps the same region, and a page whose article really changed is read afresh.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from lxml import etree

from crawler.dom import BLOCK_TAGS, Document
from crawler.families import FAMILIES, Family, family_for_host

LinesOf = Callable[[tuple[etree._Element, ...]], list[str]]  # the cleaned lines of some elements
PARAGRAPH_BYTES = 30       # a block with this much text of its own (10 CJK or 30 Latin characters) is a paragraph
ANCHOR_MIN = 0.5           # a previous-text match below this is no anchor (the page really changed)
ANCHOR_MARGIN = 0.05       # ... and it must beat the primary choice by this much
FALLBACK = "whole body"    # no paragraph, no list of article links: a short page
PORTAL_SHARE = 0.3         # an article holding less than this share of the page's content is one teaser on a portal
_PUNCT = ("，", ",", "、", "。", "；", ";", "：")
_LISTS = frozenset(("body", "ul", "ol", "table", "tbody", "dl"))
_CONTAINERS = frozenset(("div", "section", "article", "main", "td", "body", "form", "table", "ul", "ol", "dl", "center", "blockquote"))


@dataclass(frozen=True)
class Anchor:
    """What the page's previous snapshot said: its title, main text, and how its region was found."""

    title: str
    text: str
    region: str = ""


@dataclass(frozen=True)
class Region:
    elements: tuple[etree._Element, ...]
    how: str


class SelectorNotFound(Exception):
    """The page's own selector matched nothing: the site changed, or the selector is wrong."""


class MainContentNotFound(Exception):
    """No plausible main content on the page."""


class NoText(Exception):
    """The page (or its main region) has no text: an empty or unrendered body is not a page."""


def choose(doc: Document, family: Family | None, selector: str | None, listing: bool, anchor: Anchor | None,
           lines_of: LinesOf) -> Region:
    if selector:
        found = doc.select(selector)
        if not found:
            raise SelectorNotFound(f"selector {selector!r} matched nothing")
        return Region(_outermost(found), f"selector {selector}")
    stats = Stats.measure(doc)
    if not stats.text.get(doc.body, 0) + stats.links.get(doc.body, 0):
        raise NoText("the page has no text outside scripts and chrome (an empty or unrendered body)")
    primary = _by_family(doc, stats, family, listing) or (_listing(doc, stats) if listing else None) or _density(doc, stats) \
        or _listing(doc, stats) or Region((doc.body,), FALLBACK)
    if anchor is None or not anchor.text.strip():
        return primary
    return _continuous(doc, stats, anchor, primary, lines_of)


def family_of(doc: Document | None, host: str) -> Family | None:
    """The page's site family: by host, else by markup only that family has."""
    name = family_for_host(host)
    if name:
        return FAMILIES[name]
    if doc is None:
        return None
    for family in FAMILIES.values():
        if any(doc.select(sig) for sig in family.signature):
            return family
    return None


# --- measuring -----------------------------------------------------------------------------------

@dataclass
class Stats:
    """Per element (chrome excluded): text outside links and inside links (UTF-8 bytes), the
    readability score of the paragraphs below it, and its content: paragraph text plus article links."""

    text: dict[etree._Element, int]
    links: dict[etree._Element, int]
    score: dict[etree._Element, float]
    content: dict[etree._Element, int]

    @classmethod
    def measure(cls, doc: Document) -> Stats:
        order = list(doc.elements(doc.body))
        text: dict[etree._Element, int] = {}
        links: dict[etree._Element, int] = {}
        own_text: dict[etree._Element, int] = {}
        content: dict[etree._Element, int] = {}
        score: dict[etree._Element, float] = {}
        paragraphs = []
        for el in reversed(order):  # children before parents
            own = _bytes(el.text)
            inline = t = l = c = 0
            for child in el:
                own += _bytes(child.tail)
                if child in text:
                    t, l, c = t + text[child], l + links[child], c + content[child]
                    if child.tag not in BLOCK_TAGS:
                        inline += own_text[child]
            if el.tag == "a":
                size = own + t + l
                text[el], links[el], own_text[el], content[el] = 0, size, 0, size if size >= 18 else 0
                continue
            text[el], links[el], own_text[el], content[el] = own + t, l, own + inline, c
            if el.tag in BLOCK_TAGS and el.tag not in _LISTS and own_text[el] >= PARAGRAPH_BYTES:
                paragraphs.append(el)
                content[el] += own_text[el]
        for el in paragraphs:
            body = el.text_content()
            points = 1 + sum(body.count(p) for p in _PUNCT) + min(own_text[el] / 150, 3)
            parent, share = el.getparent(), 1.0
            for _ in range(3):
                if parent is None or parent not in text:
                    break
                score[parent] = score.get(parent, 0.0) + points * share
                parent, share = parent.getparent(), share / 2
        return cls(text, links, score, content)

    def density(self, el: etree._Element) -> float:
        total = self.text.get(el, 0) + self.links.get(el, 0)
        return self.links.get(el, 0) / total if total else 1.0

    def holding(self, root: etree._Element, share: float) -> etree._Element:
        """The deepest element holding `share` of the content under `root`."""
        need, best, depth = self.content.get(root, 0) * share, root, -1
        for el, c in self.content.items():
            if c and c >= need and el.tag != "a":
                d = sum(1 for _ in el.iterancestors())
                if d > depth:
                    best, depth = el, d
        return best


def _bytes(s: str | None) -> int:
    return len(s.strip().encode("utf-8")) if s else 0


# --- the three ways to a primary region ------------------------------------------------------------

def _by_family(doc: Document, stats: Stats, family: Family | None, listing: bool) -> Region | None:
    if family is None:
        return None
    chains = (family.listing, family.content) if listing else (family.content, family.listing)
    best = max(stats.text.get(doc.body, 0), 1)
    for css in chains[0] + chains[1]:
        for el in doc.select(css):
            total = stats.text.get(el, 0) + stats.links.get(el, 0)
            # plausible: real text, not a sliver of the page (a same-named block in a re-render)
            if total and (stats.text.get(el, 0) * 10 >= best or css in family.listing):
                return Region((el,), f"{_family_name(family)} family: {css}")
    return None


def _density(doc: Document, stats: Stats) -> Region | None:
    scored = [(s * (1 - stats.density(el)), el) for el, s in stats.score.items()]
    if not scored:
        return None
    top_score, top = max(scored, key=lambda pair: pair[0])
    parent = top.getparent()
    if parent is None or top is doc.body:
        return Region((top,), "text density")
    threshold = max(10.0, top_score * 0.2)
    chosen = []
    for sib in parent:
        if sib not in stats.text:
            continue
        sib_score = stats.score.get(sib, 0.0) * (1 - stats.density(sib))
        if sib is top or sib_score >= threshold or (sib.tag == "p" and stats.density(sib) < 0.25 and stats.text[sib] > 240):
            chosen.append(sib)
    share = sum(stats.content.get(el, 0) for el in chosen) / max(stats.content.get(doc.body, 0), 1)
    if share < PORTAL_SHARE:  # one teaser among many: the page is a portal, read what holds most of it
        return Region((stats.holding(doc.body, 0.7),), "portal")
    return Region(tuple(chosen), "text density")


def _listing(doc: Document, stats: Stats) -> Region | None:
    links = {el: c for el, c in stats.content.items() if el.tag == "a" and c}
    if len(links) < 2:
        return None
    counts: Counter[etree._Element] = Counter()
    for a in links:
        for parent in a.iterancestors():
            counts[parent] += 1
    most = counts.get(doc.body, 0)
    best, depth = doc.body, 0
    for el, n in counts.items():  # the deepest element holding 70 % of the article links
        if n * 10 >= most * 7 and el in stats.text:
            d = sum(1 for _ in el.iterancestors())
            if d > depth:
                best, depth = el, d
    return Region((best,), "article links")


# --- continuity ----------------------------------------------------------------------------------

def _continuous(doc: Document, stats: Stats, anchor: Anchor, primary: Region, lines_of: LinesOf) -> Region:
    """The continuity guard. Found the same way as last time: trust it, unless the previous text has
    left it while it is still on the page (a same-named block took its place). Found another way (the
    family's selector stopped matching after a re-render): take the element that matches the previous
    text best, if it clearly does. And a page whose article was found before but now yields only
    the fallbacks (chrome, a bare body) while the previous text is gone is an error, not a page.

    Texts are matched on their 3-character shingles (letters and characters only), so an edited
    sentence still matches most of what it was."""
    previous = [line for line in anchor.text.splitlines() if line]
    if previous and previous[0] == anchor.title.strip():
        previous = previous[1:]
    same_way = _method(anchor.region) == _method(primary.how)
    primary_lines = lines_of(primary.elements)
    if previous and primary_lines == previous:
        return primary  # the same text as before (the common case: only noise changed): a perfect match
    if same_way and previous and sum(map(len, previous)) >= 8 * len(previous) and set(previous) <= set(primary_lines) \
            and not _links_crept_in(primary, primary_lines, set(previous)):
        return primary  # found the same way, every previous line still there (recall ~1), nothing crept in
    target = _shingles(previous)
    if not target:
        return primary
    p_f, p_recall = _match(primary_lines, target)
    if p_f >= 0.98:
        return primary
    crept = same_way and p_recall >= 0.5 and _links_crept_in(primary, primary_lines, set(previous))
    if same_way and p_recall >= 0.5 and not crept:
        return primary
    size = sum(len(line.encode()) for line in previous)
    best: tuple[float, float, etree._Element | None] = (0.0, 0.0, None)
    for el, t in stats.text.items():
        total = t + stats.links.get(el, 0)
        if el.tag not in _CONTAINERS and el.tag != "p" or not (size * 0.4 <= total <= size * 3 + 200):
            continue
        f, recall = _match(lines_of((el,)), target)
        if f > best[0]:
            best = (f, recall, el)
    f, recall, el = best
    if crept:  # found the same way, but links the page did not show before came with it: a tighter element without them
        if el is not None and f > p_f and recall >= p_recall - 0.02:
            return Region((el,), f"anchored on the previous text, without links that crept in (match {f:.2f}; {primary.how} matched {p_f:.2f})")
        return primary
    if el is not None and f >= ANCHOR_MIN and f >= p_f + ANCHOR_MARGIN and (not same_way or recall >= 0.8):
        return Region((el,), f"anchored on the previous text (match {f:.2f}; {primary.how} matched {p_f:.2f})")
    if p_recall < 0.5 and _method(primary.how) in ("whole body", "article links") and _method(anchor.region) not in ("whole body", "article links", ""):
        raise MainContentNotFound(f"main content not found: the previous main text is not on the page and only {primary.how!r} "
                                  f"was left (tried the family's selectors, text density and article links; before: {anchor.region})")
    return primary


def _links_crept_in(region: Region, lines: list[str], previous: set[str]) -> bool:
    """Are the region's new lines (nearly all) link texts — a menu or a related list a re-render let in, with
    perhaps its short heading — rather than new text?"""
    extra = [_NON_WORD.sub("", line) for line in lines if line not in previous]
    if not extra:
        return False
    links = {_NON_WORD.sub("", a.text_content()) for el in region.elements for a in el.iter("a")}
    linked = sum(len(line) for line in extra if line in links)
    return linked >= 0.8 * sum(len(line) for line in extra)


def _method(how: str) -> str:
    """How a region was found, without the match figures: 'nia family: div.content', 'text density'…"""
    return how.split(" (")[0] if not how.startswith("anchored") else "anchored"


_NON_WORD = re.compile(r"[\W_]+")


def _shingles(lines: list[str]) -> set[str]:
    text = _NON_WORD.sub("", "".join(lines))
    return {text[i:i + 3] for i in range(max(len(text) - 2, 0))} or ({text} if text else set())


def _match(lines: list[str], target: set[str]) -> tuple[float, float]:
    """(Dice coefficient, recall) of `lines` against the previous text's shingles."""
    got = _shingles(lines)
    if not got:
        return 0.0, 0.0
    common = len(got & target)
    return 2 * common / (len(got) + len(target)), common / len(target)


def _outermost(found: Iterable[etree._Element]) -> tuple[etree._Element, ...]:
    """Matched elements without those nested in another match, in document order."""
    found = list(found)
    chosen = set(found)
    return tuple(el for el in found if not any(a in chosen for a in el.iterancestors()))


def _family_name(family: Family) -> str:
    return next(name for name, f in FAMILIES.items() if f is family)
