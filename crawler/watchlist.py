"""watchlist.toml → validated, frozen `PageSpec`s. Validated once, at load, before any fetch.

A page needs only `id` and `url`. Errors name the file, the entry (`[[page]] id=…`) and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from crawler.families import TIERS
from store.configfile import read_toml
from store.errors import ConfigError
from store.pages import TAG_KEYS

KINDS = ("auto", "html", "listing", "pdf", "status", "feed")  # feed: RSS, Atom or a JSON list of items (crawler/feeds.py)
RENDERS = ("auto", "plain", "browser")  # auto: plain, and the browser when a JavaScript challenge blocks it
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
DURATION_RE = re.compile(r"^(\d+)\s*([smhd]?)$")
DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
PAGE_KEYS = {"id", "url", "name", "tags", "selector", "kind", "interval", "proxy", "enabled", "robots", "ignore", "encoding", "render", "regions"}
DEFAULT_KEYS = {"interval", "robots", "proxy", "render", "regions"}
REGION_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")  # a fetch worker's region: `kvwatch worker --region cn`
CRAWL_KEYS = {
    "user_agent", "timeout", "max_bytes", "retries", "backoff", "concurrency_per_domain",
    "concurrency", "autothrottle", "delay", "dns_timeout", "failures_before_alert",
}
TOP_KEYS = {"page", "defaults", "crawl", "include", "regions"}  # [regions]: "tag=value" = ["cn", "eu"]
INCLUDED_KEYS = {"page"}  # an included file (watchlist.d/*.toml, written by `kvwatch discover`) holds pages only


@dataclass(frozen=True)
class CrawlSettings:
    """How politely and persistently to fetch; the `[crawl]` table."""

    user_agent: str = "kvwatch/0.1 (+https://github.com/kvwatch/kvwatch; K-visa policy change monitor)"
    timeout: float = 30.0
    max_bytes: int = 20 * 1024 * 1024
    retries: int = 2
    backoff: float = 2.0
    concurrency_per_domain: int = 2
    concurrency: int = 16
    autothrottle: bool = True
    delay: float = 1.0
    dns_timeout: float = 10.0
    failures_before_alert: int = 3


@dataclass(frozen=True)
class PageSpec:
    """One watched page, as the watchlist declares it, with defaults filled in."""

    id: str
    url: str
    name: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    selector: str | None = None
    kind: str = "auto"
    interval: int = 6 * 3600
    proxy: str | None = None
    enabled: bool = True
    robots: bool = True
    ignore: tuple[str, ...] = ()
    encoding: str | None = None
    render: str = "auto"
    regions: tuple[str, ...] = ()  # the worker regions allowed to fetch it, in order of preference; () any


@dataclass(frozen=True)
class Watchlist:
    path: str
    pages: tuple[PageSpec, ...]
    crawl: CrawlSettings = CrawlSettings()

    def page(self, page_id: str) -> PageSpec:
        for spec in self.pages:
            if spec.id == page_id:
                return spec
        raise KeyError(page_id)


def load(path: str | Path) -> Watchlist:
    """Read and validate a watchlist file; raise ConfigError naming the file, entry and key."""
    path = str(path)
    data = read_toml(path)
    return parse(data, path)


def parse(data: dict[str, Any], path: str = "<watchlist>") -> Watchlist:
    _no_unknown(data, TOP_KEYS, path, None)
    defaults = _table(data, "defaults", path)
    _no_unknown(defaults, DEFAULT_KEYS, path, "[defaults]")
    if "interval" in defaults:  # checked here, so an error names [defaults], not the first page that inherits it
        _duration(defaults["interval"], path, "[defaults]")
    if "proxy" in defaults:
        _proxy(defaults["proxy"], path, "[defaults]")
    _bool(defaults, "robots", True, path, "[defaults]")
    if "render" in defaults:
        _render(defaults["render"], path, "[defaults]")
    crawl = _crawl_settings(_table(data, "crawl", path), path)
    if "regions" in defaults:
        _regions(defaults["regions"], path, "[defaults]")
    by_tag = _regions_by_tag(_table(data, "regions", path), path)
    sources = [(path, data.get("page", []))] + [(included, table.get("page", [])) for included, table in _included(data, path)]
    pages: list[PageSpec] = []
    seen: dict[str, str] = {}
    for source, entries in sources:
        if not isinstance(entries, list):
            raise ConfigError(source, "[[page]] must be an array of tables", key="page")
        for index, entry in enumerate(entries, start=1):
            spec = _page(entry, index, defaults, by_tag, source)
            if spec.id in seen:
                where = "" if seen[spec.id] == source else f" (also in {seen[spec.id]})"
                raise ConfigError(source, f"duplicate id {spec.id!r}{where}", f"[[page]] id={spec.id}", "id")
            seen[spec.id] = source
            pages.append(spec)
    if not pages:
        raise ConfigError(path, "no [[page]] entries", key="page")
    return Watchlist(path=path, pages=tuple(pages), crawl=crawl)


def _included(data: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    """The files `include = ["watchlist.d/*.toml"]` names (globs relative to the watchlist), sorted; each
    holds `[[page]]` entries only, validated like the main file's (and sharing its [defaults])."""
    patterns = data.get("include", [])
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ConfigError(path, f"must be a list of file patterns like [\"watchlist.d/*.toml\"], got {patterns!r}", key="include")
    base = Path(path).parent
    files: list[str] = []
    for pattern in patterns:
        found = sorted(str(p) for p in base.glob(pattern) if p.is_file())
        if not found and not any(ch in pattern for ch in "*?["):
            raise ConfigError(path, f"included file {str(base / pattern)!r} not found", key="include")
        files += [f for f in found if f not in files and Path(f).resolve() != Path(path).resolve()]
    tables = [(included, read_toml(included)) for included in files]
    for included, table in tables:
        _no_unknown(table, INCLUDED_KEYS, included, None)
    return tables


