"""Running for real: `kvwatch run` under cron, the `serve` daemon, and two runs at once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from crawler.watchlist import parse
from kvwatch.daemon import due_pages, jitter
from kvwatch.fixture_server import FixtureServer, Route
from store.models import Fetch, Snapshot
from tests.conftest import FIXTURES, PAGES, kvwatch, wait_for, write_watchlist
from tests.receivers import SmtpServer

HTML = {"Content-Type": "text/html; charset=utf-8"}


def _entry(server: FixtureServer, page_id: str, path: str, interval: int = 1) -> str:
    return f'[[page]]\nid = "{page_id}"\nurl = "{server.url(path)}"\ninterval = {interval}\n'


def _fetches(db: str) -> dict[str, int]:
    """Fetch attempts per page so far (read while the daemon writes: WAL lets readers in)."""
    import sqlite3

    path = db.removeprefix("sqlite:///")
    try:
        with sqlite3.connect(path, timeout=5) as conn:
            return dict(conn.execute("select page_id, count(*) from fetch group by page_id").fetchall())
    except sqlite3.OperationalError:  # not created yet
        return {}


def test_due_pages_respect_intervals_with_a_stable_jitter() -> None:
    wl = parse({"page": [{"id": f"embassy-{i}", "url": f"https://e{i}.example/", "interval": "1h"} for i in range(50)]})
    offsets = {jitter(p) for p in wl.pages}
    assert len(offsets) > 10 and all(timedelta(0) <= j < timedelta(minutes=6) for j in offsets)
    assert jitter(wl.pages[0]) == jitter(wl.pages[0])
    now = datetime(2026, 11, 25, 12, 0)
    last = {p.id: now - timedelta(minutes=59) for p in wl.pages}
    assert due_pages(last, wl, now) == ()
    assert len(due_pages({k: v - timedelta(minutes=7) for k, v in last.items()}, wl, now)) == 50
    assert due_pages({}, wl, now) == tuple(p.id for p in wl.pages)


def test_daemon_polls_reloads_never_overlaps_and_stops_cleanly(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    body = (PAGES / "embassy-my-visa.html").read_bytes()
    server.route("slow.html", Route(200, body, {"Content-Type": "text/html"}, behaviour="stall", stall_seconds=1.5))
    watchlist = write_watchlist(tmp_path, _entry(server, "slow", "slow.html") + _entry(server, "fast", "nia-k-visa-notice.html"))
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen([sys.executable, "-m", "kvwatch", "--db", sqlite_url, "-v", "serve", "--tick", "0.5"],
                              cwd=tmp_path, stderr=log, stdout=log)
    try:
        wait_for(lambda: _fetches(sqlite_url).get("slow", 0) >= 2 and _fetches(sqlite_url).get("fast", 0) >= 2, "two polls of each page")
        watchlist.write_text(watchlist.read_text() + _entry(server, "added", "gov-k-visa-qa.html"), encoding="utf-8")
        wait_for(lambda: _fetches(sqlite_url).get("added", 0) >= 1, "the page added to the watchlist to be polled")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        log.close()
    output = (tmp_path / "daemon.log").read_text()
    assert "watchlist reloaded: 3 pages" in output and "daemon stopped" in output, output[-2000:]
    assert server.max_inflight["/slow.html"] == 1, "the same page was crawled twice at once"
    engine = create_engine(sqlite_url)
    with Session(engine) as s:
        counts = dict(s.execute(select(Fetch.page_id, func.count()).group_by(Fetch.page_id)).all())
        assert counts.get("slow", 0) >= 2 and counts.get("fast", 0) >= 2 and counts.get("added", 0) >= 1, counts
        assert s.scalar(select(func.count()).select_from(Snapshot).where(Snapshot.analysed_at.is_(None))) == 0
    engine.dispose()


def test_two_concurrent_runs_one_runs_the_other_says_so(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    server.route("slow.html", Route(200, b"<html><body><main>K\xe5\xad\x97</main></body></html>", HTML, behaviour="stall", stall_seconds=3))
    write_watchlist(tmp_path, _entry(server, "slow", "slow.html"))
    first = subprocess.Popen([sys.executable, "-m", "kvwatch", "--db", sqlite_url, "run"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: server.requests_for("slow.html"), "the first run to be fetching")  # it holds the lock from before its fetch
    second = kvwatch("--db", sqlite_url, "run", cwd=tmp_path)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    assert second.returncode == 5 and second.stderr.startswith("kvwatch: another kvwatch run")
    assert out.startswith("run: 1 pages fetched")


def test_run_crawls_then_delivers_and_summarises_in_one_line(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    write_watchlist(tmp_path, _entry(server, "embassy-my-visa", "embassy-my-visa.html"))
    server.route("P020251009123456789012.pdf", Route(200, (PAGES / "embassy-visa-guide-pdf.pdf").read_bytes(), {"Content-Type": "application/pdf"}))
    (tmp_path / "subscribers.toml").write_text('[[subscriber]]\nid = "a"\nemail = "a@kvwatch.test"\n', encoding="utf-8")
    with SmtpServer() as smtp:
        result = kvwatch("--db", sqlite_url, "run", cwd=tmp_path, env=smtp.env)
    assert result.returncode == 0 and result.stderr == "", result.stderr  # quiet unless asked
    assert result.stdout.strip() == "run: 2 pages fetched, 0 unchanged (304), 0 failed, 2 changed; 2 alerts; 1 messages sent"
    assert smtp.inbox.messages[0]["Subject"].startswith("kvwatch: K visa today: stay per entry 180 days (")  # a baseline is a summary, not news
    verbose = kvwatch("--db", sqlite_url, "-v", "run", cwd=tmp_path)
    assert "page=embassy-my-visa" in verbose.stderr and "outcome=not_modified" in verbose.stderr and "duration_ms=" in verbose.stderr
    assert "(no subscribers" not in verbose.stdout


def test_doctor_says_exactly_what_is_wrong(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    write_watchlist(tmp_path, _entry(server, "fast", "nia-k-visa-notice.html"))
    (tmp_path / "subscribers.toml").write_text('[[subscriber]]\nid = "a"\nemail = "a@kvwatch.test"\n[[subscriber]]\nid = "s"\nslack = "KVWATCH_DOC_SLACK"\n', encoding="utf-8")
    assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    with SmtpServer() as smtp:
        good = kvwatch("--db", sqlite_url, "doctor", cwd=tmp_path, env={**smtp.env, "KVWATCH_DOC_SLACK": "https://hooks.slack.example/services/x"})
    assert good.returncode == 0, good.stdout
    assert [line.split()[1] for line in good.stdout.splitlines()] == ["files", "watchlist", "database", "migrations", "browser", "subscribers", "smtp", "slack"]
    assert "watchlist watchlist.toml (current directory)" in good.stdout
    (tmp_path / "watchlist.toml").write_text('[[page]]\nid = "x"\n', encoding="utf-8")
    bad = kvwatch("--db", sqlite_url, "doctor", cwd=tmp_path, env={"KVWATCH_SMTP_HOST": "127.0.0.1", "KVWATCH_SMTP_PORT": "9"})
    assert bad.returncode == 1
    fails = {line.split()[1]: line for line in bad.stdout.splitlines() if line.startswith("FAIL")}
    assert set(fails) == {"watchlist", "smtp", "slack"}
    assert "[[page]] id=x: key 'url': missing" in fails["watchlist"]
    assert "ConnectionRefusedError" in fails["smtp"] and "KVWATCH_DOC_SLACK is not set" in fails["slack"]
    no_db = kvwatch("--db", "sqlite:////nonexistent-dir/x.db", "doctor", cwd=tmp_path)
    assert "FAIL database" in no_db.stdout


def test_export_json_and_csv_with_filters(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    import csv
    import io
    import json

    write_watchlist(tmp_path, _entry(server, "embassy-us-visa", "embassy-us-visa.html") + _entry(server, "nia", "nia-k-visa-notice.html"))
    assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    snaps = json.loads(kvwatch("--db", sqlite_url, "export", "snapshots", "--page", "nia", cwd=tmp_path).stdout)
    assert [s["page_id"] for s in snaps] == ["nia"] and "K字签证持有人" in snaps[0]["text"]
    facts = list(csv.DictReader(io.StringIO(kvwatch("--db", sqlite_url, "export", "facts", "--format", "csv", cwd=tmp_path).stdout)))
    assert ("embassy-us-visa", "stay_duration", "P180D") in [(f["page_id"], f["field"], f["value"]) for f in facts]
    alerts = json.loads(kvwatch("--db", sqlite_url, "export", "alerts", cwd=tmp_path).stdout)
    assert {a["kind"] for a in alerts} == {"fact"} and all("links" in a for a in alerts)
    assert json.loads(kvwatch("--db", sqlite_url, "export", "alerts", "--since", "2999-01-01", cwd=tmp_path).stdout) == []


def test_prune_keeps_history_and_each_pages_newest_attempt(tmp_path: Path) -> None:
    from crawler.watchlist import PageSpec
    from store import pages
    from store.db import open_store, session_scope
    from store.snapshots import Attempt, Capture, record

    db = f"sqlite:///{tmp_path / 'p.db'}"
    engine = open_store(db)
    old = datetime(2020, 1, 1)
    with session_scope(engine) as s:
        pages.sync(s, [PageSpec(id="p", url="http://127.0.0.1/p")])
    with session_scope(engine) as s:
        record(s, Attempt("p", "u", "ok", old, etag='"e1"'), Capture(hash="a", text="A", raw=b"<p>A</p>"))
        for i in range(5):
            record(s, Attempt("p", "u", "error", old + timedelta(days=i + 1), reason="HTTP 502"))
        record(s, Attempt("p", "u", "ok", old + timedelta(days=10), etag='"e2"'), Capture(hash="b", text="B", raw=b"<p>B</p>"))
    engine.dispose()
    write_watchlist(tmp_path, '[[page]]\nid = "p"\nurl = "http://127.0.0.1/p"\n')
    out = kvwatch("--db", db, "prune", cwd=tmp_path)
    assert out.stdout.strip() == "pruned 6 fetch attempts and 1 raw bodies"
    assert kvwatch("--db", db, "show", "p", "--at", "2020-01-02", "--raw", cwd=tmp_path).stderr.strip().endswith("the raw body was pruned")
    assert kvwatch("--db", db, "show", "p", "--at", "2020-01-02", cwd=tmp_path).stdout.splitlines()[1] == "A"
    assert kvwatch("--db", db, "show", "p", "--raw", cwd=tmp_path).stdout == "<p>B</p>"
    assert len(kvwatch("--db", db, "history", "p", cwd=tmp_path).stdout.splitlines()) == 1 + 2  # header, two snapshots
    assert len(kvwatch("--db", db, "history", "p", "--attempts", cwd=tmp_path).stdout.splitlines()) == 1


def test_demo_runs_offline_and_shows_the_fact_change(tmp_path: Path) -> None:
    result = kvwatch("demo", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "cycle 2: only the visit counter changed\ncrawled 1 pages: 1 ok; 0 new snapshots; 0 alerts" in out
    assert "K visa — stay per entry: 90 days → 180 days" in out
    assert "每次停留不超过[-90-]{+180+}日" in out
    assert "K-VISA FACT CHANGES" in out and "关于K字签证延期办理的通知" in out
    assert "<before the change>" not in out and re.search(r"\$ kvwatch facts --field stay_duration --at 20\d\d-\d\d-\d\dT", out)
    assert "The evidence: “二、K字签证有效期为五年，可多次入境，每次停留不超过180日。”" in out
    digest = out[out.index("$ kvwatch digest"):out.index("Done. Everything above")]
    digest = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d [A-Z]+", "<time>", re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", digest))
    golden = FIXTURES / "digests" / "demo.txt"
    if os.environ.get("KVWATCH_UPDATE_GOLDENS"):
        golden.write_text(digest, encoding="utf-8")
    assert digest == golden.read_text(encoding="utf-8")  # the demo's digest, times and port masked
    assert re.search(r"See the change in your browser: kvwatch --db sqlite:///\S+/demo.db web\n  then open http://127\.0\.0\.1:8080/alerts/\d+\n$", out)


def test_serve_is_quiet_when_healthy_and_says_a_broken_edit_once(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    body = (PAGES / "nia-k-visa-notice.html").read_bytes()
    server.route("slow.html", Route(200, body, {"Content-Type": "text/html"}, behaviour="stall", stall_seconds=1.0))
    watchlist = write_watchlist(tmp_path, _entry(server, "slow", "slow.html"))
    log = (tmp_path / "serve.log").open("w")
    daemon = subprocess.Popen([sys.executable, "-m", "kvwatch", "--db", sqlite_url, "serve", "--tick", "0.2"], cwd=tmp_path, stderr=log, stdout=log)
    try:
        wait_for(lambda: _fetches(sqlite_url).get("slow", 0) >= 2, "two polls (ticks skipped while each crawl ran)")
        quiet = (tmp_path / "serve.log").read_text()
        watchlist.write_text("[[page]]\nid = 'broken'\n", encoding="utf-8")
        reloads = _fetches(sqlite_url).get("slow", 0)
        wait_for(lambda: _fetches(sqlite_url).get("slow", 0) >= reloads + 2, "two more polls with the previous watchlist")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=60)
        log.close()
    assert quiet == "", quiet  # nothing at the default level on a healthy daemon, skipped ticks included
    said = (tmp_path / "serve.log").read_text()
    assert said.count("watchlist not reloaded") == 1, said
