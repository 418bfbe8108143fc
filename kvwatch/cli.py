"""The `kvwatch` command: a thin layer that turns library errors into one-line messages and exit codes.

Exit codes: 0 done (page failures are recorded, not fatal); 1 not found (unknown id, snapshot);
2 usage (a bad option value, like a date that is not one); 3 configuration error; 4 database
unavailable or failing; 5 another run holds the database.

Commands live by group: `cli_history` (what pages said and what changed), `cli_notify`
(subscribers and delivery), `cli_ops` (crawling, the daemon, maintenance). This module imports
nothing heavy, so `kvwatch --help` starts at once; each command imports what it uses.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from kvwatch.logs import configure
from store.errors import BrokerUnavailable, ConfigError, DatabaseUnavailable, KvwatchError, NotFound, RunLocked, UsageError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from crawler.watchlist import Watchlist
    from kvwatch.paths import Files
    from notifier.subscribers import Subscriber

EXIT_CODES: dict[type[KvwatchError], int] = {UsageError: 2, ConfigError: 3, DatabaseUnavailable: 4, RunLocked: 5, NotFound: 1, BrokerUnavailable: 6}


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
    def __init__(self, files: Files, verbose: int, log_json: bool = False, log_level: str | None = None):
        self.files = files
        self.db_url, self.watchlist_path, self.subscribers_path = files.db_url, files.watchlist, files.subscribers
        self.verbose, self.log_json, self.explicit_level = verbose, log_json, log_level

    def subscribers(self) -> tuple[Subscriber, ...]:
        """The subscribers, their page and tag filters checked against the watchlist (when it loads)."""
        from notifier.subscribers import load

        try:
            watchlist = self.watchlist()
        except ConfigError:
            watchlist = None
        return load(self.subscribers_path, watchlist)

    def subscribers_if_any(self) -> tuple[Subscriber, ...]:
        """The subscribers, or () when no subscribers file was named and none exists."""
        from pathlib import Path

        if self.files.how["subscribers"] != "named by option or environment" and not Path(self.subscribers_path).exists():
            return ()
        return self.subscribers()

    def engine(self) -> Engine:
        from store.db import open_store

        return open_store(self.db_url)

    def watchlist(self) -> Watchlist:
        from crawler.watchlist import load

        return load(self.watchlist_path)

    @property
    def log_level(self) -> str:
        return ("WARNING", "INFO", "DEBUG")[min(self.verbose, 2)]


class Group(click.Group):
    """Click, with usage errors in kvwatch's one-line format: `kvwatch: <what>; see kvwatch COMMAND --help`, exit 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.UsageError as exc:
            where = exc.ctx.command_path.replace(exc.ctx.find_root().info_name or "", "kvwatch", 1) if exc.ctx else "kvwatch"
            click.echo(f"kvwatch: {exc.format_message().rstrip('.')}; see `{where} --help`", err=True)
            sys.exit(2)
        except click.exceptions.Abort:
            click.echo("kvwatch: aborted", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kvwatch", prog_name="kvwatch")
@click.option("--db", envvar="KVWATCH_DB", help="Database URL (default: $KVWATCH_DB, ./kvwatch.db, or the user data directory's).")
@click.option("--watchlist", envvar="KVWATCH_WATCHLIST", help="The watchlist file (default: ./watchlist.toml, else the user config directory's).")
@click.option("--subscribers", envvar="KVWATCH_SUBSCRIBERS", help="The subscribers file (default: ./subscribers.toml, else the user config directory's).")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info: one line per page; -vv debug).")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), envvar="KVWATCH_LOG_LEVEL", help="Log level (overrides -v).")
@click.option("--log-json", is_flag=True, envvar="KVWATCH_LOG_JSON", help="Log one JSON object per line.")
@click.pass_context
def main(ctx: click.Context, db: str | None, watchlist: str | None, subscribers: str | None, verbose: int, log_level: str | None, log_json: bool) -> None:
    """kvwatch: watch official pages for changes to China's K visa."""
    from kvwatch.paths import resolve

    if log_level:
        verbose = {"DEBUG": 2, "INFO": 1}.get(log_level, 0)
    ctx.obj = Context(resolve(watchlist, subscribers, db), verbose, log_json, log_level)
    configure(log_level or ctx.obj.log_level, log_json)


# --- shared by the command groups ---------------------------------------------------------------

def iso(moment: datetime | None) -> str | None:
    """The one timestamp format of every JSON output: UTC with a Z."""
    return moment.isoformat(timespec="seconds") + "Z" if moment else None


def when(moment: datetime | None) -> str:
    """A stored (naive UTC) time for people: local time, with its zone."""
    return moment.replace(tzinfo=UTC).astimezone().strftime("%Y-%m-%d %H:%M %Z") if moment else "-"


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=lambda v: iso(v) if isinstance(v, datetime) else str(v)))


def parse_time(value: str, end_of_day: bool = False) -> datetime:
    """An ISO date or time (UTC unless it says otherwise) → naive UTC; a usage error (exit 2) echoing what was typed."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{value!r} is not a date or time (like 2026-11-25 or 2026-11-25T10:00Z)") from None
    if end_of_day and len(value) <= 10:
        moment = moment.replace(hour=23, minute=59, second=59)
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment


from kvwatch import cli_discover, cli_history, cli_notify, cli_ops, cli_web, cli_workers  # noqa: E402,F401 - registers the command groups on `main`
