"""The faults a real deployment meets, each against real parts: nothing lost, nothing sent twice,
nothing stuck, no secret shown. (The README's fault matrix lists them.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from kvwatch.fixture_server import FixtureServer, Route
from store import alerts, pages
from store.db import open_store, session_scope
from store.models import Alert, Delivery, Fetch
from store.snapshots import Attempt, Capture, record
from tests.conftest import PAGES, kvwatch, wait_for, write_watchlist
from tests.receivers import SlackReceiver

HTML = {"Content-Type": "text/html; charset=utf-8"}
KVWATCH = [sys.executable, "-m", "kvwatch"]


def _page(server: FixtureServer, page_id: str, path: str, extra: str = "") -> str:
    return f'[[page]]\nid = "{page_id}"\nurl = "{server.url(path)}"\n{extra}'


def _alerts_db(db: str, count: int, page_id: str = "p") -> None:
    engine = open_store(db)
    with session_scope(engine) as s:
        from crawler.watchlist import PageSpec

        pages.sync(s, [PageSpec(id=page_id, url="http://127.0.0.1/p", name="Embassy")])
    with session_scope(engine) as s:
        for i in range(count):
            alerts.add(s, alerts.NewAlert(key=f"k{i}", page_id=page_id, url="http://127.0.0.1/p", kind="fact", relevant=True, summary=f"s{i}",
                                          facts=({"field": "fee", "old": None, "new": f"第{i}项费用" + "长" * 2500, "evidence": f"证据{i}"},)),
                       datetime.now() - timedelta(minutes=5))
    engine.dispose()


# --- twice ---------------------------------------------------------------------------------------

def test_kill_9_in_the_middle_of_a_split_slack_digest_never_resends_confirmed_parts(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'k.db'}"
    _alerts_db(db, 40)  # long facts: a digest of many Slack messages
    write_watchlist(tmp_path, '[[page]]\nid = "p"\nurl = "http://127.0.0.1/p"\n')
    (tmp_path / "subscribers.toml").write_text('[[subscriber]]\nid = "s"\nslack = "KVWATCH_T_SLACK"\nfields = ["fee"]\n', encoding="utf-8")
    with SlackReceiver(hold_from=3) as slack:
        env = {**os.environ, "KVWATCH_T_SLACK": slack.url}
        first = subprocess.Popen([*KVWATCH, "--db", db, "deliver"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: len(slack.posts) >= 3, "the third part to reach Slack (the first two confirmed)")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        slack.hold_from = None
        slack.release.set()
        done = kvwatch("--db", db, "deliver", cwd=tmp_path, env={"KVWATCH_T_SLACK": slack.url})
        assert done.returncode == 0, done.stderr
    texts = [json.dumps(p, ensure_ascii=False) for p in slack.posts]
    assert "part 1 of 3" in texts[0], "the digest was not split into three parts"
    for i in range(40):  # the third post was never answered (killed): every alert arrived once in the confirmed posts
        count = sum(f"第{i}项费用" in t for t in texts[:2]) + sum(f"第{i}项费用" in t for t in texts[3:])
        assert count == 1, f"alert {i} delivered {count} times in confirmed posts"
    engine = create_engine(db)
    with Session(engine) as s:
        assert all(d.status == "sent" for d in s.scalars(select(Delivery)))
    engine.dispose()


def test_two_deliveries_at_once_send_the_digest_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'd.db'}"
    _alerts_db(db, 2)
    write_watchlist(tmp_path, '[[page]]\nid = "p"\nurl = "http://127.0.0.1/p"\n')
    (tmp_path / "subscribers.toml").write_text('[[subscriber]]\nid = "s"\nslack = "KVWATCH_T_SLACK"\n', encoding="utf-8")
    with SlackReceiver(hold_from=1) as slack:
        env = {**os.environ, "KVWATCH_T_SLACK": slack.url}
        first = subprocess.Popen([*KVWATCH, "--db", db, "deliver"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: slack.posts, "the first delivery to be posting")
        second = kvwatch("--db", db, "deliver", cwd=tmp_path, env={"KVWATCH_T_SLACK": slack.url})
        slack.release.set()
        first.communicate(timeout=60)
    assert second.returncode == 5 and second.stderr.startswith("kvwatch: another kvwatch run"), second.stderr
    assert first.returncode == 0 and len(slack.posts) == 1


# --- lost ----------------------------------------------------------------------------------------

def test_prune_never_restarts_an_outage(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    engine = open_store(db)
    from crawler.analyse import analyse
    from crawler.watchlist import PageSpec

    with session_scope(engine) as s:
        pages.sync(s, [PageSpec(id="p", url="http://127.0.0.1/p")])
    old = datetime(2020, 1, 1)
    with session_scope(engine) as s:
        record(s, Attempt("p", "u", "ok", old), Capture(hash="a", text="A"))
        for day in range(1, 5):
            record(s, Attempt("p", "u", "error", old + timedelta(days=day), reason="HTTP 502"))
    analyse(engine)
    engine.dispose()
    write_watchlist(tmp_path, '[[page]]\nid = "p"\nurl = "http://127.0.0.1/p"\n')
    assert kvwatch("--db", db, "prune", cwd=tmp_path).returncode == 0
    engine = open_store(db)
    with session_scope(engine) as s:
        for day in range(5, 9):  # the outage goes on after pruning
            record(s, Attempt("p", "u", "error", datetime.now() + timedelta(minutes=day), reason="HTTP 502"))
    analyse(engine)
    with session_scope(engine) as s:
        health = list(s.scalars(select(Alert).where(Alert.kind == "health")))
    engine.dispose()
    assert len(health) == 1 and "failing since 2020-01-02" in health[0].summary


def _mount_small_fs(folder: Path) -> bool:
    folder.mkdir()
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True, check=False)
    except OSError:
        return False
    return done.returncode == 0


def test_a_full_disk_is_a_database_error_exit_4_and_the_next_run_is_consistent(server: FixtureServer, tmp_path: Path) -> None:
    small = tmp_path / "small"
    if not _mount_small_fs(small):
        pytest.skip("cannot mount a small tmpfs here (needs root and mount)")
    try:
        db = f"sqlite:///{small / 'kv.db'}"
        page = (PAGES / "nia-k-visa-notice.html").read_text(encoding="utf-8")
        server.route("n.html", Route(200, page.encode(), HTML))
        write_watchlist(tmp_path, _page(server, "nia", "n.html"))
        assert kvwatch("--db", db, "crawl", cwd=tmp_path).returncode == 0
        filler = small / "filler"
        with filler.open("wb") as out:  # fill the file system to the last byte
            try:
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
            except OSError:
                pass
        server.route("n.html", Route(200, page.replace("7日前", "10日前").encode() * 3, HTML))
        full = kvwatch("--db", db, "crawl", cwd=tmp_path)
        assert full.returncode == 4, (full.returncode, full.stdout, full.stderr)
        assert full.stderr.startswith("kvwatch: ") and len(full.stderr.strip().splitlines()) == 1 and "full" in full.stderr, full.stderr
        filler.unlink()
        again = kvwatch("--db", db, "crawl", cwd=tmp_path)
        assert again.returncode == 0 and "1 new snapshots" in again.stdout, again.stdout + again.stderr
        listed = json.loads(kvwatch("--db", db, "pages", "--json", cwd=tmp_path).stdout)
        assert listed[0]["snapshots"] == 2 and listed[0]["failures"] == 0
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


def test_sigterm_during_a_crawl_records_every_page_and_the_summary_adds_up(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    body = (PAGES / "nia-k-visa-notice.html").read_bytes()
    entries = []
    for i in range(12):
        server.route(f"p{i}.html", Route(200, body, HTML, behaviour="stall", stall_seconds=20))
        entries.append(_page(server, f"p{i}", f"p{i}.html"))
    write_watchlist(tmp_path, "\n".join(entries), crawl="[crawl]\nautothrottle = false\ndelay = 0\ntimeout = 30\nretries = 0\nconcurrency = 2\n")
    crawl = subprocess.Popen([*KVWATCH, "--db", sqlite_url, "crawl"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(server.seen) >= 2, "two pages in flight")
    crawl.send_signal(signal.SIGTERM)
    server.stop_stalls.set()  # the in-flight pages finish
    out, err = crawl.communicate(timeout=60)
    assert crawl.returncode == 0, err
    engine = create_engine(sqlite_url)
    with Session(engine) as s:
        outcomes = [f.outcome for f in s.scalars(select(Fetch))]
    engine.dispose()
    assert len(outcomes) == 12 and "interrupted" in outcomes, outcomes
    assert out.startswith("crawled 12 pages:") and f"{outcomes.count('interrupted')} interrupted" in out, out


# --- wrong ---------------------------------------------------------------------------------------

def test_a_gbk_page_that_says_utf8_is_read_correctly_and_alerts_nothing(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    body = (PAGES / "embassy-my-visa.html").read_bytes()
    server.route("my.html", Route(200, body, {"Content-Type": "text/html"}))
    write_watchlist(tmp_path, _page(server, "my", "my.html"))
    assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    lying = body.replace(b"gb2312", b"utf-8")
    assert lying != body
    server.route("my.html", Route(200, lying, {"Content-Type": "text/html; charset=utf-8"}))
    assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    facts = json.loads(kvwatch("--db", sqlite_url, "alerts", "--json", "--kind", "fact", cwd=tmp_path).stdout)
    assert len(facts) == 1 and not any(f["new"] is None for a in facts for f in a["facts"]), facts
    assert json.loads(kvwatch("--db", sqlite_url, "alerts", "--json", "--kind", "content", cwd=tmp_path).stdout) == []


# --- leaked --------------------------------------------------------------------------------------

def _command_lines() -> list[str]:
    """Every process's whole command line, as `ps` would show it (read from /proc, never truncated)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                out.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip())
            except OSError:
                continue
    return out


