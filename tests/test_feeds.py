"""Feeds as sources (issue 13): RSS, Atom and gov.cn-style JSON lists read as listings, so a new
K-visa item is a `new_link` alert; crawled through Scrapy from a loopback server."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from kvwatch.fixture_server import FixtureServer, Route
from tests.conftest import kvwatch, write_watchlist


def rss(items: list[tuple[str, str]]) -> bytes:
    entries = "".join(f"<item><title>{t}</title><link>{u}</link><pubDate>Wed, 01 Oct 2025 08:00:00 +0800</pubDate></item>" for t, u in items)
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>领事新闻</title><link>http://127.0.0.1/</link>{entries}</channel></rss>'.encode()


ATOM = (b'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Consular news</title><id>urn:x</id>'
        b'<updated>2025-10-01T00:00:00Z</updated><entry><title>Passport services</title><link href="/eng/a1.htm"/><id>urn:a1</id>'
        b'<updated>2025-10-01T00:00:00Z</updated></entry></feed>')
OLD = [("护照办理须知", "/lsfw/a1.htm"), ("国庆假期安排", "/lsfw/a2.htm")]


def rows(db: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_a_new_k_visa_item_in_a_feed_is_a_new_link_alert(server: FixtureServer, tmp_path: Path) -> None:
    server.route("rss.xml", Route(200, rss(OLD), {"Content-Type": "application/rss+xml"}))
    server.route("list.json", Route(200, json.dumps([{"TITLE": t, "URL": u, "DOCRELPUBTIME": "2025-10-01"} for t, u in OLD], ensure_ascii=False).encode(),
                                    {"Content-Type": "application/json"}))
    server.route("atom.xml", Route(200, ATOM, {"Content-Type": "text/xml"}))
    server.route("broken.xml", Route(200, b"<html><body>not a feed</body></html>", {"Content-Type": "text/html"}))
    write_watchlist(tmp_path, "".join(f'[[page]]\nid = "{i}"\nurl = "{server.url(p)}"\n{k}\n' for i, p, k in (
        ("rss", "rss.xml", 'kind = "feed"'), ("json", "list.json", 'kind = "feed"'), ("atom", "atom.xml", ""), ("broken", "broken.xml", 'kind = "feed"'))))
    db = tmp_path / "kv.db"
    assert kvwatch("--db", f"sqlite:///{db}", "crawl", cwd=tmp_path).returncode in (0, 3)
    snaps = {r[0]: r[1:] for r in rows(db, "select page_id, region, text, links from snapshot")}
    assert snaps["rss"][0] == "feed (rss20, 2 items)" and "护照办理须知" in snaps["rss"][1]
    assert json.loads(snaps["rss"][2])[0] == ["护照办理须知", server.url("lsfw/a1.htm")]
    assert snaps["json"][0] == "feed (json, 2 items)" and "国庆假期安排" in snaps["json"][1]
    assert snaps["atom"][0].startswith("feed (atom")  # recognised as a feed with kind auto
    broken = rows(db, "select outcome, reason from fetch where page_id = 'broken'")
    assert broken[0][0] == "error" and "feed" in broken[0][1]
    server.route("rss.xml", Route(200, rss([("关于K字签证办理的通知", "/lsfw/a3.htm"), *OLD]), {"Content-Type": "application/rss+xml"}))
    assert kvwatch("--db", f"sqlite:///{db}", "crawl", cwd=tmp_path).returncode in (0, 3)
    alerts = rows(db, "select kind, relevant, summary from alert where page_id = 'rss'")
    assert [(kind, relevant) for kind, relevant, _ in alerts] == [("new_link", 1)] and "关于K字签证办理的通知" in alerts[0][2]