def _table(data: dict[str, Any], name: str, path: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(path, f"must be a table [{name}]", key=name)
    return value


def _no_unknown(table: dict[str, Any], allowed: set[str], path: str, entry: str | None) -> None:
    for key in table:
        if key not in allowed:
            raise ConfigError(path, f"unknown key (valid keys: {', '.join(sorted(allowed))})", entry, key)


def _crawl_settings(table: dict[str, Any], path: str) -> CrawlSettings:
    _no_unknown(table, CRAWL_KEYS, path, "[crawl]")
    base = CrawlSettings()
    values: dict[str, Any] = {}
    for key, value in table.items():
        expected = type(getattr(base, key))
        ok = isinstance(value, expected) or (expected is float and isinstance(value, int) and not isinstance(value, bool))
        if not ok or (expected is not bool and isinstance(value, bool)):
            raise ConfigError(path, f"must be a {expected.__name__}, got {value!r}", "[crawl]", key)
        if expected in (int, float) and value < 0:
            raise ConfigError(path, f"must not be negative, got {value!r}", "[crawl]", key)
        values[key] = expected(value)
    return CrawlSettings(**values)


def _page(entry: Any, index: int, defaults: dict[str, Any], by_tag: dict[tuple[str, str], tuple[str, ...]], path: str) -> PageSpec:
    label = f"[[page]] #{index}"
    if not isinstance(entry, dict):
        raise ConfigError(path, "must be a table", label)
    page_id = entry.get("id")
    if page_id is None:
        raise ConfigError(path, "missing", label, "id")
    if not isinstance(page_id, str) or not ID_RE.match(page_id):
        raise ConfigError(path, f"must be lower-case letters, digits, '.', '_' or '-', got {page_id!r}", label, "id")
    label = f"[[page]] id={page_id}"
    _no_unknown(entry, PAGE_KEYS, path, label)
    merged = {**defaults, **entry}
    tags = _tags(entry.get("tags", {}), path, label)
    by_rule = [allowed for (tag, value), allowed in by_tag.items() if tags.get(tag) == value]
    regions = _regions(entry["regions"], path, label) if "regions" in entry else by_rule[0] if by_rule else _regions(defaults.get("regions", []), path, label)
    return PageSpec(
        id=page_id,
        url=_url(entry.get("url"), path, label),
        name=_str(entry, "name", path, label) or "",
        tags=tags,
        selector=_selector(entry.get("selector"), path, label),
        kind=_kind(entry.get("kind", "auto"), path, label),
        interval=_duration(merged.get("interval", 6 * 3600), path, label),
        proxy=_proxy(merged.get("proxy"), path, label),
        enabled=_bool(entry, "enabled", True, path, label),
        robots=_bool(merged, "robots", True, path, label),
        ignore=_patterns(entry.get("ignore", []), path, label),
        encoding=_encoding(entry.get("encoding"), path, label),
        render=_render(merged.get("render", "auto"), path, label),
        regions=regions,
    )


def _url(value: Any, path: str, label: str) -> str:
    if value is None:
        raise ConfigError(path, "missing", label, "url")
    parts = urlsplit(value) if isinstance(value, str) else None
    if not parts or parts.scheme not in ("http", "https") or not parts.hostname or " " in value:
        raise ConfigError(path, f"not a valid http(s) URL: {value!r}", label, "url")
    return value


def _str(entry: dict[str, Any], key: str, path: str, label: str) -> str | None:
    value = entry.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(path, f"must be a string, got {value!r}", label, key)
    return value


def _bool(table: dict[str, Any], key: str, default: bool, path: str, label: str) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(path, f"must be true or false, got {value!r}", label, key)
    return value


def _tags(value: Any, path: str, label: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ConfigError(path, f"must be a table like {{ agency = \"nia\", country = \"cn\" }}, got {value!r}", label, "tags")
    for key, tag in value.items():
        if key not in TAG_KEYS or not isinstance(tag, str):
            raise ConfigError(path, f"tag {key!r} must be one of {', '.join(TAG_KEYS)} with a string value", label, "tags")
    if "tier" in value and value["tier"] not in TIERS:
        raise ConfigError(path, f"unknown tier {value['tier']!r} (valid tiers: {', '.join(TIERS)})", label, "tags")
    return dict(value)


def _selector(value: Any, path: str, label: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(path, f"must be a CSS selector string, got {value!r}", label, "selector")
    from cssselect import SelectorError
    from lxml.cssselect import CSSSelector

    try:  # the same compiler normalization uses (crawler.dom.selector)
        CSSSelector(value, translator="html")
    except SelectorError as exc:
        raise ConfigError(path, f"not a valid CSS selector: {exc}", label, "selector") from None
    return value


def _regions(value: Any, path: str, label: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(r, str) and REGION_RE.match(r) for r in value) or len(set(value)) != len(value):
        raise ConfigError(path, f"must be a list of distinct region names like [\"cn\", \"eu\"] (lower-case letters, digits, '-'), got {value!r}", label, "regions")
    return tuple(value)


def _regions_by_tag(table: dict[str, Any], path: str) -> dict[tuple[str, str], tuple[str, ...]]:
    """`[regions]` rules, `"agency=nia" = ["cn"]`: a page with that tag (and no `regions` of its own) gets
    those regions; the first matching rule, in the file's order, wins."""
    rules: dict[tuple[str, str], tuple[str, ...]] = {}
    for rule, value in table.items():
        tag, sep, wanted = rule.partition("=")
        if not sep or tag.strip() not in TAG_KEYS or not wanted.strip():
            raise ConfigError(path, f"a rule is \"tag=value\" with a tag among {', '.join(TAG_KEYS)}, got {rule!r}", "[regions]", rule)
        rules[(tag.strip(), wanted.strip())] = _regions(value, path, "[regions]")
    return rules


def _kind(value: Any, path: str, label: str) -> str:
    if value not in KINDS:
        raise ConfigError(path, f"unknown kind {value!r} (valid kinds: {', '.join(KINDS)})", label, "kind")
    return value


def _render(value: Any, path: str, label: str) -> str:
    if value not in RENDERS:
        raise ConfigError(path, f"unknown render {value!r} (valid: {', '.join(RENDERS)})", label, "render")
    return str(value)


def _duration(value: Any, path: str, label: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = DURATION_RE.match(value.strip()) if isinstance(value, str) else None
    if not match or int(match.group(1)) == 0:
        raise ConfigError(path, f"must be seconds or a duration like '30m', '6h', '1d', got {value!r}", label, "interval")
    return int(match.group(1)) * DURATION_UNITS[match.group(2)]


def _proxy(value: Any, path: str, label: str) -> str | None:
    if value is None or value == "":
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if not parts or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(path, f"must be an http(s) proxy URL, got {value!r}", label, "proxy")
    return value


def _patterns(value: Any, path: str, label: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise ConfigError(path, f"must be a list of regular expressions, got {value!r}", label, "ignore")
    for pattern in value:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ConfigError(path, f"bad regular expression {pattern!r}: {exc}", label, "ignore") from None
    return tuple(value)


def _encoding(value: Any, path: str, label: str) -> str | None:
    if value is None:
        return None
    import codecs

    try:
        codecs.lookup(value)
    except (LookupError, TypeError):
        raise ConfigError(path, f"unknown character set {value!r}", label, "encoding") from None
    return value
