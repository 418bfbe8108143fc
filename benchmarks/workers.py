"""Fetch-worker benchmark: 3,000 pages of ~30 KB on 300 loopback hosts (127.0.1.x …), fetched by 1, 2
and 4 `kvwatch worker` processes through RabbitMQ into PostgreSQL, against one machine alone.

    python benchmarks/workers.py [--pages 3000] [--hosts 300] [--workers 1,2,4] [--batch 0]

For each setting, on a fresh database: a first cycle (every page new) and a later cycle (only noise
changed). Prints per cycle: wall seconds; kvwatch CPU seconds (the scheduler, the workers and their
batch children), also split into the scheduler's (dispatch and analysis) and the workers'; and the
machine's busy CPU seconds (everything: PostgreSQL, RabbitMQ and the
fixture servers too). Needs PostgreSQL on 127.0.0.1:5432 and RabbitMQ on 127.0.0.1:5672.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from cycle import page  # noqa: E402 - the same pages as the single-machine benchmark

from kvwatch.fixture_server import FixtureServer, Route  # noqa: E402

PG = os.environ.get("KVWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
BROKER = os.environ.get("KVWATCH_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds of a process and of its children it has waited for (a worker's batch children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / TICK


def machine_busy() -> float:
    cpu = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(cpu) - cpu[3] - cpu[4]) / TICK  # all but idle and iowait


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=3000)
    parser.add_argument("--hosts", type=int, default=300)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--batch", type=int, default=0, help="pages per job (0: kvwatch's default, about two jobs per worker)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kvwatch-workers-"))
    print(f"workers' logs in {work}")
    servers = [FixtureServer(work, host=f"127.0.{1 + h // 250}.{1 + h % 250}").__enter__() for h in range(args.hosts)]
    try:
        urls = [servers[i % args.hosts].url(f"p{i}.html") for i in range(args.pages)]
        crawl = "[crawl]\nautothrottle = false\ndelay = 0\nconcurrency = 32\nconcurrency_per_domain = 2\nretries = 0\ntimeout = 20\n"
        (work / "watchlist.toml").write_text(crawl + "\n".join(f'[[page]]\nid = "p{i}"\nurl = "{u}"\n' for i, u in enumerate(urls)), encoding="utf-8")
        print(f"{args.pages} pages of {len(page(0, 0)) / 1024:.1f} KB on {args.hosts} loopback hosts; 2 per host (global), batches of {args.batch or 'about two per worker'}; "
              f"{os.cpu_count()} CPUs")
        print(f"{'setting':>16} {'cycle':>6} {'wall s':>7} {'kvwatch CPU s':>13} {'scheduler':>9} {'workers':>8} {'machine CPU s':>13}")
        for setting in ["alone", *args.workers.split(",")]:
            bench(setting, work, servers, args.pages, args.batch)
    finally:
        for server in servers:
            server.close()


def bench(setting: str, work: Path, servers: list[FixtureServer], pages: int, batch: int) -> None:
    name = f"kvwatch_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    env = {**os.environ, "KVWATCH_DB": PG.rsplit("/", 1)[0] + f"/{name}", "KVWATCH_BROKER": BROKER,
           "KVWATCH_QUEUE_PREFIX": f"kvwbench{uuid.uuid4().hex[:6]}", "http_proxy": "", "https_proxy": ""}
    workers: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run([sys.executable, "-m", "kvwatch", "doctor"], cwd=work, env=env, capture_output=True, check=False)  # migrates
        if setting != "alone":
            workers = [subprocess.Popen([sys.executable, "-m", "kvwatch", "worker", "--region", f"w{n}"], cwd=work, env=env,
                                        stdout=subprocess.DEVNULL, stderr=(work / f"worker-{setting}-{n}.log").open("wb")) for n in range(int(setting))]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # bounded: until every worker answers
                out = subprocess.run([sys.executable, "-m", "kvwatch", "workers", "--json", "--timeout", "1"], cwd=work, env=env, capture_output=True, text=True)
                if out.returncode == 0 and len(json.loads(out.stdout)) == len(workers):
                    break
        label = "one machine" if setting == "alone" else f"{setting} worker{'s' if setting != '1' else ''}"
        for cycle, what in ((0, "first"), (1, "later")):
            for i in range(pages):
                servers[i % len(servers)].route(f"p{i}.html", Route(200, page(i, cycle), {"Content-Type": "text/html"}))
            command = [sys.executable, "-m", "kvwatch", "crawl", "--json", *([] if setting == "alone" else ["--workers", "--batch", str(batch)])]
            before = sum(process_cpu(w.pid) for w in workers)
            busy, started = machine_busy(), time.perf_counter()
            proc = subprocess.Popen(command, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - started
            if os.waitstatus_to_exitcode(status) != 0:
                raise SystemExit(f"kvwatch crawl ({label}) failed with exit code {os.waitstatus_to_exitcode(status)}")
            time.sleep(0.5)  # let the workers' /proc figures settle after their last job
            scheduler = usage.ru_utime + usage.ru_stime
            fetchers = sum(process_cpu(w.pid) for w in workers) - before
            print(f"{label:>16} {what:>6} {wall:7.1f} {scheduler + fetchers:13.1f} {scheduler:9.1f} {fetchers:8.1f} {machine_busy() - busy:13.1f}", flush=True)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(60)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
