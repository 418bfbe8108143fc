"""The `kvwatch` command: a thin layer that turns library errors into one-line messages and exit codes.

Exit codes: 0 done (page failures are recorded, not fatal); 1 bad input (unknown id, date);
2 usage; 3 configuration error; 4 database unavailable; 5 another run holds the database.
"""

from __future__ import annotations

import functools
import json
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy import Engine

from crawler import watchlist as watchlist_mod
from kvwatch.logs import configure
from store import pages as pages_mod
from store import snapshots as snapshots_mod
from store.db import make_engine, open_store, prepare, resolve_url, session_scope
from store.errors import ConfigError, DatabaseUnavailable, KvwatchError, NotFound, RunLocked
from store.lock import run_lock

if TYPE_CHECKING:
    from notifier.subscribers import Subscriber

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
    def __init__(self, db: str | None, watchlist: str, verbose: int, subscribers: str = "subscribers.toml",
                 log_json: bool = False, log_level: str | None = None):
        self.db_url, self.watchlist_path, self.verbose = resolve_url(db), watchlist, verbose
        self.subscribers_path, self.log_json, self.explicit_level = subscribers, log_json, log_level

    def subscribers(self) -> tuple[Subscriber, ...]:
        """The subscribers, their page and tag filters checked against the watchlist (when it loads)."""
        from notifier.subscribers import load

        try:
            watchlist = self.watchlist()
        except ConfigError:
            watchlist = None
        return load(self.subscribers_path, watchlist)

    def engine(self) -> Engine:
        return open_store(self.db_url)

    def watchlist(self) -> watchlist_mod.Watchlist:
        return watchlist_mod.load(self.watchlist_path)

    @property
    def log_level(self) -> str:
        return ("WARNING", "INFO", "DEBUG")[min(self.verbose, 2)]


@click.group()
@click.option("--db", envvar="KVWATCH_DB", help="Database URL (default: $KVWATCH_DB or sqlite:///kvwatch.db).")
@click.option("--watchlist", default="watchlist.toml", show_default=True, envvar="KVWATCH_WATCHLIST", help="The watchlist file.")
@click.option("--subscribers", default="subscribers.toml", show_default=True, envvar="KVWATCH_SUBSCRIBERS", help="The subscribers file.")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-v info: one line per page; -vv debug).")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), envvar="KVWATCH_LOG_LEVEL", help="Log level (overrides -v).")
@click.option("--log-json", is_flag=True, envvar="KVWATCH_LOG_JSON", help="Log one JSON object per line.")
@click.pass_context
def main(ctx: click.Context, db: str | None, watchlist: str, subscribers: str, verbose: int, log_level: str | None, log_json: bool) -> None:
    """kvwatch: watch official pages for changes to China's K visa."""
    if log_level:
        verbose = {"DEBUG": 2, "INFO": 1}.get(log_level, 0)
    ctx.obj = Context(db, watchlist, verbose, subscribers, log_json, log_level)
    configure(log_level or ctx.obj.log_level, log_json)


@main.command()
@click.option("--only", multiple=True, metavar="ID", help="Fetch only this page (repeatable).")
@click.pass_obj
@fail_cleanly
def crawl(obj: Context, only: tuple[str, ...]) -> None:
    """Run one poll cycle: fetch every enabled page once and record what happened."""
    from crawler.cycle import run_cycle

    watchlist = obj.watchlist()
    engine = make_engine(obj.db_url)
    with run_lock(engine):
        summary = run_cycle(prepare(engine), watchlist, only, obj.log_level, progress=sys.stderr.isatty())
    click.echo(_crawl_line(summary))


def _crawl_line(summary: Any) -> str:
    parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(summary.outcomes.items()))
    raised = sum(summary.alerts.values())
    kinds = f" ({', '.join(f'{n} {k}' for k, n in sorted(summary.alerts.items()))})" if raised else ""
    linked = f" (+{summary.linked} linked)" if summary.linked else ""
    return f"crawled {summary.pages} pages{linked}: {parts or 'nothing fetched'}; {summary.new_snapshots} new snapshots; {raised} alerts{kinds}"


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


