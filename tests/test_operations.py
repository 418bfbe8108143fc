"""Running for real: `kvwatch run` under cron, the `serve` daemon, and two runs at once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from crawler.watchlist import parse
from kvwatch.daemon import due_pages, jitter
from kvwatch.fixture_server import FixtureServer, Route
from store.models import Fetch, Snapshot
from tests.conftest import PAGES, kvwatch, write_watchlist
from tests.receivers import SmtpServer

HTML = {"Content-Type": "text/html; charset=utf-8"}


def _entry(server: FixtureServer, page_id: str, path: str, interval: int = 1) -> str:
    return f'[[page]]\nid = "{page_id}"\nurl = "{server.url(path)}"\ninterval = {interval}\n'


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
        time.sleep(4)
        watchlist.write_text(watchlist.read_text() + _entry(server, "added", "gov-k-visa-qa.html"), encoding="utf-8")
        time.sleep(5)
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
    time.sleep(1.5)
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
    assert "K visa — stay per entry: 180 days (new" in smtp.inbox.messages[0]["Subject"]
    verbose = kvwatch("--db", sqlite_url, "-v", "run", cwd=tmp_path)
    assert "page=embassy-my-visa" in verbose.stderr and "outcome=not_modified" in verbose.stderr and "duration_ms=" in verbose.stderr
    assert "(no subscribers" not in verbose.stdout
