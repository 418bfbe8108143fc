"""Shared test fixtures: a loopback fixture server, SQLite and PostgreSQL databases, and a
helper that runs the real `kvwatch` command in a subprocess (Scrapy's reactor runs once per process)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from kvwatch.fixture_server import FixtureServer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
PAGES = FIXTURES / "pages"
PG_ADMIN = os.environ.get("KVWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")

# Fast, impolite crawl settings for loopback tests; the defaults are polite.
TEST_CRAWL = """
[crawl]
autothrottle = false
delay = 0
timeout = 5
retries = 1
backoff = 0.1
concurrency_per_domain = 8
dns_timeout = 2
"""


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    with FixtureServer(PAGES) as srv:
        yield srv


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'kvwatch.db'}"


def _pg_reachable() -> str | None:
    try:
        engine = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "skip", with the reason
        return f"no PostgreSQL at {PG_ADMIN}: {str(exc).splitlines()[0]}"


@pytest.fixture(scope="session")
def pg_admin() -> str:
    reason = _pg_reachable()
    if reason:
        pytest.skip(reason)
    return PG_ADMIN


@pytest.fixture
def pg_url(pg_admin: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"kvwatch_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on a SQLite file and, when one is reachable, on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


# For tests that crawl many pages at once: generous timeouts, so a loaded 2-core machine never turns a
# slow loopback answer into a failure the test did not ask for.
PATIENT_CRAWL = TEST_CRAWL.replace("timeout = 5\n", "timeout = 20\n").replace("retries = 1\n", "retries = 2\n")


def wait_for(condition: Callable[[], object], what: str, timeout: float = 60.0, every: float = 0.1) -> object:
    """Poll `condition` until it returns something true, or fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def write_watchlist(folder: Path, pages: str, crawl: str = TEST_CRAWL) -> Path:
    path = folder / "watchlist.toml"
    path.write_text(crawl + "\n" + pages, encoding="utf-8")
    return path


def kvwatch(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `kvwatch` command (proxy variables cleared unless given)."""
    base = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy", "no_proxy", "kvwatch_db")}
    return subprocess.run(
        [sys.executable, "-m", "kvwatch", *args], cwd=cwd, env={**base, **(env or {})},
        capture_output=True, text=True, timeout=timeout, check=False,
    )
