"""Browser fetch (issue 11), with a real Chromium driven by scrapy-playwright against the loopback
fixture server: a JavaScript challenge modelled on the real anti-bot layer (412, a script that
computes a cookie and reloads), a challenge the browser cannot pass, a page written by scripts from
JSON, the page's memory of needing the browser, cookies reused for plain requests, a browser-less
machine, and no browser left behind when the crawl is stopped mid-render."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from crawler import browser
from kvwatch.fixture_server import FixtureServer, Route
from tests.conftest import PAGES, kvwatch, wait_for, write_watchlist

FOUND = browser.find()
needs_browser = pytest.mark.skipif(not FOUND.ok, reason=f"no browser on this machine: {FOUND.missing}")
HTML = {"Content-Type": "text/html; charset=utf-8"}
NOTICE = (PAGES / "nia-k-visa-notice.html").read_bytes()
LISTING = (PAGES / "nia-news.html").read_bytes()
SHELL = b"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>K visa</title></head>
<body><img src="/photo.png" alt=""><div id="app"></div><script>
fetch('/api/article.json').then(function (r) { return r.json(); }).then(function (d) {
  document.getElementById('app').innerHTML = '<h1>' + d.title + '</h1>' + d.paras.map(function (p) { return '<p>' + p + '</p>'; }).join('');
});
</script></body></html>"""
ARTICLE = {"title": "K字签证申请须知", "paras": ["K字签证持有人每次入境停留期不超过180日。", "申请人须提交在国内外知名高校或者科研机构学习或工作的证明材料。"]}
CRAWL = """
[crawl]
autothrottle = false
delay = 0
timeout = 20
retries = 0
concurrency_per_domain = 4
failures_before_alert = 2
"""


