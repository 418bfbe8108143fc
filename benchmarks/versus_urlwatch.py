"""kvwatch against urlwatch, side by side in one run, on the same loopback pages: N pages of ~33 KB
(`benchmarks/cycle.py`'s page) over H hosts, only the chrome noise changing between cycles.
urlwatch is tuned as its users would: the CSS main body (`#UCAP-CONTENT`) then html2text, its
default thread pool. Each cycle of each tool runs as a whole process; the cycles alternate
(urlwatch, kvwatch, urlwatch, …) so both see the same machine.

urlwatch is not a kvwatch dependency: install it anywhere and name its executable.

    python3 -m venv /tmp/uw && /tmp/uw/bin/pip install urlwatch html2text cssselect lxml
    .venv/bin/python benchmarks/versus_urlwatch.py --urlwatch /tmp/uw/bin/urlwatch [--pages 500] [--hosts 100] [--cycles 4]

Prints, for each tool, the first cycle and the median later cycle: wall, CPU (the process and its
children, from wait4), peak RSS (the process's own maximum resident set), and the ratios the
issue asks about; for kvwatch also its CPU by stage (from `kvwatch crawl --json`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cycle import page  # noqa: E402

from kvwatch.fixture_server import FixtureServer, Route  # noqa: E402


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    rss_mib: float
    stages: dict[str, float] = field(default_factory=dict)


def measure(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[Run, str]:
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: tell Popen
        out.seek(0)
        err.seek(0)
        if proc.returncode not in (0, 3):
            raise SystemExit(f"{command[0]} failed ({proc.returncode}): {err.read().decode()[-1500:]}")
        return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024), out.read().decode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urlwatch", default=shutil.which("urlwatch") or "", help="the urlwatch executable")
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--cycles", type=int, default=4)
    args = parser.parse_args()
    if not args.urlwatch or not Path(args.urlwatch).exists():
        raise SystemExit("no urlwatch: give --urlwatch PATH (see this file's docstring for how to install it)")
    work = Path(tempfile.mkdtemp(prefix="kvwatch-vs-urlwatch-"))
    env = {**os.environ, "http_proxy": "", "https_proxy": "", "HOME": str(work)}
    servers = [FixtureServer(work, host=f"127.0.0.{2 + h}").__enter__() for h in range(args.hosts)]
    try:
        urls = [servers[i % args.hosts].url(f"p{i}.html") for i in range(args.pages)]
        (work / "watchlist.toml").write_text(
            "[crawl]\nautothrottle = false\ndelay = 0\nconcurrency = 32\nconcurrency_per_domain = 2\nretries = 0\ntimeout = 10\n\n"
            + "\n".join(f'[[page]]\nid = "p{i}"\nurl = "{u}"\nrender = "plain"\n' for i, u in enumerate(urls)), encoding="utf-8")
        (work / "urls.yaml").write_text("\n---\n".join(
            f"name: p{i}\nurl: {u}\nfilter:\n  - css: '#UCAP-CONTENT'\n  - html2text" for i, u in enumerate(urls)) + "\n", encoding="utf-8")
        urlwatch = [args.urlwatch, "--urls", str(work / "urls.yaml"), "--config", str(work / "urlwatch.yaml"),
                    "--hooks", str(work / "hooks.py"), "--cache", str(work / "cache.db")]
        kvwatch = [sys.executable, "-m", "kvwatch", "--db", f"sqlite:///{work / 'kv.db'}", "crawl", "--json"]
        (work / "urls.txt").write_text("\n".join(urls), encoding="utf-8")
        bare = [sys.executable, str(ROOT / "benchmarks" / "bare_scrapy.py"), str(work / "urls.txt")]
        subprocess.run([*urlwatch, "--list"], cwd=work, env=env, capture_output=True, check=False)  # writes its default config
        runs: dict[str, list[Run]] = {"urlwatch": [], "kvwatch": [], "scrapy": []}
        for cycle in range(args.cycles):
            for i in range(args.pages):
                servers[i % args.hosts].route(f"p{i}.html", Route(200, page(i, cycle), {"Content-Type": "text/html; charset=utf-8"}))
            runs["urlwatch"].append(measure(urlwatch, work, env)[0])
            run, out = measure(kvwatch, work, env)
            runs["kvwatch"].append(Run(run.wall, run.cpu, run.rss_mib, json.loads(out).get("cpu_seconds", {})))
            runs["scrapy"].append(measure(bare, work, env)[0])
    finally:
        for server in servers:
            server.close()
    print(f"{args.pages} pages of {len(page(0, 0)) / 1024:.1f} KB on {args.hosts} loopback hosts, {args.cycles} cycles, only noise changing")
    print("(scrapy: a bare spider with kvwatch's Scrapy settings that only downloads: the floor under kvwatch's cycle)")
    print(f"{'':10} {'first wall':>10} {'first CPU':>10} {'later wall':>10} {'later CPU':>10} {'peak RSS MiB':>13}")
    summary = {}
    for tool, rs in runs.items():
        later = rs[1:] or rs
        summary[tool] = (rs[0].wall, rs[0].cpu, statistics.median(r.wall for r in later), statistics.median(r.cpu for r in later), max(r.rss_mib for r in rs))
        print(f"{tool:10} " + " ".join(f"{v:10.2f}" for v in summary[tool][:4]) + f" {summary[tool][4]:13.0f}")
    uw, kv = summary["urlwatch"], summary["kvwatch"]
    print(f"kvwatch / urlwatch: first wall {kv[0] / uw[0]:.2f}x (goal <= 3), later CPU {kv[3] / uw[3]:.2f}x (goal <= 1), "
          f"later wall {kv[2] / uw[2]:.2f}x (goal <= 2), peak RSS {kv[4]:.0f} MiB (goal < 120)")
    for label, run in (("first", runs["kvwatch"][0]), ("later", runs["kvwatch"][-1])):
        print(f"kvwatch {label} cycle CPU by stage: " + ", ".join(f"{k} {v:.2f} s" for k, v in run.stages.items()))


if __name__ == "__main__":
    main()
