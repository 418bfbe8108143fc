"""Re-renders never change the main text, and an edit inside the article shows through every re-render:
every HTML fixture × every template variant (tests/variants.py) × on a loopback URL (no site family)
and on its real site's host name (the family's selectors apply)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.fetch import read_body
from crawler.normalize import Anchor, Normalized
from crawler.watchlist import PageSpec
from tests.conftest import PAGES
from tests.variants import TRANSFORMS, edited, variants

HTML_PAGES = sorted(p for p in PAGES.glob("*.html") if p.stem not in ("challenge-412", "maintenance"))
REAL_HOSTS = {"gov": "https://www.gov.cn/zhengce/content/202610/content_1.htm", "nia": "https://www.nia.gov.cn/n741440/n741547/c1/content.html",
              "embassy": "https://us.china-embassy.gov.cn/eng/lsfw/zj/202610/t20261001_1.htm", "consulate": "https://chicago.china-consulate.gov.cn/chn/lsyw/t1.htm",
              "mission": "https://my.china-embassy.gov.cn/fwzc/lsyw/qz/t1.htm", "visa": "https://www.visaforchina.cn/SYD3_EN/tongzhigonggao/1.html",
              "blog": "https://blog.example.com/2026/10/k-visa.html"}
MARKER = "ZQX新增测试句。"


def _url(path: Path, mode: str) -> str:
    return f"http://127.0.0.1:8000/{path.name}" if mode == "loopback" else REAL_HOSTS[path.stem.split("-")[0]]


def _read(path: Path, url: str, body: bytes, anchor: Anchor | None = None) -> Normalized:
    spec = PageSpec(id=path.stem, url=url, kind="listing" if path.stem.endswith("-news") else "auto")
    return read_body(spec, url, body, "text/html", anchor)[0]


@pytest.mark.parametrize("mode", ["loopback", "real-host"])
@pytest.mark.parametrize("path", HTML_PAGES, ids=lambda p: p.stem)
def test_every_variant_reads_the_same_and_shows_an_edit(path: Path, mode: str) -> None:
    url = _url(path, mode)
    original = _read(path, url, path.read_bytes())
    anchor = Anchor(original.title, original.text, original.region)
    body_lines = original.text.split("\n", 1)[-1]
    changed = edited(path.read_bytes(), body_lines, MARKER)
    for name, variant in variants(path.read_bytes(), body_lines).items():
        got = _read(path, url, variant, anchor)
        assert got.text == original.text, f"{name}: {got.region} (was {original.region})"
        assert got.links == original.links, name
        if name != "renamed-every-id":  # without its family's id a page may be read differently, until it has an anchor
            fresh = _read(path, url, variant)  # no previous text: a first fetch of the re-rendered page
            assert fresh.text == original.text, f"{name}, first fetch: {fresh.region} (was {original.region})"
    for name, variant in variants(changed, body_lines).items():
        got = _read(path, url, variant, anchor)
        assert MARKER in got.text, f"{name}: the edit vanished ({got.region})"
        assert got.text.replace(MARKER, "") == original.text, f"{name}: more than the edit changed ({got.region})"


def test_the_generator_makes_every_kind_of_variant() -> None:
    assert set(TRANSFORMS) >= {"renamed", "renamed-every-id", "theme-prefix", "attributes-reordered", "reindented", "wrapped", "sidebar-first", "all"}
    body = (PAGES / "gov-k-visa-qa.html").read_bytes()
    made = variants(body, "")
    assert b'class="article"' in body and b'class="article"' not in made["renamed"] and b'class="theme2026-article"' in made["theme-prefix"]
    assert b'id="UCAP-CONTENT"' in made["renamed"] and b'id="UCAP-CONTENT"' not in made["renamed-every-id"]
    assert b"page-wrapper" in made["wrapped"] and len(set(made.values())) == len(made)
