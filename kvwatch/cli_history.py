"""Commands about what pages said and what changed: pages, history, show, diff, alerts, facts, export."""

from __future__ import annotations

import io
import sys
from datetime import datetime
from typing import Any

import click

from kvwatch.cli import Context, echo_json, fail_cleanly, iso, main, parse_time, when
from store.errors import NotFound


@main.command("pages")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
@fail_cleanly
def pages_cmd(obj: Context, as_json: bool) -> None:
    """Each page's health: last good fetch, last change, consecutive failures and why."""
    from store import pages as pages_mod
    from store.db import session_scope

    with session_scope(obj.engine()) as session:
        rows = pages_mod.health(session)
    if as_json:
        echo_json([vars(r) for r in rows])
        return
    click.echo(f"{'PAGE':34} {'LAST GOOD':21} {'LAST CHANGE':21} {'SNAPS':>5} {'FAILS':>5}  STATUS")
    for r in rows:
        status = "disabled" if not r.enabled else (f"{r.last_outcome}: {r.reason}" if r.failures else (r.last_outcome or "never fetched"))
        status += f" (moved to {r.moved_to})" if r.moved_to else ""
        status += " (via browser)" if r.via == "browser" else ""
        status += f" (from {r.region})" if r.region else ""
        click.echo(f"{r.id:34} {when(r.last_good):21} {when(r.last_change):21} {r.snapshots:>5} {r.failures:>5}  {status}")


