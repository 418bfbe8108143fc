"""`kvwatch web` render times on SQLite: the K-visa-now page and a page history of 1,000 snapshots
(with its alerts and facts), as a real server answers them over loopback (median of 20 requests).

    .venv/bin/python benchmarks/web.py
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler.analyse import analyse  # noqa: E402
from store.db import make_engine, prepare, session_scope, utcnow  # noqa: E402
from store.pages import PageRecord, ensure  # noqa: E402
from store.snapshots import Attempt, Capture, record  # noqa: E402

SNAPSHOTS = 1000


def fill(db: str) -> None:
    engine = prepare(make_engine(db))
    start = utcnow() - timedelta(days=SNAPSHOTS)
    with session_scope(engine) as session:
        ensure(session, PageRecord(id="embassy", url="http://127.0.0.1/embassy.htm", name="Embassy", tags={"tier": "mission"}))
        for i in range(SNAPSHOTS):
            stay = 90 if i % 2 else 180
            text = f"K字签证申请须知\n一、K字签证有效期为五年，可多次入境，每次停留不超过{stay}日。\n第{i}版。"
            at = start + timedelta(days=i)
            record(session, Attempt("embassy", "http://127.0.0.1/embassy.htm", "ok", at, 200),
                   Capture(hash=f"{i:064d}", text=text, title="K字签证申请须知", raw=text.encode()))
    analyse(engine)
    engine.dispose()


def median_ms(url: str, runs: int = 20) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as response:
            response.read()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="kvwatch-web-"))
    db = f"sqlite:///{folder / 'web.db'}"
    fill(db)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "kvwatch", "--db", db, "web", "--port", str(port)], cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/favicon.ico", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        print(f"SQLite, one page with {SNAPSHOTS} snapshots (and their fact alerts), median of 20 requests over loopback:")
        for label, path in (("K visa now  /", "/"), ("page history  /pages/embassy", "/pages/embassy"), ("alerts  /alerts", "/alerts"),
                            ("field timeline  /fields/stay_duration", "/fields/stay_duration"), ("Atom feed", "/feeds/alerts.atom"),
                            ("diff  /diff/1/1000?view=side", "/diff/1/1000?view=side")):
            print(f"  {label:44} {median_ms(base + path):7.1f} ms")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