def _pg_with_password(pg_admin: str) -> tuple[str, str, str]:
    secret = f"S3cret{uuid.uuid4().hex[:8]}"
    name = f"kvwatch_leak_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    base = pg_admin.rsplit("/", 1)[0].replace("postgres@", f"postgres:{secret}@")
    return f"{base}/{name}", secret, name


def test_the_postgres_password_is_never_shown(server: FixtureServer, tmp_path: Path, pg_admin: str) -> None:
    url, secret, name = _pg_with_password(pg_admin)
    try:
        write_watchlist(tmp_path, _page(server, "nia", "nia-k-visa-notice.html", 'interval = 1\n'))
        outputs = []
        env = {"KVWATCH_DB": url}  # secrets come from the environment, never a command line
        for args in (("-vv", "crawl"), ("doctor",), ("pages",)):
            done = kvwatch(*args, cwd=tmp_path, env=env)
            outputs.append(done.stdout + done.stderr)
        broken = {"KVWATCH_DB": url.replace("127.0.0.1:5432", "127.0.0.1:9")}
        done = kvwatch("doctor", cwd=tmp_path, env=broken)
        assert "FAIL database" in done.stdout
        outputs.append(done.stdout + done.stderr)
        done = kvwatch("crawl", cwd=tmp_path, env=broken)
        assert done.returncode == 4
        outputs.append(done.stdout + done.stderr)
        log = (tmp_path / "serve.log").open("w")
        daemon = subprocess.Popen([*KVWATCH, "-v", "serve", "--tick", "0.3"], cwd=tmp_path, stdout=log, stderr=log, env={**os.environ, **env})
        seen_child = []
        try:
            def child_args() -> list[str]:
                lines = _command_lines()
                assert not [line for line in lines if secret in line], "the password is on a command line"
                rows = [line for line in lines if "kvwatch" in line and " crawl" in line]
                seen_child.extend(rows)
                return rows
            wait_for(child_args, "the daemon's crawl child in the process table", timeout=60, every=0.05)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
            log.close()
        outputs.append((tmp_path / "serve.log").read_text())
        assert seen_child
        for output in outputs:
            assert secret not in output
    finally:
        admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- silently ignored ----------------------------------------------------------------------------

@pytest.mark.parametrize(("entry", "message"), [
    ('pages = ["embassy-us-visa", "embasy-us-visa"]', "key 'pages': unknown page id 'embasy-us-visa'"),
    ('tags = { contry = "us" }', "key 'tags': unknown tag key 'contry'"),
])
def test_subscriber_filters_naming_nothing_are_configuration_errors(tmp_path: Path, entry: str, message: str) -> None:
    write_watchlist(tmp_path, '[[page]]\nid = "embassy-us-visa"\nurl = "https://us.china-embassy.gov.cn/eng/"\ntags = { country = "us" }\n')
    (tmp_path / "subscribers.toml").write_text(f'[[subscriber]]\nid = "a"\nemail = "a@kvwatch.test"\n{entry}\n', encoding="utf-8")
    done = kvwatch("--db", f"sqlite:///{tmp_path / 'x.db'}", "subscribers", cwd=tmp_path)
    assert done.returncode == 3 and done.stderr.startswith("kvwatch: subscribers.toml: [[subscriber]] id=a: ") and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
