"""Feeds as sources: an RSS or Atom feed (parsed by feedparser), or a JSON list of items (gov.cn's
`ZUIXINZHENGCE.json` and the like), read as a listing: one line per item title, the items as links.
A new K-visa notice in a feed is then a `new_link` alert, exactly as on a listing page, for a
fraction of the bytes.

A page is read as a feed when its watchlist `kind` is `feed`, or (kind `auto`) when the body is
an RSS, RDF or Atom document.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urljoin

from crawler.normalize import Link, Normalized, clean_lines, normalize_line

MAX_ITEMS = 500
_XML_FEED = re.compile(rb"^\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:rss|feed|rdf:RDF)[\s>]", re.S)
TITLE_KEYS = ("title", "TITLE", "Title", "name", "NAME", "subject")
URL_KEYS = ("url", "URL", "link", "LINK", "href", "Url")


class FeedUnreadable(Exception):
    """The body is not a feed kvwatch can read (its reason is recorded as the fetch's error)."""


def is_feed(body: bytes) -> bool:
    """An RSS, RDF or Atom document (by its root element, whatever the Content-Type says)."""
    return bool(_XML_FEED.match(body[:2048].lstrip(b"\xef\xbb\xbf")))


def normalize_feed(body: bytes, url: str) -> Normalized:
    head = body.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head in (b"[", b"{"):
        title, items, how = _json_items(body)
    else:
        title, items, how = _xml_items(body)
    links, seen = [], set()
    for text, href in items[:MAX_ITEMS]:
        target = urljoin(url, href.strip())
        if href.strip() and target not in seen:
            seen.add(target)
            links.append(Link(normalize_line(text) or target, target))
    lines = [title] + [link.text for link in links]
    text = clean_lines(lines)
    if not links and not text:
        raise FeedUnreadable(f"no items in the feed ({how})")
    return Normalized(title=normalize_line(title), text=text, links=tuple(links), region=f"feed ({how}, {len(links)} items)")


def _xml_items(body: bytes) -> tuple[str, list[tuple[str, str]], str]:
    import feedparser  # imported here: most pages are not feeds

    parsed = feedparser.parse(body)
    if parsed.bozo and not parsed.entries:
        raise FeedUnreadable(f"feed could not be read: {parsed.get('bozo_exception', 'not RSS or Atom')}")
    items = [(str(entry.get("title", "")), str(entry.get("link", ""))) for entry in parsed.entries]
    return str(parsed.feed.get("title", "")), items, parsed.get("version") or "feed"


def _json_items(body: bytes) -> tuple[str, list[tuple[str, str]], str]:
    """A JSON list of objects with a title and a URL, or an object holding such a list."""
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedUnreadable(f"JSON feed could not be read: {exc}") from None
    rows = data if isinstance(data, list) else next((v for v in data.values() if isinstance(v, list)), []) if isinstance(data, dict) else []
    items = [(_first(row, TITLE_KEYS), _first(row, URL_KEYS)) for row in rows if isinstance(row, dict)]
    items = [(t, u) for t, u in items if u]
    if not items:
        raise FeedUnreadable(f"JSON with no list of items holding a title and a URL (keys tried: {', '.join(URL_KEYS)})")
    return "", items, "json"


def _first(row: dict[str, Any], keys: tuple[str, ...]) -> str:
    return next((str(row[k]) for k in keys if isinstance(row.get(k), str | int) and str(row[k]).strip()), "")
