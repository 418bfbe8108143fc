"""The `kvwatch` command: a thin layer that turns library errors into one-line messages and exit codes.

Exit codes: 0 done (page failures are recorded, not fatal); 1 bad input (unknown id, date);
2 usage; 3 configuration error; 4 database unavailable; 5 another run holds the database.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from datetime import datetime
from typing import Any, Callable

import click

from crawler import watchlist as watchlist_mod
from store import pages as pages_mod
from store import snapshots as snapshots_mod
from store.db import make_engine, open_store, prepare, resolve_url, session_scope
from store.errors import ConfigError, DatabaseUnavailable, KvwatchError, NotFound, RunLocked
from store.lock import run_lock

EXIT_CODES: dict[type[KvwatchError], int] = {ConfigError: 3, DatabaseUnavailable: 4, RunLocked: 5, NotFound: 1}


def fail_cleanly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Library errors → `kvwatch: <message>` on stderr and a documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KvwatchError as exc:
            click.echo(f"kvwatch: {exc}", err=True)
            sys.exit(next((code for kind, code in EXIT_CODES.items() if isinstance(exc, kind)), 1))

    return wrapper


class Context:
    def __init__(self, db: str | None, watchlist: str, verbose: int):
        self.db_url, self.watchlist_path, self.verbose = resolve_url(db), watchlist, verbose

    def engine(self, upgrade: bool = True):  # type: ignore[no-untyped-def]
        return open_store(self.db_url, upgrade=upgrade)

    def watchlist(self) -> watchlist_mod.Watchlist:
        return watchlist_mod.load(self.watchlist_path)

    @property
    def log_level(self) -> str:
        return ("WARNING", "INFO", "DEBUG")[min(self.verbose, 2)]


@click.group()
@click.option("--db", envvar="KVWATCH_DB", help="Database URL (default: $KVWATCH_DB or sqlite:///kvwatch.db).")
@click.option("--watchlist", default="watchlist.toml", show_default=True, envvar="KVWATCH_WATCHLIST", help="The watchlist file.")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info, -vv debug).")
@click.pass_context
def main(ctx: click.Context, db: str | None, watchlist: str, verbose: int) -> None:
    """kvwatch: watch official pages for changes to China's K visa."""
    ctx.obj = Context(db, watchlist, verbose)
    configure_logging(verbose)


def configure_logging(verbose: int) -> None:
    """kvwatch's own warnings by default; more with -v (info) or -vv (debug)."""
    logging.basicConfig(level=("WARNING", "INFO", "DEBUG")[min(verbose, 2)], stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING if verbose < 2 else logging.DEBUG)


@main.command()
@click.option("--only", multiple=True, metavar="ID", help="Fetch only this page (repeatable).")
@click.pass_obj
@fail_cleanly
def crawl(obj: Context, only: tuple[str, ...]) -> None:
    """Run one poll cycle: fetch every enabled page once and record what happened."""
    from crawler.cycle import crawl as run_crawl

    watchlist = obj.watchlist()
    engine = make_engine(obj.db_url)
    with run_lock(engine):
        summary = run_crawl(prepare(engine), watchlist, only, obj.log_level)
    click.echo(_crawl_line(summary))


def _crawl_line(summary: Any) -> str:
    parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(summary.outcomes.items()))
    return f"crawled {summary.pages} pages: {parts or 'nothing fetched'}; {summary.new_snapshots} new snapshots"


@main.command("pages")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
@fail_cleanly
def pages_cmd(obj: Context, as_json: bool) -> None:
    """Each page's health: last good fetch, last change, consecutive failures and why."""
    with session_scope(obj.engine()) as session:
        rows = pages_mod.health(session)
    if as_json:
        click.echo(json.dumps([_jsonable(vars(r)) for r in rows], ensure_ascii=False, indent=2))
        return
    click.echo(f"{'PAGE':34} {'LAST GOOD':17} {'LAST CHANGE':17} {'SNAPS':>5} {'FAILS':>5}  STATUS")
    for r in rows:
        status = "disabled" if not r.enabled else (f"{r.last_outcome}: {r.reason}" if r.failures else (r.last_outcome or "never fetched"))
        click.echo(f"{r.id:34} {_when(r.last_good):17} {_when(r.last_change):17} {r.snapshots:>5} {r.failures:>5}  {status}")


@main.command()
@click.argument("page_id")
@click.option("--attempts", is_flag=True, help="List fetch attempts instead of snapshots.")
@click.pass_obj
@fail_cleanly
def history(obj: Context, page_id: str, attempts: bool) -> None:
    """List a page's distinct snapshots (or its fetch attempts), oldest first."""
    with session_scope(obj.engine()) as session:
        pages_mod.get(session, page_id)
        if attempts:
            for f in reversed(snapshots_mod.attempts(session, page_id, limit=200)):
                click.echo(f"{_when(f.started_at)}  {f.outcome:12} {f.status or '-':>4} {f.bytes:>8}B {f.duration_ms:>6}ms  {f.reason}")
            return
        for s in snapshots_mod.history(session, page_id):
            click.echo(f"{s.id:>6}  {_when(s.first_seen)} → {_when(s.last_seen)}  {s.hash[:12]}  {len(s.text):>6} chars  {s.title[:50]}")


@main.command()
@click.argument("page_id")
@click.option("--at", "at", metavar="SNAPSHOT_OR_DATE", help="A snapshot id or an ISO date/time (UTC).")
@click.option("--raw", is_flag=True, help="Print the raw body as fetched instead of the normalized text.")
@click.pass_obj
@fail_cleanly
def show(obj: Context, page_id: str, at: str | None, raw: bool) -> None:
    """Print a page's normalized text (and links) as of now, a snapshot or a date."""
    with session_scope(obj.engine()) as session:
        pages_mod.get(session, page_id)
        snap = snapshots_mod.resolve(session, page_id, at)
        if raw:
            body = snapshots_mod.raw_body(snap)
            if body is None:
                raise NotFound(f"snapshot {snap.id}: the raw body was pruned")
            sys.stdout.buffer.write(body)
            return
        click.echo(f"# {page_id} snapshot {snap.id}, seen {_when(snap.first_seen)} → {_when(snap.last_seen)}")
        click.echo(snap.text)
        if snap.links:
            click.echo("\n# links")
            for text, url in snap.links:
                click.echo(f"{text}\t{url}")


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
