"""`kvwatch demo`: kvwatch end to end with no network, in well under a minute.

Serves a small bundled embassy page on 127.0.0.1, runs a first crawl cycle (the baseline), changes
the K visa's stay per entry from 90 to 180 days (and the visit counter, which must not matter),
runs a second cycle, then shows the resulting alerts, the diff and the digest a subscriber would
get. Everything lives in a throwaway folder and SQLite file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from kvwatch.fixture_server import FixtureServer, Route

SITE = Path(__file__).with_name("demo_site")
NOTICE = '<p>相关通知：<a href="./t20261125_k-visa-extension.htm">关于K字签证延期办理的通知</a></p>'


def page(stay: int, counter: int, notice: str = "") -> bytes:
    html = (SITE / "embassy-k-visa.html").read_text(encoding="utf-8")
    return html.replace("{{stay}}", str(stay)).replace("{{counter}}", str(counter)).replace("{{notice}}", notice).encode()


def run_demo(echo: Callable[[str], None]) -> None:
    folder = Path(tempfile.mkdtemp(prefix="kvwatch-demo-"))
    db = f"sqlite:///{folder / 'demo.db'}"
    with FixtureServer(SITE) as server:
        url = server.url("embassy-k-visa.htm")
        (folder / "watchlist.toml").write_text(
            "[crawl]\nautothrottle = false\ndelay = 0\nretries = 0\ntimeout = 5\n\n"
            f'[[page]]\nid = "demo-embassy-k-visa"\nname = "Embassy in Exampleland"\nurl = "{url}"\ntags = {{ tier = "mission" }}\n', encoding="utf-8")
        (folder / "subscribers.toml").write_text('[[subscriber]]\nid = "demo"\nname = "Demo subscriber"\nemail = "demo@kvwatch.test"\n'
                                                 'timezone = "Asia/Shanghai"\n', encoding="utf-8")
        kv = lambda *args: _kvwatch(folder, db, *args)  # noqa: E731
        echo(f"kvwatch demo — a throwaway database in {folder}, a bundled embassy page at {url}\n")
        server.route("embassy-k-visa.htm", Route(200, page(90, 1001), {"Content-Type": "text/html; charset=utf-8"}))
        echo("$ kvwatch crawl            # cycle 1: the baseline (stay per entry: 90 days)\n" + kv("crawl"))
        server.route("embassy-k-visa.htm", Route(200, page(90, 1077), {"Content-Type": "text/html; charset=utf-8"}))
        echo("$ kvwatch crawl            # cycle 2: only the visit counter changed\n" + kv("crawl"))
        server.route("embassy-k-visa.htm", Route(200, page(180, 1153, NOTICE), {"Content-Type": "text/html; charset=utf-8"}))
        server.route("t20261125_k-visa-extension.htm", Route(200, _notice(), {"Content-Type": "text/html; charset=utf-8"}))
        echo("$ kvwatch crawl            # cycle 3: the embassy changes the stay to 180 days and links a notice\n" + kv("crawl"))
        echo("$ kvwatch alerts\n" + kv("alerts"))
        echo("$ kvwatch diff demo-embassy-k-visa\n" + kv("diff", "demo-embassy-k-visa"))
        before = _before(folder)
        echo(f"$ kvwatch facts --field stay_duration --at {before}     # what the sources said before the change\n"
             + kv("facts", "--field", "stay_duration", "--at", before))
        change = [a for a in json.loads(kv("alerts", "--json", "--kind", "fact")) if any(f["old"] for f in a["facts"])][-1]
        evidence = kv("export", "alerts", "--since", change["detected_at"])
        said = next((row["diff"] for row in json.loads(evidence) if row["id"] == change["id"]), "")
        echo(f"The change: {change['summary']}\nThe evidence: “{said}”\n")
        echo("$ kvwatch digest            # what a subscriber receives\n" + kv("digest"))
    echo(f"Done. Everything above is in {folder}; delete it when you like.")
    echo(f"See the change in your browser: kvwatch --db {db} web\n  then open http://127.0.0.1:8080/alerts/{change['id']}")


def _notice() -> bytes:
    return ("<html><head><meta charset='utf-8'><title>关于K字签证延期办理的通知</title></head><body>"
            "<div id='News_Body_Title'>关于K字签证延期办理的通知</div><div id='News_Body_Txt_A'>"
            "<p>K字签证持有人需要延长停留期限的，应当在停留期限届满7日前向停留地公安机关出入境管理机构申请延期。</p>"
            "</div></body></html>").encode()


def _kvwatch(folder: Path, db: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "kvwatch", "--db", db, *args], cwd=folder, capture_output=True, text=True, timeout=120)
    return (result.stdout + result.stderr).rstrip() + "\n"


def _before(folder: Path) -> str:
    """An ISO time between the first snapshot and the change."""
    import sqlite3

    with sqlite3.connect(folder / "demo.db") as conn:
        first = conn.execute("select max(first_seen) from snapshot where id = (select min(id) from snapshot)").fetchone()[0]
    from datetime import datetime

    return (datetime.fromisoformat(first) + timedelta(seconds=1)).isoformat(timespec="seconds")