@main.command("diff")
@click.argument("page_id")
@click.option("--from", "from_", metavar="SNAPSHOT_OR_DATE", help="Older side (default: the snapshot before --to).")
@click.option("--to", "to", metavar="SNAPSHOT_OR_DATE", help="Newer side (default: the current snapshot).")
@click.option("--format", "fmt", type=click.Choice(["text", "html", "json"]), default="text", show_default=True)
@click.pass_obj
@fail_cleanly
def diff_cmd(obj: Context, page_id: str, from_: str | None, to: str | None, fmt: str) -> None:
    """Show what changed on a page between two snapshots (coloured in a terminal, plain when piped)."""
    from crawler.analyse import comparable
    from store.alerts import earlier_snapshots
    from store.diff import diff

    with session_scope(obj.engine()) as session:
        page = pages_mod.get(session, page_id)
        new = snapshots_mod.resolve(session, page_id, to)
        if from_ is None:
            older = earlier_snapshots(session, new, 1)
            if not older:
                raise NotFound(f"page {page_id!r}: snapshot {new.id} is the first; nothing to compare it with")
            old = older[0]
        else:
            old = snapshots_mod.resolve(session, page_id, from_)
        ignore = tuple((page.options or {}).get("ignore", ()))
        result = diff(comparable(old.text, ignore), comparable(new.text, ignore))
    if fmt == "json":
        click.echo(json.dumps({"page_id": page_id, "from": old.id, "to": new.id, "spans": result.spans()}, ensure_ascii=False, indent=2))
    elif fmt == "html":
        click.echo(result.render_html())
    else:
        click.echo(f"# {page_id}: snapshot {old.id} ({_when(old.first_seen)}) → {new.id} ({_when(new.first_seen)})")
        click.echo(result.render_text(color=sys.stdout.isatty()) if result.changed else "(no change in the compared text)")


@main.command("alerts")
@click.option("--json", "as_json", is_flag=True, help="Print the public JSON array (see README).")
@click.option("--since", metavar="ISO_TIME", help="Only alerts detected at or after this UTC time.")
@click.option("--page", "page_id", metavar="ID", help="Only this page's alerts.")
@click.option("--kind", type=click.Choice(["content", "new_link", "health", "fact"]), help="Only this kind.")
@click.pass_obj
@fail_cleanly
def alerts_cmd(obj: Context, as_json: bool, since: str | None, page_id: str | None, kind: str | None) -> None:
    """List alerts: content changes, new links, page health, fact changes."""
    from store import alerts as alerts_mod
    from store.deliveries import state_by_alert

    moment = _parse_time(since) if since else None
    with session_scope(obj.engine()) as session:
        rows = [alerts_mod.to_json(a) for a in alerts_mod.query(session, moment, page_id, kind)]
        states = state_by_alert(session)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        flag = "K" if row["relevant"] else " "
        state = states.get(row["id"])
        sent = f"{state['sent']}/{sum(state.values())} sent" if state else "not queued"
        click.echo(f"{row['id']:>5} {row['detected_at'][:16]} {flag} {row['kind']:8} {row['page_id']:30} {sent:12} {row['summary']}")


