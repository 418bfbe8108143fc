"""Crawls through Scrapy to the loopback fixture server, into a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from kvwatch.fixture_server import FixtureServer, Route
from store.models import Fetch, Snapshot
from tests.conftest import PAGES, TEST_CRAWL, kvwatch, write_watchlist

LINKED_DOCUMENTS = ["P020251009123456789012.pdf", "eng/lsfw/zj/202510/P020251009555444333222.pdf", "n741440/n741542/P020251001000001.pdf"]
LINKED_NOTICE = "n741440/n741547/c1712/content.html"
FIXTURE_IDS = ["gov-k-visa-decision", "gov-k-visa-qa", "nia-k-visa-notice", "embassy-my-visa", "embassy-us-visa"]


def _pages(server: FixtureServer, ids: list[str], extra: str = "") -> str:
    out = [f'[[page]]\nid = "{i}"\nurl = "{server.url(i + ".html")}"\n{extra}' for i in ids]
    return "\n".join(out)


def _rows(db: str) -> tuple[list[Fetch], list[Snapshot]]:
    engine = create_engine(db)
    with Session(engine) as s:
        fetches, snaps = list(s.scalars(select(Fetch).order_by(Fetch.id))), list(s.scalars(select(Snapshot).order_by(Snapshot.id)))
    engine.dispose()
    return fetches, snaps


def test_crawl_stores_snapshots_and_a_second_crawl_is_a_conditional_get(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    pages = _pages(server, FIXTURE_IDS) + f'\n[[page]]\nid = "embassy-visa-guide-pdf"\nurl = "{server.url("embassy-visa-guide-pdf.pdf")}"\n'
    pages += f'\n[[page]]\nid = "nia-news"\nurl = "{server.url("nia-news.html")}"\nkind = "listing"\n'
    write_watchlist(tmp_path, pages)
    pdf = (PAGES / "embassy-visa-guide-pdf.pdf").read_bytes()
    for path in LINKED_DOCUMENTS:  # the attachments and notices the fixture pages link to
        server.route(path, Route(200, pdf, {"Content-Type": "application/pdf"}))
    server.route(LINKED_NOTICE, Route(200, (PAGES / "nia-k-visa-notice.html").read_bytes(), {"Content-Type": "text/html"}))
    first = kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "crawled 7 pages (+4 linked): 11 ok; 11 new snapshots" in first.stdout
    fetches, snaps = _rows(sqlite_url)
    assert {s.page_id for s in snaps if "~" not in s.page_id} == set(FIXTURE_IDS) | {"embassy-visa-guide-pdf", "nia-news"}
    by_id = {s.page_id: s for s in snaps}
    assert "每次停留不超过一百八十日" in by_id["embassy-my-visa"].text
    assert "王喆" in by_id["embassy-my-visa"].text and by_id["embassy-my-visa"].encoding == "gb18030"
    assert "每次停留不超过180日" in by_id["embassy-visa-guide-pdf"].text
    assert [link[0] for link in by_id["nia-news"].links][0].startswith("国家移民管理局关于K字签证")

    linked = {s.page_id.split("~")[0]: s for s in snaps if "~" in s.page_id}
    assert set(linked) == {"embassy-my-visa", "embassy-us-visa", "nia-k-visa-notice", "nia-news"}
    assert "每次停留不超过180日" in linked["embassy-my-visa"].text  # the linked PDF was read, not just noticed
    assert "K字签证持有人" in linked["nia-news"].text

    second = kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "11 not_modified; 0 new snapshots" in second.stdout
    assert all(r.headers.get("if-none-match") for r in server.requests_for("gov-k-visa-qa.html")[1:])
    assert all(r.headers.get("if-none-match") for r in server.requests_for(LINKED_NOTICE)[1:])
    fetches, snaps2 = _rows(sqlite_url)
    assert len(snaps2) == 11 and len(fetches) == 22
    assert all(s.last_seen > s.first_seen for s in snaps2)

    shown = kvwatch("--db", sqlite_url, "show", "nia-news", cwd=tmp_path)
    assert "国家移民管理局发布国庆假期出入境提示" in shown.stdout and "# links" in shown.stdout


def test_raw_body_is_kept_byte_for_byte(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    write_watchlist(tmp_path, _pages(server, ["embassy-my-visa"]))
    assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    import subprocess
    import sys

    raw = subprocess.run([sys.executable, "-m", "kvwatch", "--db", sqlite_url, "show", "embassy-my-visa", "--raw"], cwd=tmp_path, capture_output=True, check=True)
    assert raw.stdout == (PAGES / "embassy-my-visa.html").read_bytes()


def test_noise_only_change_without_etag_match_adds_no_snapshot(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    page = (PAGES / "gov-k-visa-decision.html").read_text(encoding="utf-8")
    noisy = page.replace("浏览次数：18342", "浏览次数：18399").replace("2026年11月25日", "2026年11月26日").replace("a81f3c0d9e", "ffff000011")
    server.route("gov-k-visa-decision.html", Route(200, page.encode(), {"Content-Type": "text/html"}))
    write_watchlist(tmp_path, _pages(server, ["gov-k-visa-decision"]))
    assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    server.route("gov-k-visa-decision.html", Route(200, noisy.encode(), {"Content-Type": "text/html"}))
    out = kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path)
    assert "1 ok; 0 new snapshots" in out.stdout, out.stdout + out.stderr
    server.route("gov-k-visa-decision.html", Route(200, noisy.replace("２０２５年１０月１日", "２０２６年１月１日").encode(), {"Content-Type": "text/html"}))
    out = kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path)
    assert "1 ok; 1 new snapshots" in out.stdout
    _, snaps = _rows(sqlite_url)
    assert "本决定自2026年1月1日起施行。" in snaps[-1].text


FAILURES = {
    "http-502": (Route(502, b"<html><body>Bad Gateway</body></html>"), "error", "HTTP 502"),
    "challenge-412": (Route(412, (PAGES / "challenge-412.html").read_bytes(), {"Content-Type": "text/html"}), "blocked", "HTTP 412"),
    "challenge-200": (Route(200, (PAGES / "challenge-412.html").read_bytes(), {"Content-Type": "text/html"}), "blocked", "anti-bot"),
    "maintenance": (Route(200, (PAGES / "maintenance.html").read_bytes(), {"Content-Type": "text/html"}), "maintenance", "maintenance page (系统维护"),
    "reset": (Route(behaviour="reset"), "error", "connection reset by the server"),
    "truncated": (Route(200, b"<html><body><main>" + "停留期180日".encode() * 50, {"Content-Type": "text/html"}, behaviour="truncate"), "error", "truncated"),
    "empty": (Route(200, b"", {"Content-Type": "text/html"}), "error", "empty body"),
    "timeout": (Route(200, b"<html></html>", behaviour="stall", stall_seconds=9), "error", "timeout"),
    "gone": (Route(404, b"<html><body>not found</body></html>"), "error", "HTTP 404"),
}


def test_every_failure_mode_is_recorded_and_never_replaces_the_snapshot(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    good = (PAGES / "nia-k-visa-notice.html").read_bytes()
    entries = []
    for name in FAILURES:
        server.route(f"{name}.html", Route(200, good, {"Content-Type": "text/html"}))
        entries.append(f'[[page]]\nid = "{name}"\nurl = "{server.url(name + ".html")}"\n')
    write_watchlist(tmp_path, "\n".join(entries))
    assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    for name, (route, _, _) in FAILURES.items():
        server.route(f"{name}.html", route)
    out = kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    fetches, snaps = _rows(sqlite_url)
    assert len(snaps) == len(FAILURES), "a failure created a snapshot"
    assert all("K字签证持有人" in s.text for s in snaps)
    last = {f.page_id: f for f in fetches}
    for name, (_, outcome, reason) in FAILURES.items():
        assert (last[name].outcome, reason in last[name].reason) == (outcome, True), (name, last[name].outcome, last[name].reason)
        assert not any(junk in last[name].reason for junk in ("<twisted", "Failure", "\\n", "\n", "?")), (name, last[name].reason)  # words for people
        assert last[name].snapshot_id is None
    # first crawl: 1 request; second: the 502 and one retry (retries = 1)
    assert len(server.requests_for("http-502.html")) == 3
    health = json.loads(kvwatch("--db", sqlite_url, "pages", "--json", cwd=tmp_path).stdout)
    failing = {row["id"]: row for row in health}
    assert failing["challenge-412"]["failures"] == 1 and "412" in failing["challenge-412"]["reason"]
    assert failing["reset"]["last_good"] is not None


def test_proxy_per_page_and_from_the_environment(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    # 127.0.0.2:9 has no server: the page is only reachable through the proxy.
    pages = f'[[page]]\nid = "via-page-proxy"\nurl = "http://127.0.0.2:9/nia-news.html"\nproxy = "{server.base}"\nkind = "listing"\n'
    write_watchlist(tmp_path, pages)
    out = kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path)
    assert "1 ok" in out.stdout, out.stdout + out.stderr
    assert [s.host for s in server.seen if s.via_proxy and s.path == "/nia-news.html"] == ["127.0.0.2"]
    write_watchlist(tmp_path, '[[page]]\nid = "via-env-proxy"\nurl = "http://127.0.0.3:9/nia-news.html"\n')
    out = kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path, env={"http_proxy": server.base})
    assert "1 ok" in out.stdout, out.stdout + out.stderr
    assert "127.0.0.3" in [s.host for s in server.seen if s.via_proxy]


def test_robots_txt_is_obeyed_unless_the_page_opts_out(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    server.route("robots.txt", Route(200, b"User-agent: *\nDisallow: /nia-news.html\n", {"Content-Type": "text/plain"}))
    url = server.url("nia-news.html")
    write_watchlist(tmp_path, f'[[page]]\nid = "polite"\nurl = "{url}"\n[[page]]\nid = "opted-out"\nurl = "{url}?x=1"\nrobots = false\n')
    out = kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    fetches, _ = _rows(sqlite_url)
    assert {f.page_id: f.outcome for f in fetches if "~" not in f.page_id} == {"polite": "blocked", "opted-out": "ok"}
    assert "robots.txt" in [f for f in fetches if f.page_id == "polite"][0].reason


def test_polite_defaults_identify_the_project(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    write_watchlist(tmp_path, _pages(server, ["gov-k-visa-qa"]))
    kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path)
    agent = server.requests_for("gov-k-visa-qa.html")[0].headers["user-agent"]
    assert agent.startswith("kvwatch/") and "https://" in agent


def test_redirects_are_followed_and_the_final_page_is_snapshotted(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    server.route("moved.html", Route(301, b"", {"Location": server.url("nia-k-visa-notice.html")}))
    write_watchlist(tmp_path, f'[[page]]\nid = "moved"\nurl = "{server.url("moved.html")}"\n')
    out = kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path)
    assert "1 ok; 1 new snapshots" in out.stdout, out.stdout + out.stderr
    fetches, snaps = _rows(sqlite_url)
    assert fetches[0].url == server.url("nia-k-visa-notice.html") and "K字签证持有人" in snaps[0].text
    assert fetches[0].reason == f"moved permanently from {server.url('moved.html')}"
    kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path)  # a second cycle: still moved, still one notice
    pages = kvwatch("--db", sqlite_url, "pages", cwd=tmp_path).stdout
    assert f"(moved to {server.url('nia-k-visa-notice.html')})" in pages
    notices = [a for a in json.loads(kvwatch("--db", sqlite_url, "alerts", "--json", "--kind", "health", cwd=tmp_path).stdout)]
    assert [n["summary"] for n in notices] == [f"moved: moved permanently to {server.url('nia-k-visa-notice.html')}; update its url in the watchlist"]


def test_a_body_over_the_size_limit_is_an_error_not_a_page(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    server.route("huge.html", Route(200, b"<html><body><main>" + "停留期180日".encode() * 20000 + b"</main></body></html>", {"Content-Type": "text/html"}))
    write_watchlist(tmp_path, f'[[page]]\nid = "huge"\nurl = "{server.url("huge.html")}"\n', crawl=TEST_CRAWL + "max_bytes = 10000\n")
    assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    fetches, snaps = _rows(sqlite_url)
    assert snaps == [] and fetches[0].outcome == "error" and fetches[0].reason == "body larger than 10000 bytes (the [crawl] max_bytes limit)", fetches[0].reason


def test_linked_pages_found_while_start_requests_are_still_read_do_not_stop_the_crawl() -> None:
    """A fast answer that links a K-visa document adds a plan while Scrapy is still reading start(): every
    watched page must still be requested (this once ended crawls with 'start_error', pages never fetched)."""
    import asyncio

    from crawler.fetch import FetchPlan, WatchSpider, linked_spec
    from crawler.watchlist import PageSpec

    specs = [PageSpec(id=f"p{i}", url=f"http://127.0.0.1:9/p{i}.html") for i in range(5)]
    spider = WatchSpider(plans=[FetchPlan(s) for s in specs])

    async def read() -> list[str]:
        urls = []
        async for request in spider.start():
            urls.append(request.url)
            if len(urls) == 1:  # the first page answered and linked a document
                list(spider.follow(specs[0], [linked_spec(specs[0], "http://127.0.0.1:9/P020.pdf", "K字签证名单")]))
        return urls

    assert asyncio.run(read()) == [s.url for s in specs]


def test_the_same_bytes_again_cost_a_hash_not_a_normalization(server: FixtureServer, tmp_path: Path) -> None:
    """A server that sends no validators: the same body again is recorded ok (the snapshot's last_seen
    moves) without being normalized; a changed watchlist setting for the page makes it normalize again."""
    import sqlite3

    body = (PAGES / "nia-k-visa-notice.html").read_bytes()
    server.route("static.html", Route(200, body, {"Content-Type": "text/html", "ETag": "", "Last-Modified": ""}))
    watchlist = write_watchlist(tmp_path, f'[[page]]\nid = "static"\nurl = "{server.url("static.html")}"\n')
    db = tmp_path / "kv.db"
    runs = [kvwatch("--db", f"sqlite:///{db}", "-vv", "crawl", cwd=tmp_path) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr
    assert "not normalized again" not in runs[0].stderr and "not normalized again" in runs[1].stderr
    assert all("If-None-Match" not in s.headers and "if-none-match" not in s.headers for s in server.requests_for("static.html"))
    with sqlite3.connect(db) as conn:
        fetches = conn.execute("select outcome, body_hash, snapshot_id from fetch where page_id = 'static' order by id").fetchall()
        snaps = conn.execute("select id, first_seen < last_seen from snapshot").fetchall()
    assert [f[0] for f in fetches] == ["ok", "ok"] and fetches[0][1] == fetches[1][1] and fetches[0][2] == fetches[1][2]
    assert snaps == [(fetches[0][2], 1)]
    watchlist.write_text(watchlist.read_text(encoding="utf-8").replace('url = ', 'ignore = ["浏览次数"]\nurl = '), encoding="utf-8")
    third = kvwatch("--db", f"sqlite:///{db}", "-vv", "crawl", cwd=tmp_path)
    assert third.returncode == 0 and "not normalized again" not in third.stderr  # the page's settings changed: read it again
