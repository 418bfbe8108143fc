"""The command line: help texts, one-line errors and exit codes, the run lock, offline runs."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine

from kvwatch.cli import main
from kvwatch.fixture_server import FixtureServer
from store.lock import run_lock
from tests.conftest import ROOT, kvwatch, write_watchlist


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in group.commands.items():
        out.append(prefix + (name,))
        if isinstance(cmd, click.Group):
            out += _commands(cmd, prefix + (name,))
    return out


@pytest.mark.parametrize("path", _commands(main), ids=" ".join)
def test_every_command_has_help_text(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0
    cmd = main
    for name in path:
        cmd = cmd.commands[name]  # type: ignore[attr-defined]
    assert cmd.help and len(cmd.help.strip()) > 20, f"{' '.join(path)} has no real help text"
    assert cmd.help.strip().split("\n")[0] in " ".join(result.output.split())


def test_bad_watchlist_exits_non_zero_before_any_fetch(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    write_watchlist(tmp_path, f'[[page]]\nid = "ok-page"\nurl = "{server.url("nia-news.html")}"\n[[page]]\nid = "broken"\nurl = "ftp://x"\n')
    result = kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path)
    assert result.returncode == 3
    assert result.stderr.strip() == "kvwatch: watchlist.toml: [[page]] id=broken: key 'url': not a valid http(s) URL: 'ftp://x'"
    assert server.seen == []


@pytest.mark.parametrize("db", ["sqlite:////nonexistent-dir/kvwatch.db", "postgresql+psycopg://kvwatch@127.0.0.1:1/none"])
def test_unreachable_database_is_one_line_and_exit_4(tmp_path: Path, db: str) -> None:
    write_watchlist(tmp_path, '[[page]]\nid = "a"\nurl = "http://127.0.0.1:9/a"\n')
    result = kvwatch("--db", db, "crawl", cwd=tmp_path)
    assert result.returncode == 4
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kvwatch: cannot ")


def test_a_second_overlapping_run_says_so_and_leaves_the_database_alone(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    write_watchlist(tmp_path, '[[page]]\nid = "a"\nurl = "http://127.0.0.1:9/a"\n')
    engine = create_engine(f"sqlite:///{db}")
    with run_lock(engine):
        result = kvwatch("--db", f"sqlite:///{db}", "crawl", cwd=tmp_path)
    assert result.returncode == 5
    assert "another kvwatch run" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not db.exists() or sqlite3.connect(db).execute("select count(*) from sqlite_master").fetchone() == (0,)


def test_postgres_run_lock_blocks_a_second_run(pg_url: str, tmp_path: Path) -> None:
    write_watchlist(tmp_path, '[[page]]\nid = "a"\nurl = "http://127.0.0.1:9/a"\n')
    with run_lock(create_engine(pg_url)):
        result = kvwatch("--db", pg_url, "crawl", cwd=tmp_path)
    assert result.returncode == 5


def test_unknown_ids_and_dates_are_one_line_errors(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    write_watchlist(tmp_path, f'[[page]]\nid = "nia-news"\nurl = "{server.url("nia-news.html")}"\nkind = "listing"\n')
    assert kvwatch("--db", sqlite_url, "crawl", "--only", "nia-news", cwd=tmp_path).returncode == 0
    for args, words, code in [
        (("crawl", "--only", "nope"), "no page with id 'nope'", 1),
        (("show", "nope"), "no page with id 'nope'", 1),
        (("show", "nia-news", "--at", "yesterday"), "'yesterday' is neither a snapshot number", 2),
        (("show", "nia-news", "--at", "2020-01-01"), "has no snapshot at 2020-01-01", 1),
        (("show", "nia-news", "--at", "7"), "has no snapshot at 7", 1),
        (("alerts", "--kind", "bogus"), "Invalid value for '--kind'", 2),
        (("crawl", "--bogus"), "No such option '--bogus'; see `kvwatch crawl --help`", 2),
        (("frobnicate",), "No such command 'frobnicate'", 2),
    ]:
        result = kvwatch("--db", sqlite_url, *args, cwd=tmp_path)
        assert result.returncode == code and words in result.stderr, (args, result.stderr)
        assert result.stderr.startswith("kvwatch: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    history = kvwatch("--db", sqlite_url, "history", "nia-news", cwd=tmp_path)
    assert history.returncode == 0 and history.stdout.splitlines()[1].split()[:2] == ["1", f"id:{json.loads(kvwatch('--db', sqlite_url, 'history', 'nia-news', '--json', cwd=tmp_path).stdout)[0]['id']}"]
    assert kvwatch("--db", sqlite_url, "show", "nia-news", "--at", "1", cwd=tmp_path).stdout == kvwatch("--db", sqlite_url, "show", "nia-news", cwd=tmp_path).stdout


def test_watchlist_errors_in_defaults_name_defaults(tmp_path: Path) -> None:
    (tmp_path / "watchlist.toml").write_text('[defaults]\ninterval = "soon"\n\n[[page]]\nid = "a"\nurl = "https://a.example/"\n', encoding="utf-8")
    result = kvwatch("crawl", cwd=tmp_path)
    assert result.returncode == 3 and result.stderr.strip() == "kvwatch: watchlist.toml: [defaults]: key 'interval': must be seconds or a duration like '30m', '6h', '1d', got 'soon'"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_crawl_of_the_default_watchlist_records_every_failure_and_exits_0(tmp_path: Path) -> None:
    """No network: every request goes to a dead loopback proxy, so nothing leaves this machine."""
    dead = f"http://127.0.0.1:{_closed_port()}"
    watchlist = (ROOT / "watchlist.toml").read_text(encoding="utf-8")
    watchlist = watchlist.replace("retries = 2", "retries = 0").replace("autothrottle = true", "autothrottle = false")
    (tmp_path / "watchlist.toml").write_text(watchlist, encoding="utf-8")
    env = {"http_proxy": dead, "https_proxy": dead}
    result = kvwatch("--db", f"sqlite:///{tmp_path / 'k.db'}", "crawl", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    count = watchlist.count("[[page]]")
    assert f"crawled {count} pages: {count} error; 0 new snapshots" in result.stdout
    pages = kvwatch("--db", f"sqlite:///{tmp_path / 'k.db'}", "pages", cwd=tmp_path)
    assert pages.stdout.count("connection refused") == count


def test_columns_align_chinese_by_display_width() -> None:
    from kvwatch.cli_history import columns, display_width

    assert display_width("停留期K") == 7
    rows = [["FIELD", "VALUE"], ["停留期", "180 days"], ["validity", "5 years"]]
    out = columns(rows).splitlines()
    starts = {display_width(line[: line.index(row[1])]) for line, row in zip(out, rows)}
    assert starts == {display_width("validity") + 2}  # the second column starts at one screen column on every line


def test_facts_marks_values_from_a_failing_page_as_stale(server: FixtureServer, tmp_path: Path, sqlite_url: str) -> None:
    from kvwatch.fixture_server import Route

    server.route("my.html", Route(200, (ROOT / "fixtures" / "pages" / "embassy-my-visa.html").read_bytes(), {"Content-Type": "text/html"}))
    write_watchlist(tmp_path, f'[[page]]\nid = "my"\nurl = "{server.url("my.html")}"\n')
    assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    server.route("my.html", Route(502, b"bad gateway"))
    assert kvwatch("--db", sqlite_url, "crawl", cwd=tmp_path).returncode == 0
    text = kvwatch("--db", sqlite_url, "facts", cwd=tmp_path).stdout
    assert re.search(r"^~\s+stay per entry\s+180 days\s+my\b", text, re.M) and "~ my has been failing since " in text
    data = json.loads(kvwatch("--db", sqlite_url, "facts", "--json", cwd=tmp_path).stdout)
    assert all(f["stale_since"].endswith("Z") for f in data["facts"])
