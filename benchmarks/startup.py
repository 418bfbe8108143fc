"""Start-up cost of whole `kvwatch` processes (median of 7 runs each): `kvwatch --help`,
`kvwatch alerts --json` on an empty database, and `kvwatch crawl` of one page answering 304.

    .venv/bin/python benchmarks/startup.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvwatch.fixture_server import FixtureServer  # noqa: E402

KVWATCH = [sys.executable, "-m", "kvwatch"]


def timed(args: list[str], cwd: Path, runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([*KVWATCH, *args], cwd=cwd, capture_output=True, check=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "0"})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="kvwatch-startup-"))
    db = f"sqlite:///{folder / 'k.db'}"
    with FixtureServer(ROOT / "fixtures" / "pages") as server:
        (folder / "watchlist.toml").write_text(
            "[crawl]\nautothrottle = false\ndelay = 0\nretries = 0\n\n"
            f'[[page]]\nid = "nia"\nurl = "{server.url("nia-news.html")}"\nkind = "listing"\nrobots = false\n', encoding="utf-8")
        subprocess.run([*KVWATCH, "--db", db, "crawl"], cwd=folder, capture_output=True, check=True)  # the baseline: later crawls get 304
        empty = f"sqlite:///{folder / 'empty.db'}"
        subprocess.run([*KVWATCH, "--db", empty, "alerts"], cwd=folder, capture_output=True, check=True)  # created and migrated once
        figures = {
            "kvwatch --help": timed(["--help"], folder),
            "kvwatch alerts --json (empty database)": timed(["--db", empty, "alerts", "--json"], folder),
            "kvwatch crawl (one page, 304)": timed(["--db", db, "crawl", "--only", "nia"], folder, runs=5),
        }
    for label, seconds in figures.items():
        print(f"{label:42} {seconds:6.3f} s")


if __name__ == "__main__":
    main()
