"""Cost of a browser-fetched page against a plain fetch of the same page: whole `kvwatch crawl`
processes over N copies of the NIA notice on a loopback server, once `render = "plain"` and once
`render = "browser"` (behind the 412 challenge, as the real NIA), each at 1 and at N pages, so the
per-page figure is the marginal cost and the browser's start-up is printed apart.

CPU is the crawl's and all its descendants' (Playwright's driver, every Chromium process), read from
`wait4`; peak memory is the largest sum over the process tree of each process's PSS (its resident
memory, shared pages divided among their sharers, so Chromium's many processes are not counted
several times over), sampled every 20 ms.

    .venv/bin/python benchmarks/browser.py [N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from crawler import browser  # noqa: E402
from kvwatch.fixture_server import FixtureServer, Route  # noqa: E402

NOTICE = (ROOT / "fixtures" / "pages" / "nia-k-visa-notice.html").read_bytes()
HTML = {"Content-Type": "text/html; charset=utf-8"}
CRAWL = "[crawl]\nautothrottle = false\ndelay = 0\nretries = 0\ntimeout = 60\nconcurrency_per_domain = 4\n"


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    peak_mib: float


def tree_pss(root: int) -> int:
    """Bytes of PSS summed over `root` and its descendants."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat[1])
    members, frontier = {root}, {root}
    for _ in range(64):  # bounded depth
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - members
        if not frontier:
            break
        members |= frontier
    return sum(_pss(pid) for pid in members)


def _pss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def crawl(folder: Path, pages: str) -> Run:
    (folder / "watchlist.toml").write_text(CRAWL + pages, encoding="utf-8")
    db = folder / "k.db"
    db.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "kvwatch", "--db", f"sqlite:///{db}", "crawl"], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, tree_pss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) not in (0, 3):
        raise SystemExit(f"crawl failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return Run(wall, usage.ru_utime + usage.ru_stime, peak / 2**20)


def main() -> None:
    found = browser.find()
    if not found.ok:
        raise SystemExit(found.missing)
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    folder = Path(tempfile.mkdtemp(prefix="kvwatch-browser-"))
    with FixtureServer(folder) as server:
        for i in range(count):
            server.route(f"plain/{i}.html", Route(200, NOTICE, HTML))
            server.route(f"guarded/{i}.html", Route(200, NOTICE, HTML, behaviour="challenge"))

        def pages(kind: str, n: int) -> str:
            render = "plain" if kind == "plain" else "browser"
            return "".join(f'[[page]]\nid = "{kind}-{i}"\nurl = "{server.url(f"{kind}/{i}.html")}"\nrender = "{render}"\nrobots = false\n'
                           for i in range(n))

        runs = {(kind, n): crawl(folder, pages(kind, n)) for kind in ("plain", "guarded") for n in (1, count)}
    print(f"{count} copies of a {len(NOTICE) / 1024:.1f} KB notice; {browser.version(str(found.executable))}")
    print(f"{'':28} {'wall s':>8} {'CPU s':>8} {'peak PSS MiB':>13}")
    for (kind, n), run in runs.items():
        label = f"{'plain' if kind == 'plain' else 'browser (412 challenge)'} x{n}"
        print(f"{label:28} {run.wall:8.2f} {run.cpu:8.2f} {run.peak_mib:13.0f}")
    print("per page (marginal, from 1 to N pages):")
    for kind in ("plain", "guarded"):
        one, many = runs[(kind, 1)], runs[(kind, count)]
        label = "plain" if kind == "plain" else "browser"
        print(f"  {label:10} wall {(many.wall - one.wall) / (count - 1) * 1000:7.0f} ms   CPU {(many.cpu - one.cpu) / (count - 1) * 1000:7.0f} ms")
    extra = runs[("guarded", 1)]
    base = runs[("plain", 1)]
    print(f"browser start-up (one page, over plain): wall {extra.wall - base.wall:.2f} s, CPU {extra.cpu - base.cpu:.2f} s, "
          f"memory +{extra.peak_mib - base.peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
