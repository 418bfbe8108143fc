"""Fetch workers in several regions (crawler.dispatch, crawler.worker), with the real services on
loopback: PostgreSQL as the shared store, RabbitMQ as the broker, real `kvwatch worker` processes
bound to their own 127.0.0.x, and the fixture server telling "regions" apart by source address.
Skips with the reason when PostgreSQL or the broker does not answer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from kvwatch.fixture_server import FixtureServer, Route
from store.db import prepare
from store.models import Alert, Fetch, Snapshot
from tests.conftest import PAGES, PATIENT_CRAWL, kvwatch, wait_for, write_watchlist
from tests.test_browser import _alive, _descendants

BROKER = os.environ.get("KVWATCH_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//")
ADDRESS = {"cn": "127.0.0.2", "eu": "127.0.0.3", "sg": "127.0.0.4"}  # where each region's worker sends from
# Pages as (id, the regions whose address the site answers, the page's `regions`, its tags): one line each.
GEO_PAGES = [
    ("gov-cn-only", ("cn",), ("cn", "eu"), {}),
    ("mission-eu-only", ("eu",), ("cn", "eu", "sg"), {}),
    ("mission-sg-only", ("sg",), ("cn", "eu", "sg"), {}),
    ("nia-by-tag", ("cn",), None, {"agency": "nia"}),          # regions from the [regions] rule: sg, then cn
    ("blocked-everywhere", (), ("eu", "sg"), {}),
    ("open-anywhere", ("cn", "eu", "sg"), (), {}),
    ("default-regions", ("sg",), None, {}),                    # regions from [defaults]: eu, then sg
]
REGION_RULES = '[regions]\n"agency=nia" = ["sg", "cn"]\n\n[defaults]\nregions = ["eu", "sg"]\n'


def body(page_id: str, version: int = 1) -> bytes:
    return (f"<html><head><meta charset='utf-8'><title>{page_id}</title></head><body><div id='UCAP-CONTENT'>"
            f"<p>外国青年科技人才可申请K字签证，停留期限最长{90 * version}日。</p><p>本页编号{page_id}，用于测试分布式抓取。</p>"
            "</div></body></html>").encode()


def expected_attempts(allowed: tuple[str, ...], regions: tuple[str, ...]) -> list[tuple[str, str]]:
    """What one cycle must record for a page: blocked from each preferred region that cannot read it,
    then ok from the first that can (or blocked from every one)."""
    out = []
    for region in regions:
        if region in allowed:
            return [*out, ("ok", region)]
        out.append(("blocked", region))
    return out


@dataclass
class Cluster:
    env: dict[str, str]
    cwd: Path
    logs: Path
    workers: dict[str, subprocess.Popen[bytes]]

    def start(self, region: str, address: str | None = None, concurrency: int = 1) -> subprocess.Popen[bytes]:
        log = (self.logs / f"worker-{region}.log").open("ab")
        args = ["--region", region, "--concurrency", str(concurrency), *(["--source-address", address] if address else [])]
        process = subprocess.Popen([sys.executable, "-m", "kvwatch", "-v", "worker", *args], cwd=self.cwd, env=self.env, stdout=log, stderr=log)
        self.workers[region] = process
        return process

    def wait_live(self, regions: set[str]) -> None:
        def live() -> bool:
            out = kvwatch("workers", "--json", "--timeout", "1", cwd=self.cwd, env=self.env)
            return out.returncode == 0 and {r for w in json.loads(out.stdout) for r in w["regions"]} >= regions
        wait_for(live, f"workers of {sorted(regions)} to answer", timeout=60, every=0.5)

    def run(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return kvwatch("run", "--workers", "--json", *args, cwd=self.cwd, env=self.env, timeout=timeout)

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.logs.glob("worker-*.log"))


@pytest.fixture(scope="session")
def broker() -> str:
    from crawler.dispatch import check_broker

    try:
        check_broker(BROKER, timeout=3)
    except Exception as exc:  # noqa: BLE001 - any failure means "skip", with the reason
        pytest.skip(str(exc))
    return BROKER


@pytest.fixture
def cluster(pg_url: str, broker: str, tmp_path: Path) -> Iterator[Cluster]:
    prefix = f"kvwtest{uuid.uuid4().hex[:8]}"  # queues and control exchange of this test only
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy")}
    env.update({"KVWATCH_DB": pg_url, "KVWATCH_BROKER": broker, "KVWATCH_QUEUE_PREFIX": prefix})
    (tmp_path / "logs").mkdir()
    made = Cluster(env, tmp_path, tmp_path / "logs", {})
    try:
        yield made
    finally:
        for process in made.workers.values():
            if process.poll() is None:
                process.kill()
                process.wait(10)
        from kombu import Connection

        with Connection(broker) as conn:
            for region in ("any", *ADDRESS, "a", "b", "c"):
                conn.default_channel.queue_delete(f"{prefix}.{region}")


def cycle_attempts(pg_url: str) -> dict[str, list[tuple[str, str | None]]]:
    """Per page, its attempts in the latest distributed cycle, oldest first."""
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        latest = conn.scalar(select(Fetch.cycle).where(Fetch.cycle.is_not(None)).order_by(Fetch.id.desc()).limit(1))
        out: dict[str, list[tuple[str, str | None]]] = {}
        for page_id, outcome, region in conn.execute(select(Fetch.page_id, Fetch.outcome, Fetch.region).where(Fetch.cycle == latest).order_by(Fetch.id)):
            out.setdefault(page_id, []).append((outcome, region))
    engine.dispose()
    return out


def test_every_page_is_fetched_from_a_region_that_can_read_it(cluster: Cluster, pg_url: str) -> None:
    with FixtureServer(PAGES) as server:
        entries = []
        for page_id, allowed, regions, tags in GEO_PAGES:
            server.route(f"{page_id}.html", Route(200, body(page_id), {"Content-Type": "text/html; charset=utf-8"},
                                                  allow_from=tuple(ADDRESS[r] for r in allowed) or ("127.0.0.99",)))
            tag_line = "".join(f'\ntags = {{ {k} = "{v}" }}' for k, v in tags.items())
            region_line = f"\nregions = {list(regions)!r}".replace("'", '"') if regions is not None else ""
            entries.append(f'[[page]]\nid = "{page_id}"\nurl = "{server.url(page_id + ".html")}"{tag_line}{region_line}\n')
        write_watchlist(cluster.cwd, REGION_RULES + "\n".join(entries), PATIENT_CRAWL)
        for region, address in ADDRESS.items():
            cluster.start(region, address)
        cluster.wait_live(set(ADDRESS))
        done = cluster.run("--batch", "2")
        assert done.returncode == 0, done.stderr + cluster.log()

        attempts = cycle_attempts(pg_url)
        resolved = {"nia-by-tag": ("sg", "cn"), "default-regions": ("eu", "sg")}
        for page_id, allowed, regions, _ in GEO_PAGES:
            want = expected_attempts(allowed, resolved.get(page_id, regions or ()))
            got = attempts[page_id]
            if want:
                assert got == want, (page_id, got, cluster.log())
            else:  # no regions named: any worker, once, and it can read it
                assert len(got) == 1 and got[0][0] == "ok", (page_id, got)
            for _, region in got:  # the site saw each attempt from that region's own address
                assert any(s.path == f"/{page_id}.html" and s.client == ADDRESS[str(region)] for s in server.seen), (page_id, region)

    pages = kvwatch("pages", cwd=cluster.cwd, env=cluster.env)
    line = next(x for x in pages.stdout.splitlines() if x.startswith("mission-sg-only"))
    assert "(from sg)" in line, pages.stdout
    line = next(x for x in pages.stdout.splitlines() if x.startswith("blocked-everywhere"))
    assert "blocked" in line and "(from sg)" in line, pages.stdout
    history = kvwatch("history", "mission-eu-only", "--attempts", cwd=cluster.cwd, env=cluster.env)
    assert [line.split()[1] + " " + line.split()[6] for line in history.stdout.splitlines()] == ["blocked cn", "ok eu"], history.stdout


def test_a_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(cluster: Cluster, pg_url: str, tmp_path: Path) -> None:
    count = 36  # 12 jobs of 3 for 3 workers: the victim is sure to be mid-way through a later job
    with FixtureServer(PAGES) as server:
        for n in range(count):
            server.route(f"k{n}.html", Route(200, body(f"k{n}"), {"Content-Type": "text/html; charset=utf-8"}, behaviour="stall", stall_seconds=0.6))
        pages = "\n".join(f'[[page]]\nid = "k{n:02d}"\nurl = "{server.url(f"k{n}.html")}"\n' for n in range(count))
        write_watchlist(cluster.cwd, pages, PATIENT_CRAWL.replace("concurrency_per_domain = 8", "concurrency_per_domain = 3"))
        victim = cluster.start("a", ADDRESS["cn"])
        cluster.start("b", ADDRESS["eu"])
        cluster.start("c", ADDRESS["sg"])
        cluster.wait_live({"a", "b", "c"})
        run = subprocess.Popen([sys.executable, "-m", "kvwatch", "run", "--workers", "--json", "--batch", "3"], cwd=cluster.cwd, env=cluster.env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        engine = prepare(create_engine(pg_url))

        def victim_mid_batch() -> set[int]:  # it stored pages, and the site is answering it right now
            with engine.connect() as conn:
                stored = conn.scalar(select(Fetch.id).where(Fetch.region == "a").limit(1))
            children = _descendants(victim.pid)
            return children if stored is not None and children and server.client_inflight.get(ADDRESS["cn"]) else set()

        children = wait_for(victim_mid_batch, "worker a to store pages and be mid-fetch", timeout=90, every=0.02)
        assert isinstance(children, set)
        victim.send_signal(signal.SIGKILL)
        wait_for(lambda: not _alive(children), "the killed worker's batch child to die with it", timeout=20)
        out, err = run.communicate(timeout=180)
        assert run.returncode == 0, err + cluster.log()

        attempts = cycle_attempts(pg_url)
        assert sorted(attempts) == [f"k{n:02d}" for n in range(count)]
        assert all(len(a) == 1 and a[0][0] == "ok" for a in attempts.values()), attempts
        assert {a[0][1] for a in attempts.values()} <= {"a", "b", "c"}
        started_by_victim = {s.path[2:-5] for s in server.seen if s.client == ADDRESS["cn"] and s.path.startswith("/k")}
        taken_over = [f"k{int(n):02d}" for n in started_by_victim if attempts[f"k{int(n):02d}"][0][1] != "a"]
        assert taken_over, (started_by_victim, attempts)  # what the victim had in flight, a survivor fetched (once)

        with engine.connect() as conn:
            snapshots = Counter(conn.scalars(select(Snapshot.page_id)))
            alerts = sorted(conn.execute(select(Alert.page_id, Alert.kind)).all())
        assert all(n == 1 for n in snapshots.values()) and len(snapshots) == count, snapshots

        # the same pages on one machine (`kvwatch run`, SQLite) give the same alerts
        alone = tmp_path / "alone"
        alone.mkdir()
        (alone / "watchlist.toml").write_text((cluster.cwd / "watchlist.toml").read_text())
        single = kvwatch("--db", f"sqlite:///{alone / 'kv.db'}", "run", cwd=alone, timeout=180)
        assert single.returncode == 0, single.stderr
        lone = create_engine(f"sqlite:///{alone / 'kv.db'}")
        with lone.connect() as conn:
            assert sorted(conn.execute(select(Alert.page_id, Alert.kind)).all()) == alerts

        # the next cycle is normal: one page changed, every page fetched once, one new snapshot
        server.route("k5.html", Route(200, body("k5", version=2), {"Content-Type": "text/html; charset=utf-8"}))
        with engine.connect() as conn:
            last_alert = conn.scalar(select(Alert.id).order_by(Alert.id.desc()).limit(1))
        again = cluster.run("--batch", "3")
        assert again.returncode == 0, again.stderr + cluster.log()
        attempts = cycle_attempts(pg_url)
        assert len(attempts) == count and all(len(a) == 1 and a[0][1] in ("b", "c") for a in attempts.values()), attempts
        with engine.connect() as conn:
            assert Counter(conn.scalars(select(Snapshot.page_id)))["k05"] == 2
            new = conn.execute(select(Alert.page_id, Alert.kind).where(Alert.id > last_alert)).all()
        assert {page for page, _ in new} == {"k05"} and "fact" in {kind for _, kind in new} and len(new) == len(set(new)), new  # 90 → 180 days
        engine.dispose()


def test_a_hosts_limit_holds_across_three_workers(cluster: Cluster, pg_url: str) -> None:
    count = 24
    with FixtureServer(PAGES) as server:
        for n in range(count):
            server.route(f"h{n}.html", Route(200, body(f"h{n}"), {"Content-Type": "text/html; charset=utf-8"}, behaviour="stall", stall_seconds=0.3))
        pages = "\n".join(f'[[page]]\nid = "h{n:02d}"\nurl = "{server.url(f"h{n}.html")}"\n' for n in range(count))
        write_watchlist(cluster.cwd, pages, PATIENT_CRAWL.replace("concurrency_per_domain = 8", "concurrency_per_domain = 2"))
        for region in ("a", "b", "c"):
            cluster.start(region, concurrency=2)
        cluster.wait_live({"a", "b", "c"})
        done = cluster.run("--batch", "4")
        assert done.returncode == 0, done.stderr + cluster.log()
        assert server.max_host_inflight[f"127.0.0.1:{server.port}"] == 2, server.max_host_inflight
    attempts = cycle_attempts(pg_url)
    assert len(attempts) == count and all(a[0][0] == "ok" for a in attempts.values())
    assert len({a[0][1] for a in attempts.values()}) >= 2, attempts  # the work was shared, and the limit still held


def test_workers_need_a_broker_and_postgresql(tmp_path: Path, pg_url: str, broker: str) -> None:
    write_watchlist(tmp_path, '[[page]]\nid = "p"\nurl = "http://127.0.0.1:9/p.html"\nregions = ["cn"]\n')
    base = {k: v for k, v in os.environ.items() if k not in ("KVWATCH_BROKER",)}
    no_broker = kvwatch("run", "--workers", cwd=tmp_path, env={**base, "KVWATCH_DB": pg_url})
    assert no_broker.returncode == 3 and "KVWATCH_BROKER" in no_broker.stderr, no_broker.stderr
    dead = {**base, "KVWATCH_DB": pg_url, "KVWATCH_BROKER": "amqp://guest:secret@127.0.0.1:9//"}
    unreachable = kvwatch("run", "--workers", cwd=tmp_path, env=dead)
    assert unreachable.returncode == 6 and "127.0.0.1:9" in unreachable.stderr and "secret" not in unreachable.stderr, unreachable.stderr
    worker = kvwatch("worker", "--region", "cn", cwd=tmp_path, env={**base, "KVWATCH_DB": f"sqlite:///{tmp_path / 'kv.db'}", "KVWATCH_BROKER": broker})
    assert worker.returncode == 3 and "PostgreSQL" in worker.stderr, worker.stderr
    bad = kvwatch("worker", "--region", "CN!", cwd=tmp_path, env=dead)
    assert bad.returncode == 2 and "region" in bad.stderr
    doctor = kvwatch("doctor", cwd=tmp_path, env=dead)
    broker_line = next(line for line in doctor.stdout.splitlines() if line.split()[1:2] == ["broker"])
    assert broker_line.startswith("FAIL") and "cannot reach the task broker" in broker_line and "secret" not in doctor.stdout, doctor.stdout


def test_doctor_names_regions_without_a_worker(cluster: Cluster) -> None:
    write_watchlist(cluster.cwd, '[[page]]\nid = "p"\nurl = "http://127.0.0.1:9/p.html"\nregions = ["cn", "eu"]\n')
    cluster.start("cn", ADDRESS["cn"])
    cluster.wait_live({"cn"})
    doctor = kvwatch("doctor", cwd=cluster.cwd, env=cluster.env)
    lines = {line.split()[1]: line for line in doctor.stdout.splitlines() if len(line.split()) > 1}
    assert lines["broker"].startswith("ok") and "guest:***@127.0.0.1:5672" in lines["broker"], doctor.stdout  # the password hidden
    assert lines["workers"].startswith("FAIL") and "no worker for region eu" in lines["workers"] and "cn@" in lines["workers"], doctor.stdout


def test_a_dark_region_sends_its_pages_on_and_a_page_with_nowhere_to_go_is_interrupted(cluster: Cluster, pg_url: str) -> None:
    with FixtureServer(PAGES) as server:
        for page_id in ("falls-back", "cn-only", "anywhere"):
            server.route(f"{page_id}.html", Route(200, body(page_id), {"Content-Type": "text/html; charset=utf-8"}))
        regions = {"falls-back": '["cn", "eu"]', "cn-only": '["cn"]'}
        pages = "\n".join(f'[[page]]\nid = "{p}"\nurl = "{server.url(p + ".html")}"' + (f"\nregions = {regions[p]}" if p in regions else "") + "\n"
                          for p in ("falls-back", "cn-only", "anywhere"))
        write_watchlist(cluster.cwd, pages, PATIENT_CRAWL)
        cluster.start("eu", ADDRESS["eu"])  # the cn machine is down
        cluster.wait_live({"eu"})
        done = cluster.run("--cycle-timeout", "10")
        assert done.returncode == 0, done.stderr + cluster.log()
    assert "region cn: no live worker; 1 pages sent to their next region" in done.stderr
    attempts = cycle_attempts(pg_url)
    assert attempts["falls-back"] == [("ok", "eu")] and attempts["anywhere"] == [("ok", "eu")], attempts
    assert attempts["cn-only"] == [("error", None)], attempts
    pages_out = kvwatch("pages", cwd=cluster.cwd, env=cluster.env).stdout
    assert "no worker of region cn fetched it within 10 s" in pages_out, pages_out


@pytest.mark.parametrize(("regions", "live", "start"), [
    (("cn", "eu"), None, 0),                # not known who is live: the watchlist's order
    (("cn", "eu"), {"cn": 1, "eu": 2}, 0),
    (("cn", "eu"), {"eu": 1}, 1),           # cn dark: eu
    (("cn", "eu", "sg"), {"sg": 3}, 2),
    (("cn", "eu"), {}, 0),                  # nobody: wait in cn's queue until the deadline
])
def test_a_page_starts_at_its_first_live_region(regions: tuple[str, ...], live: dict[str, int] | None, start: int) -> None:
    from crawler.dispatch import first_region, jobs_for
    from crawler.watchlist import PageSpec

    spec = PageSpec("p", "http://127.0.0.1/p", regions=regions)
    assert first_region(spec, live) == start
    (job,) = jobs_for("c", [spec], 10, 0.0, 2, live)
    assert job.region == regions[start] and job.pages == (("p", regions[start + 1:]),)


@pytest.mark.parametrize(("batch", "pages", "workers", "size"), [
    (7, 3000, 4, 7),          # as asked
    (0, 3000, 1, 500),        # two jobs a worker, at most 500 pages
    (0, 3000, 4, 375),
    (0, 30, 4, 20),           # at least 20
    (0, 3000, 0, 200),        # nobody answered (yet): the fallback
    (0, 3000, None, 200),
])
def test_jobs_are_sized_by_the_live_workers(batch: int, pages: int, workers: int | None, size: int) -> None:
    from crawler.dispatch import batch_size

    assert batch_size(batch, pages, workers) == size


def test_jobs_take_hosts_in_turn_and_split_by_region() -> None:
    from crawler.dispatch import jobs_for
    from crawler.watchlist import PageSpec

    specs = [PageSpec(f"{host}{n}", f"http://{host}.example/{n}", regions=("cn",) if host == "c" else ()) for host in "abc" for n in range(3)]
    jobs = jobs_for("c", specs, 4, 0.0, 2)
    assert [(job.region, job.page_ids) for job in jobs] == [(None, ("a0", "b0", "a1", "b1")), (None, ("a2", "b2")), ("cn", ("c0", "c1", "c2"))]


@pytest.mark.parametrize(("page", "rules", "defaults", "want"), [
    ('regions = ["sg"]', '"agency=nia" = ["cn"]', '["eu"]', ("sg",)),   # the page's own wins
    ("", '"agency=nia" = ["cn", "eu"]', '["eu"]', ("cn", "eu")),        # then a tag rule
    ("", '"agency=mission" = ["cn"]', '["eu"]', ("eu",)),               # then [defaults]
    ("", "", "", ()),                                                   # else any worker
])
def test_regions_come_from_the_page_a_tag_rule_or_the_defaults(tmp_path: Path, page: str, rules: str, defaults: str, want: tuple[str, ...]) -> None:
    from crawler.watchlist import load

    text_ = (f"[regions]\n{rules}\n" if rules else "") + (f"[defaults]\nregions = {defaults}\n" if defaults else "") + \
        f'[[page]]\nid = "p"\nurl = "http://127.0.0.1/p"\ntags = {{ agency = "nia" }}\n{page}\n'
    path = tmp_path / "w.toml"
    path.write_text(text_)
    assert load(path).page("p").regions == want


def test_the_daemon_sends_due_pages_to_the_workers(cluster: Cluster, pg_url: str) -> None:
    with FixtureServer(PAGES) as server:
        for n in range(4):
            server.route(f"d{n}.html", Route(200, body(f"d{n}"), {"Content-Type": "text/html; charset=utf-8"}))
        write_watchlist(cluster.cwd, "\n".join(f'[[page]]\nid = "d{n}"\nurl = "{server.url(f"d{n}.html")}"\nregions = ["eu"]\n' for n in range(4)), PATIENT_CRAWL)
        cluster.start("eu", ADDRESS["eu"])
        cluster.wait_live({"eu"})
        log = (cluster.logs / "serve.log").open("wb")
        daemon = subprocess.Popen([sys.executable, "-m", "kvwatch", "-v", "serve", "--workers", "--tick", "1", "--cycle-timeout", "60"],
                                  cwd=cluster.cwd, env=cluster.env, stdout=log, stderr=log)
        try:
            wait_for(lambda: _has_schema(pg_url) and len(cycle_attempts(pg_url)) == 4 and _alerts(pg_url) >= 4, "the daemon's first cycle, analysed",
                     timeout=120, every=0.5)
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(60)
        assert code == 0, (cluster.logs / "serve.log").read_text()
    assert all(a == [("ok", "eu")] for a in cycle_attempts(pg_url).values())
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        assert len(set(conn.scalars(select(Fetch.cycle)))) == 1  # nothing was due again within the pages' interval
        assert sorted(conn.scalars(select(Alert.page_id).where(Alert.kind == "fact"))) == ["d0", "d1", "d2", "d3"]  # analysed once: no duplicates
    engine.dispose()


def _alerts(pg_url: str) -> int:
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn:
            return len(conn.scalars(select(Alert.id)).all())
    finally:
        engine.dispose()


def _has_schema(pg_url: str) -> bool:
    from sqlalchemy import inspect

    engine = create_engine(pg_url)
    try:
        return inspect(engine).has_table("fetch")
    finally:
        engine.dispose()