@main.command()
@click.argument("page_id")
@click.option("--attempts", is_flag=True, help="List fetch attempts instead of snapshots.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@fail_cleanly
def history(obj: Context, page_id: str, attempts: bool, as_json: bool) -> None:
    """List a page's distinct snapshots (or its fetch attempts), oldest first."""
    from store import pages as pages_mod
    from store import snapshots as snapshots_mod
    from store.db import session_scope

    rows: list[dict[str, Any]]
    with session_scope(obj.engine()) as session:
        pages_mod.get(session, page_id)
        if attempts:
            rows = [{"started_at": iso(f.started_at), "url": f.url, "outcome": f.outcome, "status": f.status, "bytes": f.bytes,
                     "duration_ms": f.duration_ms, "via": f.via, "region": f.region, "reason": f.reason} for f in reversed(snapshots_mod.attempts(session, page_id, limit=200))]
        else:
            snaps = snapshots_mod.history(session, page_id)
            rows = [{"number": n, "id": s.id, "first_seen": s.first_seen, "last_seen": s.last_seen, "hash": s.hash, "chars": len(s.text),
                     "title": s.title, "region": s.region} for n, s in enumerate(snaps, start=1)]
    if as_json:
        echo_json(rows)
    elif attempts:
        for f in rows:
            click.echo(f"{f['started_at']}  {f['outcome']:12} {f['status'] or '-':>4} {f['bytes']:>8}B {f['duration_ms']:>6}ms {f['via']:7} {f['region'] or '-':8}  {f['reason']}")
    else:
        click.echo(f"{'#':>4} {'ID':>7}  {'FIRST SEEN':21}   {'LAST SEEN':21}  {'HASH':12}  {'CHARS':>6}  TITLE")
        for s in rows:
            click.echo(f"{s['number']:>4} {'id:' + str(s['id']):>7}  {when(s['first_seen']):21} → {when(s['last_seen']):21}  {s['hash'][:12]}  {s['chars']:>6}  {s['title'][:50]}")


@main.command()
@click.argument("page_id")
@click.option("--at", "at", metavar="N|id:ID|DATE", help="A snapshot number from `history` (1 is the first), id:ID, or an ISO date/time (UTC).")
@click.option("--raw", is_flag=True, help="Print the raw body as fetched instead of the normalized text.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: the snapshot's text, links and times.")
@click.pass_obj
@fail_cleanly
def show(obj: Context, page_id: str, at: str | None, raw: bool, as_json: bool) -> None:
    """Print a page's normalized text (and links) as of now, a snapshot or a date."""
    from store import pages as pages_mod
    from store import snapshots as snapshots_mod
    from store.db import session_scope

    with session_scope(obj.engine()) as session:
        pages_mod.get(session, page_id)
        snap = snapshots_mod.resolve(session, page_id, at)
        if raw:
            body = snapshots_mod.raw_body(snap)
            if body is None:
                raise NotFound(f"snapshot {snap.id}: the raw body was pruned")
            sys.stdout.buffer.write(body)
            return
    if as_json:
        echo_json({"page_id": page_id, "snapshot": snap.id, "first_seen": iso(snap.first_seen), "last_seen": iso(snap.last_seen),
                   "title": snap.title, "text": snap.text, "links": [{"text": t, "url": u} for t, u in snap.links]})
        return
    click.echo(f"# {page_id} snapshot {snap.id}, seen {when(snap.first_seen)} → {when(snap.last_seen)}")
    click.echo(snap.text)
    if snap.links:
        click.echo("\n# links")
        for text, url in snap.links:
            click.echo(f"{text}\t{url}")


@main.command("diff")
@click.argument("page_id")
@click.option("--from", "from_", metavar="N|id:ID|DATE", help="Older side: a snapshot number from `history` (1 is the first), id:ID, or a date (default: the one before --to).")
@click.option("--to", "to", metavar="N|id:ID|DATE", help="Newer side (default: the current snapshot).")
@click.option("--format", "fmt", type=click.Choice(["text", "html", "json"]), default="text", show_default=True)
@click.pass_obj
@fail_cleanly
def diff_cmd(obj: Context, page_id: str, from_: str | None, to: str | None, fmt: str) -> None:
    """Show what changed on a page between two snapshots (coloured in a terminal, plain when piped)."""
    from crawler.analyse import comparable
    from store import pages as pages_mod
    from store import snapshots as snapshots_mod
    from store.alerts import earlier_snapshots
    from store.db import session_scope
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
        echo_json({"page_id": page_id, "from": old.id, "to": new.id, "spans": result.spans()})
    elif fmt == "html":
        click.echo(result.render_html())
    else:
        click.echo(f"# {page_id}: snapshot {old.id} ({when(old.first_seen)}) → {new.id} ({when(new.first_seen)})")
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
    from store.db import session_scope
    from store.deliveries import state_by_alert

    moment = parse_time(since) if since else None
    with session_scope(obj.engine()) as session:
        rows = [alerts_mod.to_json(a) for a in alerts_mod.query(session, moment, page_id, kind)]
        states = state_by_alert(session)
    if as_json:
        echo_json(rows)
        return
    for row in rows:
        flag = "K" if row["relevant"] else " "
        state = states.get(row["id"])
        sent = f"{state['sent']}/{sum(state.values())} sent" if state else "not queued"
        detected = datetime.fromisoformat(row["detected_at"].removesuffix("Z"))
        click.echo(f"{row['id']:>5} {when(detected)} {flag} {row['kind']:8} {row['page_id']:30} {sent:12} {row['summary']}")


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
    from store.db import session_scope

    if field is not None and field not in FIELDS:
        raise NotFound(f"unknown field {field!r} (valid fields: {', '.join(FIELDS)})")
    moment = parse_time(at, end_of_day=True) if at else None
    from store import pages as pages_mod

    with session_scope(obj.engine()) as session:
        rows = fact_store.as_of(session, moment, field)
        failing = {h.id: h.failing_since for h in pages_mod.health(session) if h.failures}
        data: list[dict[str, Any]] = [{"field": f.field, "value": f.value, "page_id": f.page_id, "url": p.url, "tier": f.tier, "since": iso(f.valid_from),
                                       "evidence": f.evidence, "stale_since": iso(failing.get(f.page_id)) if moment is None else None} for f, p in rows]
        conflicts = fact_store.disagreements(rows)
    if as_json:
        echo_json({"at": iso(moment), "facts": data, "disagreements": conflicts})
        return
    order = {name: i for i, name in enumerate(FIELDS)}
    table = [[("!" if r["field"] in conflicts else "") + ("~" if r["stale_since"] else ""), fact_store.label(r["field"]),
              fact_store.humanize(r["field"], r["value"])[:60], r["page_id"], r["tier"], str(r["since"])[:10]]
             for r in sorted(data, key=lambda r: (order.get(r["field"], 99), r["page_id"]))]
    click.echo(columns([["", "FIELD", "VALUE", "SOURCE", "TIER", "SINCE"], *table]))
    for name, values in conflicts.items():
        click.echo(f"! sources disagree on {fact_store.label(name)}: " + "; ".join(f"{fact_store.humanize(name, v)} ({', '.join(ids)})" for v, ids in values.items()))
    for page_id, since in sorted(failing.items()):
        if any(r["page_id"] == page_id for r in data) and moment is None:
            click.echo(f"~ {page_id} has been failing since {when(since)}: its values are the last it said")
    click.echo("legend: ! official sources disagree on this field · ~ stale: the page is failing now, so this is its last good value"
               " · tiers: decree, qa, ministry, mission, visa-centre are official; other (blogs, rumours) never count")


def columns(rows: list[list[str]]) -> str:
    """Rows aligned by display width: a Chinese character takes two cells of a terminal."""
    widths = [max(display_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell + " " * (widths[i] - display_width(cell)) for i, cell in enumerate(row)).rstrip() for row in rows)


def display_width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 0 if unicodedata.combining(c) else 1 for c in text)


@main.command("export")
@click.argument("kind", type=click.Choice(["snapshots", "alerts", "facts"]))
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True)
@click.option("--excel", is_flag=True, help="CSV for Excel: UTF-8 with a byte-order mark, so Chinese text opens ungarbled.")
@click.option("--page", "page_id", metavar="ID", help="Only this page.")
@click.option("--since", metavar="DATE", help="Only rows from this ISO date/time (UTC) on.")
@click.pass_obj
@fail_cleanly
def export_cmd(obj: Context, kind: str, fmt: str, excel: bool, page_id: str | None, since: str | None) -> None:
    """Export snapshots, alerts or facts as JSON or CSV on stdout."""
    from store.db import session_scope
    from store.export import rows, write

    moment = parse_time(since) if since else None
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8-sig" if excel and fmt == "csv" else "utf-8", newline="" if fmt == "csv" else None)
    with session_scope(obj.engine()) as session:
        write(kind, rows(session, kind, page_id, moment), fmt, out)
    out.flush()
    out.detach()
