"""Commands that run kvwatch: crawl, run, serve, test, reprocess, doctor, prune, demo."""

from __future__ import annotations

import sys
from typing import Any

import click

from kvwatch.cli import Context, echo_json, fail_cleanly, iso, main, parse_time
from kvwatch.cli_notify import delivery_json


def distributed(func: Any) -> Any:
    """--workers, --batch and --cycle-timeout: fetch through the fetch workers instead of in this process."""
    func = click.option("--cycle-timeout", type=click.FloatRange(1), default=3600.0, show_default=True, metavar="SECONDS",
                        help="With --workers: pages no worker fetched by then are recorded interrupted.")(func)
    func = click.option("--batch", type=click.IntRange(0), default=0, show_default=True,
                        help="With --workers: pages per job; 0 sizes jobs so each live worker gets about two (20 to 500 pages).")(func)
    return click.option("--workers", is_flag=True, help="Fetch through the fetch workers (kvwatch worker) via the broker in $KVWATCH_BROKER; "
                        "analysis and delivery still run here, once.")(func)


def one_cycle(obj: Context, engine: Any, only: tuple[str, ...], progress: bool, workers: bool, batch: int, cycle_timeout: float) -> Any:
    if workers:
        from crawler.dispatch import run_distributed

        return run_distributed(engine, obj.watchlist(), only, batch, cycle_timeout)
    from crawler.cycle import run_cycle

    return run_cycle(engine, obj.watchlist(), only, obj.log_level, progress=progress)


@main.command()
@click.option("--only", multiple=True, metavar="ID", help="Fetch only this page (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@distributed
@click.pass_obj
@fail_cleanly
def crawl(obj: Context, only: tuple[str, ...], as_json: bool, workers: bool, batch: int, cycle_timeout: float) -> None:
    """Run one poll cycle: fetch every enabled page once and record what happened."""
    from store.db import make_engine, prepare
    from store.lock import run_lock

    obj.watchlist()
    engine = make_engine(obj.db_url)
    with run_lock(engine):
        summary = one_cycle(obj, prepare(engine), only, sys.stderr.isatty() and not as_json, workers, batch, cycle_timeout)
    if as_json:
        echo_json(crawl_json(summary))
    else:
        click.echo(crawl_line(summary))


def crawl_json(summary: Any) -> dict[str, Any]:
    return {"started_at": iso(summary.started_at), "finished_at": iso(summary.finished_at), "pages": summary.pages, "linked": summary.linked,
            "outcomes": dict(summary.outcomes), "failed": summary.failed, "new_snapshots": summary.new_snapshots, "alerts": dict(summary.alerts),
            "cpu_seconds": dict(summary.cpu)}


def crawl_line(summary: Any) -> str:
    parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(summary.outcomes.items()))
    raised = sum(summary.alerts.values())
    kinds = f" ({', '.join(f'{n} {k}' for k, n in sorted(summary.alerts.items()))})" if raised else ""
    linked = f" (+{summary.linked} linked)" if summary.linked else ""
    return f"crawled {summary.pages} pages{linked}: {parts or 'nothing fetched'}; {summary.new_snapshots} new snapshots; {raised} alerts{kinds}"


@main.command("run")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@distributed
@click.pass_obj
@fail_cleanly
def run_cmd(obj: Context, as_json: bool, workers: bool, batch: int, cycle_timeout: float) -> None:
    """One crawl cycle, then the digests that are due: the command for cron or a systemd timer."""
    from notifier.deliver import DeliverySummary, deliver
    from store.db import make_engine, prepare
    from store.lock import run_lock

    obj.watchlist()
    subscribers = obj.subscribers_if_any()
    engine = make_engine(obj.db_url)
    with run_lock(engine):
        prepare(engine)
        summary = one_cycle(obj, engine, (), sys.stderr.isatty() and not as_json, workers, batch, cycle_timeout)
        sent = deliver(engine, subscribers) if subscribers else DeliverySummary()
    if as_json:
        echo_json({"crawl": crawl_json(summary), "delivery": delivery_json(sent), "subscribers_file": obj.subscribers_path if subscribers else None})
        return
    outcomes, failed = summary.outcomes, summary.failed
    note = "" if subscribers else f" (no subscribers: {obj.subscribers_path} not found)"
    click.echo(f"run: {sum(outcomes.values())} pages fetched, {outcomes.get('not_modified', 0)} unchanged (304), {failed} failed, "
               f"{summary.new_snapshots} changed; {sum(summary.alerts.values())} alerts; {sent.messages} messages sent{note}"
               + (f"; {len(sent.failures)} deliveries failed (will retry)" if sent.failures else ""))


