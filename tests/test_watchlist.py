"""watchlist.toml validation: clear errors naming the file, the entry and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.watchlist import KINDS, load
from store.errors import ConfigError
from tests.conftest import ROOT


def _load(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "watchlist.toml"
    path.write_text(body, encoding="utf-8")
    return load(path)


def test_the_shipped_watchlist_is_valid_and_covers_the_sources() -> None:
    wl = load(ROOT / "watchlist.toml")
    ids = {p.id for p in wl.pages}
    assert {"gov-k-visa-decision", "gov-k-visa-qa", "nia-news", "fmprc-missions", "cova"} <= ids
    hosts = [p.url.split("/")[2] for p in wl.pages]
    assert sum(h.endswith(("china-embassy.gov.cn", "china-consulate.gov.cn")) for h in hosts) >= 5
    assert any(h.endswith("visaforchina.cn") for h in hosts) and any("nia.gov.cn" in h for h in hosts)
    assert any(p.url.endswith(".pdf") for p in wl.pages)


def test_a_page_needs_only_id_and_url(tmp_path: Path) -> None:
    wl = _load(tmp_path, '[[page]]\nid = "gov-k-visa-decision"\nurl = "https://www.gov.cn/zhengce/content/202508/content_7036507.htm"\n')
    page = wl.pages[0]
    assert (page.kind, page.enabled, page.robots, page.interval, page.selector) == ("auto", True, True, 21600, None)


@pytest.mark.parametrize(
    ("body", "entry", "key", "words"),
    [
        ('[[page]]\nurl = "https://x.cn/"\n', "[[page]] #1", "id", "missing"),
        ('[[page]]\nid = "a"\n', "[[page]] id=a", "url", "missing"),
        ('[[page]]\nid = "a"\nurl = "htp:/x"\n', "[[page]] id=a", "url", "not a valid http(s) URL"),
        ('[[page]]\nid = "a"\nurl = "https://x.cn/"\n[[page]]\nid = "a"\nurl = "https://y.cn/"\n', "[[page]] id=a", "id", "duplicate id"),
        ('[[page]]\nid = "a"\nurl = "https://x.cn/"\nslector = "#x"\n', "[[page]] id=a", "slector", "unknown key"),
        ('[[page]]\nid = "a"\nurl = "https://x.cn/"\nkind = "rss"\n', "[[page]] id=a", "kind", "valid kinds: " + ", ".join(KINDS)),
        ('[[page]]\nid = "a"\nurl = "https://x.cn/"\nselector = "div[["\n', "[[page]] id=a", "selector", "not a valid CSS selector"),
        ('[[page]]\nid = "a"\nurl = "https://x.cn/"\ninterval = "soon"\n', "[[page]] id=a", "interval", "duration"),
        ('[[page]]\nid = "a"\nurl = "https://x.cn/"\nignore = ["("]\n', "[[page]] id=a", "ignore", "bad regular expression"),
        ('[[page]]\nid = "a"\nurl = "https://x.cn/"\nproxy = "socks9://p"\n', "[[page]] id=a", "proxy", "proxy URL"),
        ('[[page]]\nid = "a"\nurl = "https://x.cn/"\nencoding = "klingon"\n', "[[page]] id=a", "encoding", "unknown character set"),
        ('[[page]]\nid = "Bad Id"\nurl = "https://x.cn/"\n', "[[page]] #1", "id", "lower-case"),
        ('[crawl]\ntimeout = "fast"\n[[page]]\nid = "a"\nurl = "https://x.cn/"\n', "[crawl]", "timeout", "must be a float"),
    ],
)
def test_bad_entries_name_file_entry_and_key(tmp_path: Path, body: str, entry: str, key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, body)
    message = str(info.value)
    assert message.startswith(str(tmp_path / "watchlist.toml"))
    assert f"{entry}: key '{key}'" in message and words in message


def test_toml_syntax_errors_name_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"watchlist.toml: not valid TOML: .*line 2"):
        _load(tmp_path, '[[page]]\nid = "a\n')


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.toml: file not found"):
        load(tmp_path / "nope.toml")