def rows(db: Path, sql: str, *args: object) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def crawl(tmp_path: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = kvwatch("--db", f"sqlite:///{tmp_path / 'kv.db'}", "crawl", cwd=tmp_path, env=env, timeout=180)
    assert done.returncode in (0, 3), done.stderr[-2000:]
    return done


def page(page_id: str, url: str, extra: str = "") -> str:
    return f'[[page]]\nid = "{page_id}"\nurl = "{url}"\n{extra}\n'


@needs_browser
def test_a_challenge_is_passed_by_the_browser_and_reads_as_the_unchallenged_page(server: FixtureServer, tmp_path: Path) -> None:
    server.route("guarded/notice.html", Route(200, NOTICE, HTML, behaviour="challenge"))
    server.route("open/notice.html", Route(200, NOTICE, HTML))
    write_watchlist(tmp_path, page("guarded", server.url("guarded/notice.html")) + page("open", server.url("open/notice.html"))
                    + page("plain-only", server.url("guarded/notice.html"), 'render = "plain"'), CRAWL)
    crawl(tmp_path)
    db = tmp_path / "kv.db"
    fetches = {r[0]: r[1:] for r in rows(db, "select page_id, outcome, via, status, reason from fetch where page_id not like '%~%'")}
    assert fetches["plain-only"][:2] == ("blocked", "plain") and "anti-bot challenge" in fetches["plain-only"][3]
    assert fetches["open"][:2] == ("ok", "plain")
    assert fetches["guarded"][:3] == ("ok", "browser", 200) and fetches["guarded"][3].startswith("browser, after a blocked plain fetch (HTTP 412")
    texts = dict(rows(db, "select page_id, text from snapshot"))
    assert texts["guarded"] == texts["open"] and "K字签证" in texts["guarded"]
    # one attempt per page and cycle: the blocked plain try is said in the browser fetch's reason
    assert len(rows(db, "select id from fetch where page_id = 'guarded'")) == 1


@needs_browser
def test_a_page_that_needed_the_browser_keeps_it_until_the_daily_plain_probe(server: FixtureServer, tmp_path: Path) -> None:
    server.route("guarded.html", Route(200, NOTICE, HTML, behaviour="challenge"))
    write_watchlist(tmp_path, page("guarded", server.url("guarded.html")), CRAWL)
    db = tmp_path / "kv.db"
    crawl(tmp_path)
    plain_tries = len([s for s in server.requests_for("guarded.html") if "kvwatch" in s.headers.get("user-agent", "")])
    crawl(tmp_path)
    second = rows(db, "select via, outcome, reason from fetch where page_id = 'guarded' order by id")[-1]
    assert second == ("browser", "ok", "")  # straight to the browser, no blocked plain try first
    # a day later the plain fetch is probed again (and, still challenged, the browser reads the page)
    with sqlite3.connect(db) as conn:
        conn.execute("update fetch set started_at = datetime(started_at, '-2 days')")
    crawl(tmp_path)
    third = rows(db, "select via, outcome, reason from fetch where page_id = 'guarded' order by id")[-1]
    assert third[:2] == ("browser", "ok") and third[2].startswith("browser, after a blocked plain fetch")
    assert plain_tries >= 1
    # once the challenge is lifted, the probe finds a plain fetch does again
    server.route("guarded.html", Route(200, NOTICE, HTML))
    with sqlite3.connect(db) as conn:
        conn.execute("update fetch set started_at = datetime(started_at, '-2 days')")
    crawl(tmp_path)
    assert rows(db, "select via, outcome from fetch where page_id = 'guarded' order by id")[-1] == ("plain", "ok")


@needs_browser
def test_a_challenge_the_browser_cannot_pass_is_blocked_once_per_cycle_then_a_health_alert(server: FixtureServer, tmp_path: Path) -> None:
    server.route("wall.html", Route(200, NOTICE, HTML, behaviour="challenge", solvable=False))
    write_watchlist(tmp_path, page("wall", server.url("wall.html")), CRAWL)
    db = tmp_path / "kv.db"
    crawl(tmp_path)
    first = rows(db, "select outcome, via, status, reason from fetch where page_id = 'wall'")
    assert len(first) == 1 and first[0][:3] == ("blocked", "browser", 412)
    assert "the browser did not get past it" in first[0][3] and "challenge" in first[0][3]
    assert rows(db, "select count(*) from snapshot")[0][0] == 0
    assert rows(db, "select count(*) from alert where kind = 'health'")[0][0] == 0
    # a challenge that reloads forever is followed a bounded number of times
    assert len(server.requests_for("wall.html")) <= browser.SETTLE_ROUNDS + 3
    crawl(tmp_path)
    assert rows(db, "select count(*) from fetch where page_id = 'wall'")[0][0] == 2
    health = rows(db, "select summary from alert where kind = 'health' and page_id = 'wall'")
    assert len(health) == 1 and "did not get past it" in health[0][0]


@needs_browser
def test_a_client_rendered_page_is_read_with_its_article(server: FixtureServer, tmp_path: Path) -> None:
    server.route("app/k.html", Route(200, SHELL, HTML))
    server.route("api/article.json", Route(200, json.dumps(ARTICLE, ensure_ascii=False).encode(), {"Content-Type": "application/json"}))
    server.route("photo.png", Route(200, b"\x89PNG", {"Content-Type": "image/png"}))
    write_watchlist(tmp_path, page("app", server.url("app/k.html"), 'render = "browser"'), CRAWL)
    crawl(tmp_path)
    db = tmp_path / "kv.db"
    assert rows(db, "select outcome, via from fetch where page_id = 'app'") == [("ok", "browser")]
    text = rows(db, "select text from snapshot where page_id = 'app'")[0][0]
    assert all(para in text for para in ARTICLE["paras"]) and ARTICLE["title"] in text
    facts = dict(rows(db, "select field, value from fact where page_id = 'app'"))
    assert facts.get("stay_duration") == "P180D"
    assert server.requests_for("photo.png") == []  # images, fonts and media are not downloaded


@needs_browser
def test_cookies_the_challenge_set_open_the_hosts_plain_requests(server: FixtureServer, tmp_path: Path) -> None:
    """The listing needs the browser; the K-visa notice it links to (same host, same challenge) is then
    fetched plainly with the cookie the browser came away with."""
    server.route("n741440/n741547/index.html", Route(200, LISTING, HTML, behaviour="challenge"))
    server.route("n741440/n741547/c1712/content.html", Route(200, NOTICE, HTML, behaviour="challenge"))
    write_watchlist(tmp_path, page("nia-news", server.url("n741440/n741547/index.html"), 'kind = "listing"'), CRAWL)
    crawl(tmp_path)
    db = tmp_path / "kv.db"
    assert rows(db, "select outcome, via from fetch where page_id = 'nia-news'") == [("ok", "browser")]
    linked = rows(db, "select outcome, via from fetch where page_id like 'nia-news~%' and url like '%c1712%'")
    assert linked == [("ok", "plain")]


def test_without_a_browser_the_page_says_what_to_install(server: FixtureServer, tmp_path: Path) -> None:
    server.route("guarded.html", Route(200, NOTICE, HTML, behaviour="challenge"))
    server.route("app.html", Route(200, SHELL, HTML))
    write_watchlist(tmp_path, page("guarded", server.url("guarded.html")) + page("app", server.url("app.html"), 'render = "browser"'), CRAWL)
    crawl(tmp_path, env={"KVWATCH_CHROMIUM": str(tmp_path / "no-such-chromium")})
    db = tmp_path / "kv.db"
    fetches = {r[0]: r[1:] for r in rows(db, "select page_id, outcome, reason from fetch")}
    assert fetches["guarded"][0] == "blocked" and "HTTP 412 (anti-bot challenge); needs a browser: install" in fetches["guarded"][1]
    assert fetches["app"][0] == "blocked" and fetches["app"][1].startswith("needs a browser: install")
    assert server.requests_for("app.html") == []  # nothing fetched that could not be read
    doctor = kvwatch("--db", f"sqlite:///{db}", "doctor", cwd=tmp_path, env={"KVWATCH_CHROMIUM": str(tmp_path / "no-such-chromium")})
    line = next(line for line in doctor.stdout.splitlines() if line.split()[1] == "browser")
    assert line.startswith("FAIL") and "needs a browser" in line and "app" in line


@needs_browser
def test_doctor_names_the_browser_and_its_version(tmp_path: Path) -> None:
    write_watchlist(tmp_path, page("a", "http://127.0.0.1:9/a.html"), CRAWL)
    doctor = kvwatch("--db", f"sqlite:///{tmp_path / 'kv.db'}", "doctor", cwd=tmp_path)
    line = next(line for line in doctor.stdout.splitlines() if line.split()[1] == "browser")
    assert line.startswith("ok") and "Chromium" in line and str(FOUND.executable) in line


def _descendants(root: int) -> set[int]:
    """Live processes under `root` (read from /proc), zombies excluded."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            out.add(pid)
    return out


@needs_browser
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stopping_the_crawl_mid_render_leaves_no_browser_behind(server: FixtureServer, tmp_path: Path, how: signal.Signals) -> None:
    server.route("app.html", Route(200, SHELL, HTML))
    server.route("api/article.json", Route(200, b"{}", {"Content-Type": "application/json"}, behaviour="stall", stall_seconds=60))
    write_watchlist(tmp_path, page("app", server.url("app.html"), 'render = "browser"'), CRAWL.replace("timeout = 20", "timeout = 60"))
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "kvwatch_db")}
    proc = subprocess.Popen([sys.executable, "-m", "kvwatch", "--db", f"sqlite:///{tmp_path / 'kv.db'}", "crawl"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: server.requests_for("api/article.json"), "the browser to render the page and ask for its JSON")
        tree = _descendants(proc.pid)
        assert any("chrom" in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace") for pid in _alive(tree))
        proc.send_signal(how)
        proc.wait(timeout=60)
        wait_for(lambda: not _alive(tree), "every browser process to exit", timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if how == signal.SIGTERM:  # stopped cleanly: the page is recorded as not fetched, never as content
        db = tmp_path / "kv.db"
        assert rows(db, "select count(*) from snapshot")[0][0] == 0
        assert {r[0] for r in rows(db, "select outcome from fetch where page_id = 'app'")} <= {"interrupted", "error"}


def test_the_render_key_is_validated(tmp_path: Path) -> None:
    from crawler.watchlist import load
    from store.errors import ConfigError

    path = write_watchlist(tmp_path, page("a", "http://127.0.0.1:9/a.html", 'render = "chrome"'), CRAWL)
    with pytest.raises(ConfigError, match="unknown render 'chrome' \\(valid: auto, plain, browser\\)"):
        load(path)
    path.write_text('[defaults]\nrender = "browser"\n' + page("a", "http://127.0.0.1:9/a.html"), encoding="utf-8")
    assert load(path).pages[0].render == "browser"



@needs_browser
def test_a_client_rendered_page_whose_data_is_slow_still_reads(server: FixtureServer, tmp_path: Path) -> None:
    server.route("app/k.html", Route(200, SHELL, HTML))
    server.route("api/article.json", Route(200, json.dumps(ARTICLE, ensure_ascii=False).encode(), {"Content-Type": "application/json"},
                                           behaviour="stall", stall_seconds=4))
    write_watchlist(tmp_path, page("app", server.url("app/k.html"), 'render = "browser"'), CRAWL)
    crawl(tmp_path)
    db = tmp_path / "kv.db"
    assert rows(db, "select outcome, via from fetch where page_id = 'app'") == [("ok", "browser")]
    assert ARTICLE["paras"][0] in rows(db, "select text from snapshot where page_id = 'app'")[0][0]