@main.command("serve")
@click.option("--tick", type=float, default=60.0, show_default=True, help="Seconds between scheduler ticks (each crawls whatever is due).")
@distributed
@click.pass_obj
@fail_cleanly
def serve_cmd(obj: Context, tick: float, workers: bool, batch: int, cycle_timeout: float) -> None:
    """Run as a daemon: poll each page at its own interval, send digests on time, stop cleanly on SIGTERM."""
    from kvwatch.daemon import DaemonSettings, serve

    obj.watchlist()  # fail fast on a bad watchlist
    if workers:  # fail fast on a missing or unreachable broker
        from crawler.dispatch import require_broker

        require_broker()
    distributed = ("--workers", "--batch", str(batch), "--cycle-timeout", f"{cycle_timeout:g}") if workers else ()
    serve(DaemonSettings(obj.db_url, obj.watchlist_path, obj.subscribers_path, tick, obj.verbose, obj.log_json, obj.explicit_level, distributed,
                        max(3600.0, cycle_timeout + 1800) if workers else 3600.0))


@main.command("test")
@click.argument("target", metavar="URL|ID")
@click.option("--selector", metavar="CSS", help="Try this main-text selector instead of the page's.")
@click.option("--kind", type=click.Choice(["auto", "html", "listing", "pdf", "status"]), help="Try this page kind.")
@click.option("--render", type=click.Choice(["auto", "plain", "browser"]),
              help="How to fetch: plain HTTP, a browser, or auto (plain, then the browser if a JavaScript challenge blocks it); default: the page's, else auto.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@fail_cleanly
def test_cmd(obj: Context, target: str, selector: str | None, kind: str | None, render: str | None, as_json: bool) -> None:
    """Fetch a URL or watched page once and show what kvwatch would make of it; writes nothing."""
    from kvwatch.trial import trial

    result = trial(obj, target, selector, kind, render)
    if as_json:
        echo_json(result)
        return
    click.echo(f"# {result['url']}\n# outcome: {result['outcome']}{': ' + result['reason'] if result['reason'] else ''} (via {result['via']})")
    if result["outcome"] != "ok":
        raise SystemExit(1)
    click.echo(f"# region: {result['region']}\n# title: {result['title']}\n\n{result['text']}")
    if result["links"]:
        click.echo("\n# links")
        for link in result["links"]:
            click.echo(f"{link['text']}\t{link['url']}")
    click.echo("\n# K-visa facts" + ("" if result["facts"] else ": none"))
    for fact in result["facts"]:
        click.echo(f"{fact['field']}: {fact['value']}\n    “{fact['evidence']}”")


@main.command("reprocess")
@click.option("--page", "page_id", metavar="ID", help="Only this page (default: every page).")
@click.option("--since", metavar="DATE", help="Only snapshots from this ISO date/time (UTC) on.")
@click.option("--deliver-backfill", is_flag=True, help="Deliver the historical fact changes it newly finds as news (default: store them, marked backfilled).")
@click.pass_obj
@fail_cleanly
def reprocess_cmd(obj: Context, page_id: str | None, since: str | None, deliver_backfill: bool) -> None:
    """Re-run analysis (facts, their timeline, relevance) over stored snapshots, fetching nothing."""
    from crawler.reprocess import reprocess
    from store import pages as pages_mod
    from store.db import make_engine, prepare, session_scope
    from store.lock import run_lock

    moment = parse_time(since) if since else None
    engine = make_engine(obj.db_url)
    with run_lock(engine):
        prepare(engine)
        if page_id is not None:
            with session_scope(engine) as session:
                pages_mod.get(session, page_id)
        done = reprocess(engine, page_id, moment, deliver_backfill)
    click.echo(f"reprocessed {done.snapshots} snapshots of {done.pages} pages: {done.timeline_rows} fact timeline rows; "
               f"{done.backfilled} backfilled alerts{' (queued for delivery)' if deliver_backfill and done.backfilled else ''}; "
               f"{done.relevance_changed} relevance changes")


@main.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def doctor_cmd(obj: Context, as_json: bool) -> None:
    """Check the files used, watchlist, subscribers, database, migrations, SMTP and channel settings; say what is wrong."""
    from kvwatch.doctor import run_checks

    checks = run_checks(obj.db_url, obj.watchlist_path, obj.subscribers_path, obj.files.how)
    if as_json:
        echo_json([{"ok": c.ok, "warn": c.warn, "name": c.name, "detail": c.detail} for c in checks])
    else:
        for check in checks:
            click.echo(f"{'FAIL' if not check.ok else 'WARN' if check.warn else 'ok  '} {check.name:20} {check.detail}")
    if not all(c.ok for c in checks):
        sys.exit(1)


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

    from store.db import make_engine, prepare, session_scope, utcnow
    from store.lock import run_lock
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
