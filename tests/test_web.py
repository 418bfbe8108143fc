"""The web page, its JSON API and Atom feeds (issue 12): a real `kvwatch web` process over a database
filled by real crawls, read over HTTP, by feedparser, and by a real Chromium (Playwright)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest

from crawler import browser
from kvwatch.demo import page as demo_page
from kvwatch.fixture_server import FixtureServer, Route
from tests.conftest import ROOT, kvwatch, wait_for, write_watchlist

HTML = {"Content-Type": "text/html; charset=utf-8"}
HOSTILE = ("<html><head><title>K字签证 &lt;script&gt;alert(1)&lt;/script&gt;</title><script>alert('raw')</script></head><body><div class=\"content\">"
           "<p>K字签证持有人每次入境停留期不超过180日。&lt;script&gt;alert(1)&lt;/script&gt;</p>"
           "<p>&quot;&gt;&lt;img src=x onerror=alert(2)&gt; 申请人须提交学历证明材料，相关要求以使馆公布为准。</p>"
           "<p><a href=\"javascript:alert(3)\">K字签证 javascript link</a> <a href=\"data:text/html,&lt;script&gt;alert(4)&lt;/script&gt;\">K字签证 data link</a></p>"
           "<img src=\"x\" onerror=\"alert(5)\"></div></body></html>")
ARTIFACTS = ROOT / "tests" / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str, token: str = "", basic: str = "") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if basic:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"anyone:{basic}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


class Web:
    def __init__(self, folder: Path, db: str, env: dict[str, str] | None = None):
        self.folder, self.db, self.env = folder, db, env or {}
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        base_env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "kvwatch_db")}
        self.proc = subprocess.Popen([sys.executable, "-m", "kvwatch", "--db", db, "web", "--port", str(self.port)], cwd=folder,
                                     env={**base_env, **self.env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(self._up, f"kvwatch web on port {self.port}", timeout=60)

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"kvwatch web exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """Two crawls: an embassy page whose stay per entry goes 90 → 180 days, and a hostile page."""
    folder = tmp_path_factory.mktemp("web")
    db = f"sqlite:///{folder / 'kv.db'}"
    with FixtureServer(folder) as server:
        server.route("embassy.htm", Route(200, demo_page(90, 1), HTML))
        server.route("hostile.htm", Route(200, HOSTILE.encode(), HTML))
        write_watchlist(folder, f'[[page]]\nid = "embassy"\nname = "Embassy in Exampleland"\nurl = "{server.url("embassy.htm")}"\n'
                                f'tags = {{ tier = "mission", country = "xx" }}\n'
                                f'[[page]]\nid = "hostile"\nname = "<b>hostile</b> page"\nurl = "{server.url("hostile.htm")}"\n')
        assert kvwatch("--db", db, "crawl", cwd=folder).returncode in (0, 3)
        server.route("embassy.htm", Route(200, demo_page(180, 2), HTML))
        assert kvwatch("--db", db, "crawl", cwd=folder).returncode in (0, 3)
    yield folder, db


@pytest.fixture(scope="module")
def web(store: tuple[Path, str]) -> Iterator[Web]:
    server = Web(*store, env={"KVWATCH_PUBLIC_URL": ""})
    yield server
    server.stop()


def api(web: Web, path: str) -> dict:
    status, _, body = get(web.base + path)
    assert status == 200, (path, body[:300])
    return json.loads(body)


def test_every_page_answers_with_a_policy_that_allows_no_script(web: Web) -> None:
    alerts = api(web, "/api/alerts")["alerts"]
    fact = next(a for a in alerts if a["kind"] == "fact" and any(f["field"] == "stay_duration" and f["old"] for f in a["facts"]))
    first, second = (s["id"] for s in api(web, "/api/pages/embassy")["snapshots"])
    assert api(web, f"/api/alerts/{fact['id']}")["from_snapshot_id"] == first  # a fact alert links the version before it too
    pages = ["/", "/pages", "/pages?tag=country:xx", "/pages/embassy", f"/snapshots/{fact['to_snapshot_id']}", "/alerts", "/alerts?relevant=1",
             f"/alerts/{fact['id']}", "/fields/stay_duration", "/fields/stay_duration?at=2020-01-01", f"/diff/{first}/{second}", f"/diff/{first}/{second}?view=side"]
    for path in pages:
        status, headers, body = get(web.base + path)
        assert status == 200, (path, body[:300])
        assert "default-src 'none'" in headers["content-security-policy"] and "script-src" not in headers["content-security-policy"]
        assert b"<script" not in body.lower(), path
    assert get(web.base + "/snapshots/999999")[0] == 404 and json.loads(get(web.base + "/api/snapshots/999999")[2]) == {"error": "no snapshot 999999"}
    assert get(web.base + "/alerts?kind=bogus")[0] == 400
    status, _, body = get(web.base + f"/diff?from={first}&to={second}&view=side")  # the history's form: any two snapshots
    assert status == 200 and b'class="text old"' in body
    assert "/api/alerts" in api(web, "/openapi.json")["paths"]


def test_k_visa_now_the_field_timeline_and_the_alert_agree_with_the_store(web: Web) -> None:
    now = api(web, "/api/now")
    stay = next(f for f in now["fields"] if f["field"] == "stay_duration")
    assert [(s["page_id"], s["value"]) for s in stay["sources"] if s["page_id"] == "embassy"] == [("embassy", "P180D")]
    timeline = api(web, "/api/fields/stay_duration")["timeline"]
    assert [t["value"] for t in timeline if t["page_id"] == "embassy"] == ["P90D", "P180D"]
    changed = next(t for t in timeline if t["page_id"] == "embassy" and t["value"] == "P180D")["from"]  # seconds: just before the change
    then = api(web, f"/api/fields/stay_duration?at={changed}")["then"]
    assert [t["shown"] for t in then if t["page_id"] == "embassy"] == ["90 days"]  # what the source said then, and its snapshot
    status, _, body = get(web.base + f"/snapshots/{then[0]['snapshot_id']}")
    assert status == 200 and b"90" in body
    ids = [t["snapshot_id"] for t in timeline if t["page_id"] == "embassy"]
    diff = api(web, f"/api/diff/{ids[0]}/{ids[1]}")
    assert {"op": "-", "text": "90"} in diff["ops"] and {"op": "+", "text": "180"} in diff["ops"]  # the changed number, not the line


def test_hostile_page_text_is_escaped_and_links_stay_text(web: Web) -> None:
    snapshot = api(web, "/api/pages/hostile")["snapshots"][0]["id"]
    status, _, body = get(web.base + f"/snapshots/{snapshot}")
    text = body.decode()
    assert status == 200 and "&lt;script&gt;alert(1)&lt;/script&gt;" in text and "&lt;img src=x onerror=alert(2)&gt;" in text
    assert "javascript:" not in text and "data:text/html" not in text and "onerror=" not in text.replace("onerror=alert(2)&gt;", "")
    assert "&lt;b&gt;hostile&lt;/b&gt;" in get(web.base + "/pages")[2].decode()
    status, headers, raw = get(web.base + f"/snapshots/{snapshot}/raw")
    assert status == 200 and b"<script>alert('raw')</script>" in raw and headers["content-security-policy"].startswith("sandbox;")


def test_atom_feeds_parse_validate_and_keep_their_entry_ids(web: Web, store: tuple[Path, str]) -> None:
    status, headers, body = get(web.base + "/feeds/alerts.atom?relevant=1&field=stay_duration")
    assert status == 200 and headers["content-type"].startswith("application/atom+xml")
    feed = feedparser.parse(body)
    assert feed.version == "atom10" and not feed.bozo, feed.get("bozo_exception")
    assert feed.entries and all("stay" in e.title.lower() or "停留" in e.title for e in feed.entries)
    assert all(e.id.startswith("urn:kvwatch:alert:") and e.updated for e in feed.entries)
    assert "K字签证" in feed.entries[0].content[0].value  # the evidence, as text
    everything = feedparser.parse(get(web.base + "/feeds/alerts.atom")[2])
    assert len(everything.entries) > len(feed.entries)
    again = feedparser.parse(get(web.base + "/feeds/alerts.atom")[2])
    assert [e.id for e in again.entries] == [e.id for e in everything.entries]
    restarted = Web(*store)
    try:
        assert [e.id for e in feedparser.parse(get(restarted.base + "/feeds/alerts.atom")[2]).entries] == [e.id for e in everything.entries]
    finally:
        restarted.stop()
    folder, db = store
    published = kvwatch("--db", db, "feed", "--relevant", cwd=folder, env={"KVWATCH_PUBLIC_URL": "https://kvwatch.example.org"})
    static = feedparser.parse(published.stdout.encode())
    assert published.returncode == 0 and static.version == "atom10"
    assert all(e.link.startswith("https://kvwatch.example.org/alerts/") for e in static.entries)


def test_a_token_guards_the_page_and_other_addresses_need_one(store: tuple[Path, str]) -> None:
    folder, db = store
    refused = kvwatch("--db", db, "web", "--host", "0.0.0.0", "--port", str(free_port()), cwd=folder)
    assert refused.returncode == 2 and "KVWATCH_WEB_TOKEN" in refused.stderr
    guarded = Web(folder, db, env={"KVWATCH_WEB_TOKEN": "s3cret-token"})
    try:
        status, headers, _ = get(guarded.base + "/")
        assert status == 401 and headers["www-authenticate"].startswith("Basic")
        assert get(guarded.base + "/", token="wrong")[0] == 401
        assert get(guarded.base + "/api/now", token="s3cret-token")[0] == 200
        assert get(guarded.base + "/", basic="s3cret-token")[0] == 200
    finally:
        guarded.stop()


def test_the_web_page_cannot_write(store: tuple[Path, str]) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from store.db import readonly_engine

    engine = readonly_engine(store[1])
    with pytest.raises(OperationalError, match="readonly|read-only|query_only|attempt to write"), engine.begin() as conn:
        conn.execute(text("DELETE FROM alert"))
    engine.dispose()


FOUND = browser.find()


@pytest.mark.skipif(not FOUND.ok, reason=f"no browser on this machine: {FOUND.missing}")
def test_a_real_browser_follows_a_fact_to_its_source_and_its_side_by_side_diff(web: Web) -> None:
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=FOUND.executable, args=list(browser.FLAGS))
        try:
            page = chromium.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
            page.goto(web.base + "/")
            assert page.locator("h1").inner_text().startswith("K visa now")
            page.screenshot(path=str(ARTIFACTS / "k-visa-now.png"), full_page=True)
            page.locator("tr", has_text="stay per entry").locator("a.source").first.click()  # a fact → its source page's history
            assert page.locator("h1").inner_text() == "Embassy in Exampleland"
            page.locator("a.side").last.click()
            page.screenshot(path=str(ARTIFACTS / "side-by-side.png"), full_page=True)
            assert page.locator(".old del").all_inner_texts() == ["90"] and page.locator(".new ins").all_inner_texts() == ["180"]
            hostile = api(web, "/api/pages/hostile")["snapshots"][0]["id"]
            page.goto(web.base + f"/snapshots/{hostile}")
            page.wait_for_load_state("load")
            assert page.locator("img").count() == 0 and "alert(1)" in page.locator(".text").inner_text()
            page.screenshot(path=str(ARTIFACTS / "hostile.png"), full_page=True)
        finally:
            chromium.close()
    # the archived hostile page's scripts and loads, refused by its sandbox and policy (the proof they never ran); nothing else
    refused = [p for p in problems if "Content Security Policy" in p or ("Blocked script execution" in p and "/raw" in p and "sandboxed" in p)]
    assert [p for p in problems if p not in refused] == [], problems
    assert any("Blocked script execution" in p for p in refused)
