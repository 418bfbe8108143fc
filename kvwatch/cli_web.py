"""`kvwatch web` (the read-only web page, its JSON API and Atom feeds) and `kvwatch feed` (an Atom
file for people who publish a static feed from cron)."""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import TYPE_CHECKING

import click

from kvwatch.cli import Context, fail_cleanly, main
from store.errors import DatabaseUnavailable, UsageError

if TYPE_CHECKING:
    from sqlalchemy import Engine

TOKEN_VARIABLE = "KVWATCH_WEB_TOKEN"  # the web page's token: from the environment only, never the command line


def _loopback(host: str) -> bool:
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (OSError, ValueError):
        return False


def _engine(obj: Context) -> Engine:
    from store.db import readonly_engine, schema_revision

    engine = readonly_engine(obj.db_url)
    current, head = schema_revision(engine)
    if current != head:
        raise DatabaseUnavailable(f"the database is at schema {current or 'none'}, not {head}: run `kvwatch crawl` (or any command that writes) once first")
    return engine


@main.command("web")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (anything but loopback needs $KVWATCH_WEB_TOKEN).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to bind.")
@click.pass_obj
@fail_cleanly
def web_cmd(obj: Context, host: str, port: int) -> None:
    """Serve the read-only web page: K visa now, pages, histories and diffs, field timelines, alerts, Atom feeds, JSON API."""
    import uvicorn

    from kvwatch.web.app import create_app

    token = os.environ.get(TOKEN_VARIABLE, "")
    if not _loopback(host) and not token:
        raise UsageError(f"binding {host} (not loopback) needs a token: set {TOKEN_VARIABLE} (clients then send it as the "
                         "HTTP Basic password or a Bearer token)")
    app = create_app(_engine(obj), os.environ.get("KVWATCH_PUBLIC_URL", ""), token)
    click.echo(f"kvwatch web: http://{host}:{port}/ (read-only{', token required' if token else ''}; Ctrl-C stops)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


@main.command("feed")
@click.option("--kind", type=click.Choice(["content", "new_link", "health", "fact"]), help="Only this kind of alert.")
@click.option("--relevant", is_flag=True, help="Only alerts about the K visa.")
@click.option("--field", metavar="F", help="Only fact alerts about this field (stay_duration, validity…).")
@click.option("--page", "page_id", metavar="ID", help="Only this page's alerts.")
@click.option("--tag", metavar="KEY:VALUE", help="Only pages with this tag (country:ke).")
@click.option("--since", metavar="DATE", help="Only alerts from this ISO date/time (UTC) on.")
@click.pass_obj
@fail_cleanly
def feed_cmd(obj: Context, kind: str | None, relevant: bool, field: str | None, page_id: str | None, tag: str | None, since: str | None) -> None:
    """Print an Atom feed of alerts (links use $KVWATCH_PUBLIC_URL): kvwatch feed --relevant > k-visa.atom"""
    from kvwatch.cli import parse_time
    from kvwatch.web.feeds import atom
    from kvwatch.web.views import alert_filters, alerts_view
    from store.db import session_scope

    moment = parse_time(since) if since else None
    filters = alert_filters(kind, relevant, field, page_id, tag, moment)
    with session_scope(_engine(obj)) as session:
        data = alerts_view(session, filters, 100)
    shown = {key: value for key, value in filters.items() if isinstance(value, str)} | {"since": since or ""}
    click.echo(atom(data["alerts"], shown, os.environ.get("KVWATCH_PUBLIC_URL", "http://127.0.0.1:8080").rstrip("/")).decode(), nl=False)
