"""Commands about subscribers and delivery: subscribers, digest, deliver, notify-test."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from kvwatch.cli import Context, echo_json, fail_cleanly, main
from store.errors import NotFound


@main.command("subscribers")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
@fail_cleanly
def subscribers_cmd(obj: Context, as_json: bool) -> None:
    """List subscribers: channels, cadence, filters, which missions they follow, and their deliveries."""
    from notifier.deliver import sync, wanted
    from store.db import session_scope, utcnow
    from store.deliveries import failed_by_subscriber, state_by_subscriber
    from store.pages import followed_missions, missions_followed

    subs = obj.subscribers()
    engine = obj.engine()
    sync(engine, subs)
    with session_scope(engine) as session:
        states = state_by_subscriber(session)
        failed = failed_by_subscriber(session)
        would = {s.id: len(wanted(session, s, utcnow())) for s in subs}
        watched = [(p.id, dict(p.tags)) for p in obj.watchlist().pages] if Path(obj.watchlist_path).exists() else None
        follows = {s.id: missions_followed(watched, s.tags, s.pages) if watched is not None else followed_missions(session, s.tags, s.pages)
                   for s in subs}
    rows: list[dict[str, Any]] = []
    for sub in subs:
        state = states.get(sub.id, Counter())
        rows.append({"id": sub.id, "channels": list(sub.channels), "email": list(sub.email), "slack": sub.slack, "apprise": list(sub.apprise),
                     "webhook": sub.webhook, "cadence": sub.cadence, "at": sub.at.strftime("%H:%M"), "timezone": sub.timezone,
                     "pages": list(sub.pages), "tags": dict(sub.tags), "fields": list(sub.fields), "kinds": list(sub.kinds),
                     "relevant_only": sub.relevant_only, "matching_alerts": would[sub.id], "pending": state.get("pending", 0),
                     "sent": state.get("sent", 0), "failed": state.get("failed", 0), "failed_because": failed.get(sub.id, {}),
                     "follows_missions": follows[sub.id]})
    if as_json:
        echo_json(rows)
        return
    for sub, row in zip(subs, rows):
        when = sub.cadence if sub.cadence == "immediate" else f"{sub.cadence} at {sub.at:%H:%M} {sub.timezone}"
        filters = "; ".join(filter(None, [
            f"pages {', '.join(sub.pages)}" if sub.pages else "", f"tags {dict(sub.tags)}" if sub.tags else "",
            f"fields {', '.join(sub.fields)}" if sub.fields else "", f"kinds {', '.join(sub.kinds)}",
            "K-visa only" if sub.relevant_only else "all alerts"]))
        click.echo(f"{sub.id}: {', '.join(_channel_labels(sub))}; {when}; {filters}")
        if row["follows_missions"]:
            click.echo(f"    follows {len(row['follows_missions'])} missions: {', '.join(row['follows_missions'][:8])}"
                       + (" …" if len(row["follows_missions"]) > 8 else ""))
        click.echo(f"    matches {row['matching_alerts']} recent alerts; deliveries: {row['pending']} pending, {row['sent']} sent"
                   + (f", {row['failed']} FAILED for good" if row["failed"] else ""))
        for channel, reason in row["failed_because"].items():
            click.echo(f"    FAILED {channel}: {reason} — fix the channel, then see the README (Delivery failures)")


def _channel_labels(sub: Any) -> list[str]:
    return ([f"email {', '.join(sub.email)}"] if sub.email else []) + ([f"slack ${sub.slack}"] if sub.slack else []) \
        + [f"apprise ${name}" for name in sub.apprise] + ([f"webhook ${sub.webhook}"] if sub.webhook else [])


@main.command("digest")
@click.option("--subscriber", "subscriber_id", metavar="ID", help="Only this subscriber.")
@click.option("--dry-run", is_flag=True, help="Accepted for clarity: `digest` only ever prints, it never sends.")
@click.option("--format", "fmt", type=click.Choice(["text", "html", "slack"]), default="text", show_default=True)
@click.pass_obj
@fail_cleanly
def digest_cmd(obj: Context, subscriber_id: str | None, dry_run: bool, fmt: str) -> None:
    """Print the digest each subscriber would receive now (text, HTML or Slack JSON); sends nothing."""
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
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.pass_obj
@fail_cleanly
def deliver_cmd(obj: Context, as_json: bool) -> None:
    """Send the digests that are due; failed deliveries stay queued and are retried later."""
    from notifier.deliver import deliver
    from store.db import make_engine, prepare
    from store.lock import run_lock

    subscribers = obj.subscribers()
    engine = make_engine(obj.db_url)
    with run_lock(engine):  # two deliveries at once would both send what is due
        summary = deliver(prepare(engine), subscribers)
    if as_json:
        echo_json(delivery_json(summary))
    else:
        click.echo(deliver_line(summary))


def delivery_json(summary: Any) -> dict[str, Any]:
    return {"queued": summary.queued, "messages": summary.messages, "delivered": summary.delivered, "failures": list(summary.failures)}


def deliver_line(summary: Any) -> str:
    failed = f"; {len(summary.failures)} failed: " + "; ".join(summary.failures) if summary.failures else ""
    return f"queued {summary.queued}, sent {summary.messages} messages covering {summary.delivered} deliveries{failed}"


@main.command("notify-test")
@click.option("--subscriber", "subscriber_id", metavar="ID", required=True, help="The subscriber whose channels to test.")
@click.option("--channel", "only", metavar="C", help="Only this channel (email, slack, webhook, apprise:VAR).")
@click.pass_obj
@fail_cleanly
def notify_test_cmd(obj: Context, subscriber_id: str, only: str | None) -> None:
    """Send one clearly marked test message through each of a subscriber's channels and say what each answered."""
    from notifier.deliver import test_message

    subs = {s.id: s for s in obj.subscribers()}
    if subscriber_id not in subs:
        raise NotFound(f"no subscriber with id {subscriber_id!r} in {obj.subscribers_path}")
    results = test_message(subs[subscriber_id], only)
    for channel, ok, said in results:
        click.echo(f"{'ok  ' if ok else 'FAIL'} {channel:24} {said}")
    if not all(ok for _, ok, _ in results):
        raise SystemExit(1)
