"""Digests: a subscriber's undelivered alerts → one message, in text, HTML and Slack Block Kit.

Order: fact changes first, as headlines ("K visa — stay per entry: 90 days → 180 days (Embassy in
Y, 2026-11-25 10:02 CST)") with the evidence sentence; then new K-visa notices and documents; then
other relevant content changes with a diff excerpt; page health last. Page text is escaped in HTML
(Jinja2 autoescape) and only ever placed in Slack `plain_text` fields, so `<script>`, `<!channel>`
or Markdown link syntax arrive as inert text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from notifier.subscribers import Subscriber
from store.alerts import to_json
from store.facts import humanize, label

SLACK_MAX_BLOCKS = 45      # Slack allows 50 per message; keep room for header and footer
SLACK_MAX_TEXT = 2900      # a text object allows 3000 characters


@dataclass(frozen=True)
class Headline:
    text: str
    evidence: str
    source: str
    url: str
    alert_id: int


@dataclass(frozen=True)
class Entry:
    kind: str
    source: str
    url: str
    when: str
    summary: str
    diff: str
    links: tuple[tuple[str, str], ...]
    alert_id: int


@dataclass(frozen=True)
class Digest:
    subscriber_id: str
    subscriber_name: str
    generated: str
    headlines: tuple[Headline, ...]
    notices: tuple[Entry, ...]
    changes: tuple[Entry, ...]
    health: tuple[Entry, ...]
    payload: tuple[dict[str, Any], ...] = ()  # the alerts as `kvwatch alerts --json` prints them (for JSON webhooks)

    @property
    def alert_ids(self) -> tuple[int, ...]:
        items: tuple[Headline | Entry, ...] = (*self.headlines, *self.notices, *self.changes, *self.health)
        return tuple(sorted({x.alert_id for x in items}))

    @property
    def subject(self) -> str:
        if self.headlines:
            more = len(self.alert_ids) - 1
            return f"kvwatch: {self.headlines[0].text}" + (f" (+{more} more)" if more else "")
        return f"kvwatch: {len(self.alert_ids)} K-visa update{'s' if len(self.alert_ids) != 1 else ''}"


def build(subscriber: Subscriber, alerts: list[Any], page_names: dict[str, str], now: datetime) -> Digest:
    """A digest of `alerts` (store Alert rows, oldest first) for `subscriber`, as of its newest alert."""
    zone = ZoneInfo(subscriber.timezone)
    when = lambda moment: moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")  # noqa: E731
    headlines: list[Headline] = []
    notices: list[Entry] = []
    changes: list[Entry] = []
    health: list[Entry] = []
    for alert in alerts:
        source = page_names.get(alert.page_id) or page_names.get(alert.page_id.split("~")[0]) or alert.page_id
        if alert.kind == "fact":
            for fact in alert.facts:
                if subscriber.fields and fact["field"] not in subscriber.fields:
                    continue
                headlines.append(Headline(_headline(fact, source, when(alert.detected_at)), fact.get("evidence", ""), source, alert.url, alert.id))
            continue
        entry = Entry(alert.kind, source, alert.url, when(alert.detected_at), alert.summary, alert.diff,
                      tuple((t, u) for t, u in alert.links), alert.id)
        {"new_link": notices, "content": changes, "health": health}[alert.kind].append(entry)
    # Stamped with the newest alert's time, not the send time, so a retried digest is identical.
    stamp = max((a.detected_at for a in alerts), default=now)
    return Digest(subscriber.id, subscriber.name or subscriber.id, when(stamp), tuple(headlines), tuple(notices), tuple(changes), tuple(health),
                  tuple(to_json(a) for a in alerts))


def _headline(fact: dict[str, Any], source: str, when: str) -> str:
    field = fact["field"]
    if fact.get("added") or fact.get("removed"):
        delta = ", ".join([f"+{n}" for n in fact.get("added", [])] + [f"−{n}" for n in fact.get("removed", [])])
        return f"K visa — {label(field)}: {delta} ({source}, {when})"
    if fact.get("old") is None:
        return f"K visa — {label(field)}: {humanize(field, fact['new'])} (new; {source}, {when})"
    return f"K visa — {label(field)}: {humanize(field, fact['old'])} → {humanize(field, fact.get('new'))} ({source}, {when})"


_ENV = Environment(
    loader=PackageLoader("notifier", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
)


def render_text(digest: Digest) -> str:
    return _ENV.get_template("digest.txt.j2").render(d=digest)


def render_html(digest: Digest) -> str:
    return _ENV.get_template("digest.html.j2").render(d=digest)


def render_slack(digest: Digest) -> list[tuple[tuple[int, ...], dict[str, Any]]]:
    """Slack messages, each (the alert ids it carries, the payload); long digests are split, never truncated."""
    groups: list[tuple[int, list[dict[str, Any]]]] = []
    for h in digest.headlines:
        groups.append((h.alert_id, _plain(h.text) + _plain(f"“{h.evidence}”" if h.evidence else "") + [_link(h.url, h.source)]))
    for title, entries in (("New K-visa notices and documents", digest.notices), ("Other changes", digest.changes), ("Page health", digest.health)):
        for e in entries:
            body = f"{e.summary}\n{e.diff}" if e.diff else e.summary
            links = [_link(url, text) for text, url in e.links] or [_link(e.url, e.source)]
            groups.append((e.alert_id, _plain(f"[{title}] {body}") + links))
    messages: list[tuple[list[int], list[dict[str, Any]]]] = []
    blocks: list[dict[str, Any]] = []
    ids: list[int] = []
    header = {"type": "header", "text": {"type": "plain_text", "text": "kvwatch: K-visa updates"[:150]}}
    for alert_id, group in groups:
        if blocks and len(blocks) + len(group) > SLACK_MAX_BLOCKS:
            messages.append((ids, blocks))
            blocks, ids = [], []
        blocks.extend(group)
        if alert_id not in ids:
            ids.append(alert_id)
    if blocks:
        messages.append((ids, blocks))
    total = len(messages)
    return [
        (tuple(ids), {"text": f"kvwatch: {len(ids)} K-visa update(s) ({n}/{total})", "blocks": [header, *blocks,
                      {"type": "context", "elements": [{"type": "plain_text", "text": f"{digest.generated} · part {n} of {total}"}]}]})
        for n, (ids, blocks) in enumerate(messages, start=1)
    ]


def _plain(text: str) -> list[dict[str, Any]]:
    """Plain-text sections (never mrkdwn) of at most SLACK_MAX_TEXT characters each."""
    return [{"type": "section", "text": {"type": "plain_text", "text": text[i:i + SLACK_MAX_TEXT]}}
            for i in range(0, len(text), SLACK_MAX_TEXT)] if text else []


def _link(url: str, text: str) -> dict[str, Any]:
    return {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": (text or url)[:75]}, "url": url[:3000]}]}


def as_json(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, indent=2, sort_keys=True)


def test_digest(subscriber: Subscriber, now: datetime) -> Digest:
    """A clearly marked test message (no alerts) for `kvwatch notify-test`."""
    stamp = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(subscriber.timezone)).strftime("%Y-%m-%d %H:%M %Z")
    note = Entry("health", "kvwatch", "https://github.com/kvwatch/kvwatch", stamp,
                 "TEST MESSAGE from kvwatch: this channel works. It is not a K-visa change; nothing needs doing.", "", (), 0)
    return Digest(subscriber.id, subscriber.name or subscriber.id, stamp, (), (), (), (note,),
                  ({"id": 0, "kind": "test", "summary": note.summary, "detected_at": now.isoformat(timespec="seconds") + "Z"},))