def _parse_time(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise NotFound(f"{value!r} is not an ISO date or time like 2026-11-25 or 2026-11-25T10:00Z") from None
    if moment.tzinfo is not None:
        from datetime import UTC

        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


@main.command("facts")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: values per field and source, and disagreements.")
@click.option("--field", "field", metavar="F", help="Only this field (e.g. stay_duration).")
@click.option("--at", "at", metavar="DATE", help="The values as they stood at this ISO date/time (UTC).")
@click.pass_obj
@fail_cleanly
def facts_cmd(obj: Context, as_json: bool, field: str | None, at: str | None) -> None:
    """The K visa's facts per source (now, or at a date), and the fields where official sources disagree."""
    from crawler.facts import FIELDS
    from store import facts as fact_store

    if field is not None and field not in FIELDS:
        raise NotFound(f"unknown field {field!r} (valid fields: {', '.join(FIELDS)})")
    moment = _parse_time(at if at is None or len(at) > 10 else at + "T23:59:59") if at else None
    with session_scope(obj.engine()) as session:
        rows = fact_store.as_of(session, moment, field)
        data = [{"field": f.field, "value": f.value, "page_id": f.page_id, "url": p.url, "tier": f.tier, "since": f.valid_from.isoformat(timespec="seconds") + "Z",
                 "evidence": f.evidence} for f, p in rows]
        conflicts = fact_store.disagreements(rows)
    if as_json:
        click.echo(json.dumps({"at": moment.isoformat() + "Z" if moment else None, "facts": data, "disagreements": conflicts}, ensure_ascii=False, indent=2))
        return
    for row in data:
        mark = "!" if row["field"] in conflicts else " "
        value = fact_store.humanize(row["field"], row["value"])
        click.echo(f"{mark} {fact_store.label(row['field']):24} {value[:60]:60} {row['page_id']} [{row['tier']}] since {row['since'][:10]}")
    for name, values in conflicts.items():
        click.echo(f"! sources disagree on {fact_store.label(name)}: " + "; ".join(f"{fact_store.humanize(name, v)} ({', '.join(ids)})" for v, ids in values.items()))


@main.command("reprocess")
@click.option("--page", "page_id", metavar="ID", help="Only this page (default: every page).")
@click.option("--since", metavar="DATE", help="Only snapshots from this ISO date/time (UTC) on.")
@click.option("--deliver-backfill", is_flag=True, help="Deliver the historical fact changes it newly finds as news (default: store them, marked backfilled).")
@click.pass_obj
@fail_cleanly
def reprocess_cmd(obj: Context, page_id: str | None, since: str | None, deliver_backfill: bool) -> None:
    """Re-run analysis (facts, their timeline, relevance) over stored snapshots, fetching nothing."""
    from crawler.reprocess import reprocess

    engine = make_engine(obj.db_url)
    with run_lock(engine):
        prepare(engine)
        if page_id is not None:
            with session_scope(engine) as session:
                pages_mod.get(session, page_id)
        done = reprocess(engine, page_id, _parse_time(since) if since else None, deliver_backfill)
    click.echo(f"reprocessed {done.snapshots} snapshots of {done.pages} pages: {done.timeline_rows} fact timeline rows; "
               f"{done.backfilled} backfilled alerts{' (queued for delivery)' if deliver_backfill and done.backfilled else ''}; "
               f"{done.relevance_changed} relevance changes")


@main.command("subscribers")
@click.pass_obj
@fail_cleanly
def subscribers_cmd(obj: Context) -> None:
    """List subscribers: channels, cadence, filters, and what each would receive (pending, sent)."""
    from notifier.deliver import sync, wanted
    from store.db import utcnow
    from store.deliveries import state_by_subscriber

    subs = obj.subscribers()
    engine = obj.engine()
    sync(engine, subs)
    with session_scope(engine) as session:
        states = state_by_subscriber(session)
        would = {s.id: len(wanted(session, s, utcnow())) for s in subs}
    for sub in subs:
        channels = ", ".join([f"email {', '.join(sub.email)}"] * bool(sub.email) + [f"slack ${sub.slack}"] * bool(sub.slack))
        when = sub.cadence if sub.cadence == "immediate" else f"{sub.cadence} at {sub.at:%H:%M} {sub.timezone}"
        filters = "; ".join(filter(None, [
            f"pages {', '.join(sub.pages)}" if sub.pages else "", f"tags {dict(sub.tags)}" if sub.tags else "",
            f"fields {', '.join(sub.fields)}" if sub.fields else "", f"kinds {', '.join(sub.kinds)}",
            "K-visa only" if sub.relevant_only else "all alerts"]))
        state = states.get(sub.id, Counter())
        click.echo(f"{sub.id}: {channels}; {when}; {filters}")
        click.echo(f"    matches {would[sub.id]} recent alerts; deliveries: {state.get('pending', 0)} pending, {state.get('sent', 0)} sent")


@main.command("digest")
@click.option("--subscriber", "subscriber_id", metavar="ID", help="Only this subscriber.")
@click.option("--dry-run", is_flag=True, required=True, help="Print what would be sent; send nothing (required).")
@click.option("--format", "fmt", type=click.Choice(["text", "html", "slack"]), default="text", show_default=True)
@click.pass_obj
@fail_cleanly
def digest_cmd(obj: Context, subscriber_id: str | None, dry_run: bool, fmt: str) -> None:
    """Print the digest each subscriber would receive now, in text, HTML or Slack JSON."""
    from notifier.deliver import preview
    from notifier.digest import as_json, render_html, render_slack, render_text

    subs = obj.subscribers()
    if subscriber_id is not None:
        subs = tuple(s for s in subs if s.id == subscriber_id)
        if not subs:
            raise NotFound(f"no subscriber with id {subscriber_id!r} in {obj.subscribers_path}")
    digests = preview(obj.engine(), subs)
    if not digests:
        click.echo("nothing to send", err=True)
    for digest in digests:
        if fmt == "slack":
            click.echo(as_json([payload for _, payload in render_slack(digest)]))
        else:
            click.echo(render_html(digest) if fmt == "html" else render_text(digest))


@main.command("deliver")
@click.pass_obj
@fail_cleanly
def deliver_cmd(obj: Context) -> None:
    """Send the digests that are due; failed deliveries stay queued and are retried later."""
    from notifier.deliver import deliver

    subscribers = obj.subscribers()
    engine = make_engine(obj.db_url)
    with run_lock(engine):  # two deliveries at once would both send what is due
        summary = deliver(prepare(engine), subscribers)
    click.echo(_deliver_line(summary))


def _deliver_line(summary: Any) -> str:
    failed = f"; {len(summary.failures)} failed (will retry): " + "; ".join(summary.failures) if summary.failures else ""
    return f"queued {summary.queued}, sent {summary.messages} messages covering {summary.delivered} deliveries{failed}"


@main.command("run")
@click.pass_obj
@fail_cleanly
def run_cmd(obj: Context) -> None:
    """One crawl cycle, then the digests that are due: the command for cron or a systemd timer."""
    from crawler.cycle import run_cycle
    from notifier.deliver import DeliverySummary, deliver

    watchlist = obj.watchlist()
    subscribers = _subscribers_if_any(obj)
    engine = make_engine(obj.db_url)
    with run_lock(engine):
        prepare(engine)
        summary = run_cycle(engine, watchlist, (), obj.log_level, progress=sys.stderr.isatty())
        sent = deliver(engine, subscribers) if subscribers else DeliverySummary()
    outcomes, failed = summary.outcomes, summary.failed
    note = "" if subscribers else f" (no subscribers: {obj.subscribers_path} not found)"
    click.echo(f"run: {sum(outcomes.values())} pages fetched, {outcomes.get('not_modified', 0)} unchanged (304), {failed} failed, "
               f"{summary.new_snapshots} changed; {sum(summary.alerts.values())} alerts; {sent.messages} messages sent{note}"
               + (f"; {len(sent.failures)} deliveries failed (will retry)" if sent.failures else ""))


def _subscribers_if_any(obj: Context) -> tuple[Subscriber, ...]:
    """The subscribers, or () when the default file does not exist (an explicit path must exist)."""
    from pathlib import Path

    if obj.subscribers_path == "subscribers.toml" and not Path(obj.subscribers_path).exists():
        return ()
    return obj.subscribers()


@main.command("serve")
@click.option("--tick", type=float, default=60.0, show_default=True, help="Seconds between scheduler ticks (each crawls whatever is due).")
@click.pass_obj
@fail_cleanly
def serve_cmd(obj: Context, tick: float) -> None:
    """Run as a daemon: poll each page at its own interval, send digests on time, stop cleanly on SIGTERM."""
    from kvwatch.daemon import DaemonSettings, serve

    obj.watchlist()  # fail fast on a bad watchlist
    serve(DaemonSettings(obj.db_url, obj.watchlist_path, obj.subscribers_path, tick, obj.verbose, obj.log_json, obj.explicit_level))


@main.command("doctor")
@click.pass_obj
def doctor_cmd(obj: Context) -> None:
    """Check the watchlist, subscribers, database, migrations, SMTP and Slack settings; say what is wrong."""
    from kvwatch.doctor import run_checks

    checks = run_checks(obj.db_url, obj.watchlist_path, obj.subscribers_path)
    for check in checks:
        click.echo(f"{'ok  ' if check.ok else 'FAIL'} {check.name:20} {check.detail}")
    if not all(c.ok for c in checks):
        sys.exit(1)


@main.command("export")
@click.argument("kind", type=click.Choice(["snapshots", "alerts", "facts"]))
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--page", "page_id", metavar="ID", help="Only this page.")
@click.option("--since", metavar="DATE", help="Only rows from this ISO date/time (UTC) on.")
@click.pass_obj
@fail_cleanly
def export_cmd(obj: Context, kind: str, fmt: str, page_id: str | None, since: str | None) -> None:
    """Export snapshots, alerts or facts as JSON or CSV on stdout."""
    from store.export import rows, write

    with session_scope(obj.engine()) as session:
        write(rows(session, kind, page_id, _parse_time(since) if since else None), fmt, sys.stdout)  # type: ignore[arg-type]


@main.command("prune")
@click.option("--fetches-older-than", "fetch_days", type=int, default=90, show_default=True, metavar="DAYS", envvar="KVWATCH_PRUNE_FETCH_DAYS",
              help="Delete fetch attempts older than this (each page's newest good one and its open failure streak are kept).")
@click.option("--raw-older-than", "raw_days", type=int, default=365, show_default=True, metavar="DAYS", envvar="KVWATCH_PRUNE_RAW_DAYS",
              help="Drop raw bodies of snapshots last seen before this (normalized text is kept).")
@click.pass_obj
@fail_cleanly
def prune_cmd(obj: Context, fetch_days: int, raw_days: int) -> None:
    """Delete old fetch attempts and raw bodies; distinct snapshots are history and are kept forever."""
    from datetime import timedelta

    from store.db import utcnow
    from store.prune import prune

    now = utcnow()
    engine = make_engine(obj.db_url)
    with run_lock(engine):
        with session_scope(prepare(engine)) as session:
            done = prune(session, now - timedelta(days=fetch_days), now - timedelta(days=raw_days))
    click.echo(f"pruned {done.fetches} fetch attempts and {done.raw_bodies} raw bodies")


@main.command("demo")
def demo_cmd() -> None:
    """Show kvwatch end to end with no network: a bundled page, a K-visa fact change, the alert, diff and digest."""
    from kvwatch.demo import run_demo

    run_demo(click.echo)
