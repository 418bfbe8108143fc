"""Commands for fetch workers in several regions: worker, workers (and worker-batch, the worker's child)."""

from __future__ import annotations

import ipaddress
import json
import sys

import click

from kvwatch.cli import Context, echo_json, fail_cleanly, main
from store.errors import UsageError


@main.command("worker")
@click.option("--region", metavar="NAME", help="This worker's region (cn, eu, sg…): it takes the pages that name it, and pages that name none.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=1, show_default=True, help="Jobs (batches of pages) fetched at once.")
@click.option("--source-address", metavar="IP", help="The local address fetches leave from (a machine with several).")
@click.pass_obj
@fail_cleanly
def worker_cmd(obj: Context, region: str | None, concurrency: int, source_address: str | None) -> None:
    """Fetch pages for `kvwatch serve --workers` or `kvwatch run --workers`, from the task broker in
    $KVWATCH_BROKER, into the shared PostgreSQL store. Stops after its running jobs on SIGTERM."""
    from crawler.watchlist import REGION_RE
    from crawler.worker import WorkerSettings, serve
    from kvwatch.daemon import DaemonSettings

    if region is not None and not REGION_RE.match(region):
        raise UsageError(f"{region!r} is not a region name (lower-case letters, digits and '-', like cn or eu-west)")
    _address(source_address)
    obj.watchlist()  # a worker with a broken watchlist fails now, not at its first job
    command, _ = DaemonSettings(obj.db_url, obj.watchlist_path, obj.subscribers_path, 0, obj.verbose, obj.log_json, obj.explicit_level).child_command()
    serve(WorkerSettings(obj.db_url, region, concurrency, source_address, tuple(command)))


@main.command("worker-batch", hidden=True)
@click.option("--region", metavar="NAME")
@click.option("--source-address", metavar="IP")
@click.pass_obj
@fail_cleanly
def worker_batch_cmd(obj: Context, region: str | None, source_address: str | None) -> None:
    """A worker's child: fetch the job read from stdin (JSON), then exit."""
    from crawler.dispatch import Job
    from crawler.worker import die_with_parent, run_batch
    from store.db import make_engine, prepare

    die_with_parent()
    job = Job.from_message(json.loads(sys.stdin.read()))
    run_batch(prepare(make_engine(obj.db_url)), obj.watchlist(), job, region, _address(source_address), obj.log_level)


@main.command("workers")
@click.option("--timeout", type=float, default=2.0, show_default=True, help="Seconds to wait for workers to answer.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@fail_cleanly
def workers_cmd(obj: Context, timeout: float, as_json: bool) -> None:
    """The live fetch workers: name, regions, and what each is doing."""
    from crawler.dispatch import live_workers

    workers = live_workers(timeout)
    if as_json:
        echo_json([{"name": w.name, "regions": list(w.regions), "jobs": list(w.jobs)} for w in workers])
        return
    if not workers:
        click.echo(f"no worker answered within {timeout:g} s")
        return
    for w in workers:
        click.echo(f"{w.name}  regions {', '.join(w.regions)}  {'; '.join(w.jobs) or 'idle'}")


def _address(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise UsageError(f"{value!r} is not an IP address") from None
