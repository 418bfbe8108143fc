"""Crawl-cycle benchmark: 500 pages of ~30 KB on loopback, spread over 100 hosts
(127.0.0.2 … 127.0.0.101, one fixture server each), 5 cycles in which only the noise changes.

    python benchmarks/cycle.py [--pages 500] [--hosts 100] [--cycles 5]
    python benchmarks/cycle.py --scale      # 500 pages on 100 hosts, then 3,000 on 300: cost per page

Prints per cycle: wall and CPU seconds (the crawl process and its children), peak RSS of the crawl
process, bytes downloaded, database bytes added, and CPU per page by stage (plan, fetch, normalize,
store, analysis, as `kvwatch crawl --json` reports them); then the first cycle and the median later
cycle. Every cycle runs the real `kvwatch crawl` in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, func, select

from kvwatch.fixture_server import FixtureServer, Route
from store.models import Fetch

PARAGRAPH = "外国青年科技人才申请K字签证，应当提交学历学位证明、护照和签证申请表。持证人入境后可从事教育、科技、文化等领域交流活动，每次停留期限以签证注明为准。"


def page(index: int, cycle: int) -> bytes:
    body = "".join(f"<p>第{n}条：{PARAGRAPH}编号{index}-{n}。</p>\n" for n in range(120))
    noise = f'<div class="today">今天是2026年11月{20 + cycle}日</div><div>浏览次数：{1000 + cycle * 37 + index}</div>'
    script = f"<script>var token='{cycle:04d}{index:06d}';</script>"
    html = f"<html><head><meta charset='utf-8'><title>页面{index}</title>{script}</head><body>{noise}<div id='UCAP-CONTENT'>{body}</div></body></html>"
    return html.encode("utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--scale", action="store_true", help="measure 500 pages on 100 hosts and 3,000 on 300, and compare per page")
    args = parser.parse_args()
    if not args.scale:
        bench(args.pages, args.hosts, args.cycles)
        return
    small, large = bench(500, 100, 3), bench(3000, 300, 3)
    print("\ncost per page, 500 → 3,000 pages (median later cycle; first cycle):")
    for label, index in (("later", 1), ("first", 0)):
        a, b = small[index], large[index]
        print(f"  {label:5}  CPU {a.cpu / 500 * 1000:6.2f} → {b.cpu / 3000 * 1000:6.2f} ms/page ({b.cpu / 3000 / (a.cpu / 500):.2f}x)   "
              f"wall {a.wall / 500 * 1000:6.2f} → {b.wall / 3000 * 1000:6.2f} ms/page ({b.wall / 3000 / (a.wall / 500):.2f}x)   "
              f"peak RSS {a.rss_mb:.0f} → {b.rss_mb:.0f} MB")


@dataclass(frozen=True)
class Cycle:
    wall: float
    cpu: float
    rss_mb: float
    downloaded_mb: float
    added_kb: float
    stages: dict[str, float]


def bench(pages: int, hosts: int, cycles: int) -> tuple[Cycle, Cycle]:
    """Run `cycles` cycles; return the first and the median later one."""
    work = Path(tempfile.mkdtemp(prefix="kvwatch-bench-"))
    servers = [FixtureServer(work, host=f"127.0.{(2 + h) // 256}.{(2 + h) % 256}").__enter__() for h in range(hosts)]
    try:
        urls = [servers[i % hosts].url(f"p{i}.html") for i in range(pages)]
        entries = "\n".join(f'[[page]]\nid = "p{i}"\nurl = "{u}"\n' for i, u in enumerate(urls))
        crawl = "[crawl]\nautothrottle = false\ndelay = 0\nconcurrency = 32\nconcurrency_per_domain = 2\nretries = 0\ntimeout = 10\n"
        (work / "watchlist.toml").write_text(crawl + entries, encoding="utf-8")
        db = work / "bench.db"
        print(f"{pages} pages of {len(page(0, 0)) / 1024:.1f} KB on {hosts} loopback hosts, {cycles} cycles "
              f"(concurrency 32, 2 per host, no throttle)")
        print(f"{'cycle':>5} {'wall s':>7} {'cpu s':>6} {'peak RSS MB':>11} {'downloaded MB':>13} {'db +KB':>8}  CPU ms/page by stage")
        rows = []
        for cycle in range(cycles):
            for i in range(pages):
                servers[i % hosts].route(f"p{i}.html", Route(200, page(i, cycle), {"Content-Type": "text/html"}))
            rows.append(run_cycle(cycle, db, work, pages))
        later = rows[1:] or rows
        def med(name: str) -> float:
            return statistics.median(getattr(r, name) for r in later)

        median = Cycle(med("wall"), med("cpu"), med("rss_mb"), med("downloaded_mb"), med("added_kb"),
                       {k: statistics.median(r.stages.get(k, 0.0) for r in later) for k in later[0].stages})
        print(f"{'median':>6} {median.wall:6.2f} {median.cpu:6.2f} {median.rss_mb:11.1f} {median.downloaded_mb:13.2f} "
              f"{median.added_kb:8.1f}  (cycles 2..n)")
        return rows[0], median
    finally:
        for server in servers:
            server.close()


def run_cycle(cycle: int, db: Path, work: Path, pages: int) -> Cycle:
    size_before = _db_bytes(db)
    since = time.time()
    started = time.perf_counter()
    with tempfile.TemporaryFile() as stdout:  # wait4: this cycle's own CPU and peak RSS, not the maximum over earlier cycles
        proc = subprocess.Popen([sys.executable, "-m", "kvwatch", "--db", f"sqlite:///{db}", "crawl", "--json"], cwd=work,
                                stdout=stdout, stderr=subprocess.DEVNULL, env={**os.environ, "http_proxy": "", "https_proxy": ""})
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"kvwatch crawl failed with exit code {proc.returncode}")
        stdout.seek(0)
        output = stdout.read().decode()
    wall = time.perf_counter() - started
    cpu = usage.ru_utime + usage.ru_stime
    rss_mb = usage.ru_maxrss / 1024
    downloaded = _downloaded(db, since) / 1e6
    added_kb = (_db_bytes(db) - size_before) / 1024
    summary = json.loads(output)
    stages = summary.get("cpu_seconds", {})
    per_page = ", ".join(f"{k} {v / pages * 1000:.2f}" for k, v in stages.items())
    print(f"{cycle + 1:>5} {wall:7.2f} {cpu:6.2f} {rss_mb:11.1f} {downloaded:13.2f} {added_kb:8.1f}  {per_page}")
    return Cycle(wall, cpu, rss_mb, downloaded, added_kb, stages)


def _db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def _downloaded(db: Path, since: float) -> int:
    from datetime import UTC, datetime

    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        moment = datetime.fromtimestamp(since - 1, UTC).replace(tzinfo=None)
        total = conn.execute(select(func.coalesce(func.sum(Fetch.bytes), 0)).where(Fetch.started_at >= moment)).scalar()
    engine.dispose()
    return int(total or 0)


if __name__ == "__main__":
    main()
