"""Digests: a subscriber's undelivered alerts → one message, in text, HTML and Slack Block Kit.

Order: fact changes first, as headlines ("K visa — stay per entry: 90 days → 180 days (Embassy in
Y, 2026-11-25 10:02 CST)") with the evidence sentence; then new K-visa notices and documents; then
other relevant content changes with a diff excerpt; page health last. Page text is escaped in HTML
(Jinja2 autoescape) and only ever placed in Slack `plain_text` fields, so `<script>`, `<!channel>`
or Markdown link syntax arrive as inert text.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from notifier.subscribers import Subscriber
from store.alerts import to_json
from store.facts import LABELS, humanize, label

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
class Baseline:
    """One line of "K visa today": a field's values on the pages first read, with the sources saying each."""

    label: str
    text: str
    alert_ids: tuple[int, ...]


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
    baseline: tuple[Baseline, ...] = ()       # what newly read pages say: the state, summarised, not news
    follows: tuple[str, ...] = ()             # the missions the subscriber's filters follow ("ke embassy", …)
    public_url: str = ""                      # KVWATCH_PUBLIC_URL: where `kvwatch web` answers; links to the evidence

    def permalink(self, alert_id: int) -> str:
        """The alert's permanent page on `kvwatch web` (its diff, snapshots and evidence), if the web page is published."""
        return f"{self.public_url}/alerts/{alert_id}" if self.public_url else ""

    @property
    def alert_ids(self) -> tuple[int, ...]:
        items: tuple[Headline | Entry, ...] = (*self.headlines, *self.notices, *self.changes, *self.health)
        return tuple(sorted({x.alert_id for x in items} | {i for b in self.baseline for i in b.alert_ids}))

    @property
    def lead(self) -> str:
        """The most important thing in the digest: a fact change, else a notice, a content change, the
        state of the K visa (a first digest), page health."""
        if self.headlines:
            return self.headlines[0].text
        if self.notices:
            return f"new K-visa notice — {self.notices[0].summary}"
        if self.changes:
            return self.changes[0].summary
        if self.baseline:
            return f"K visa today: {self.baseline[0].label} {self.baseline[0].text}"
        if self.health:
            return f"page health — {self.health[0].summary}"
        return "nothing new"

    @property
    def subject(self) -> str:
        count = len(self.headlines) + len(self.notices) + len(self.changes) + len(self.health) + (1 if self.baseline else 0)
        return f"kvwatch: {self.lead}" + (f" (+{count - 1} more)" if count > 1 else "")


def build(subscriber: Subscriber, alerts: list[Any], page_names: dict[str, str], now: datetime, follows: tuple[str, ...] = ()) -> Digest:
    """A digest of `alerts` (store Alert rows, oldest first) for `subscriber`, as of its newest alert."""
    zone = ZoneInfo(subscriber.timezone)
    when = lambda moment: moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")  # noqa: E731
    headlines: list[Headline] = []
    notices: list[Entry] = []
    changes: list[Entry] = []
    health: list[Entry] = []
    latest: dict[tuple[str, str], tuple[str, str, list[int]]] = {}  # baseline (page, field) → (source, value now, alert ids)
    for alert in alerts:
        source = page_names.get(alert.page_id) or page_names.get(alert.page_id.split("~")[0]) or alert.page_id
        if alert.kind == "fact":
            for fact in alert.facts:
                if subscriber.fields and fact["field"] not in subscriber.fields:
                    continue
                key = (alert.page_id, fact["field"])
                if fact.get("baseline") and fact.get("old") is None and fact.get("new") is not None:
                    latest[key] = (source, fact["new"], [alert.id])
                    continue
                if key in latest:  # a change after the baseline: "K visa today" says the value now
                    src, _, ids = latest[key]
                    if fact.get("new") is None:
                        del latest[key]
                    else:
                        latest[key] = (src, fact["new"], [*ids, alert.id])
                headlines.append(Headline(_headline(fact, source, when(alert.detected_at)), fact.get("evidence", ""), source, alert.url, alert.id))
            continue
        entry = Entry(alert.kind, source, alert.url, when(alert.detected_at), alert.summary, alert.diff,
                      tuple((t, u) for t, u in alert.links), alert.id)
        {"new_link": notices, "content": changes, "health": health}[alert.kind].append(entry)
    stated: dict[str, dict[str, list[tuple[str, int]]]] = {}  # field → value → (source, alert id)
    for (_, field), (source, value, ids) in latest.items():
        stated.setdefault(field, {}).setdefault(value, []).extend((source, i) for i in ids)
    # Stamped with the newest alert's time, not the send time, so a retried digest is identical.
    stamp = max((a.detected_at for a in alerts), default=now)
    return Digest(subscriber.id, subscriber.name or subscriber.id, when(stamp), tuple(headlines), tuple(notices), tuple(changes), tuple(health),
                  tuple(to_json(a) for a in alerts), _baseline(stated), follows, os.environ.get("KVWATCH_PUBLIC_URL", "").rstrip("/"))


def _baseline(stated: dict[str, dict[str, list[tuple[str, int]]]]) -> tuple[Baseline, ...]:
    """'stay per entry: 180 days (Embassy in Malaysia, NIA and 6 more agree); 90 days (1 source: Consulate in Chicago)'."""
    out = []
    for field in sorted(stated, key=lambda f: list(LABELS).index(f) if f in LABELS else len(LABELS)):
        values = sorted(stated[field].items(), key=lambda item: -len({s for s, _ in item[1]}))
        parts = []
        for value, said in values:
            sources = list(dict.fromkeys(s for s, _ in said))
            named = ", ".join(sources) if len(sources) <= 3 else f"{', '.join(sources[:2])} and {len(sources) - 2} more"
            agree = " agree" if len(sources) > 1 else ""
            parts.append(f"{_short(humanize(field, value))} ({named}{agree})")
        ids = tuple(sorted({i for said in stated[field].values() for _, i in said}))
        out.append(Baseline(label(field), "; ".join(parts), ids))
    return tuple(out)


def _short(text: str, width: int = 160) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


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
    """Slack messages, each (the alert ids it carries, the payload): changes first, the state of the K visa
    next, page health in messages of its own; long digests are split, never truncated, and each message's
    header counts what it holds."""
    groups: list[tuple[str, tuple[int, ...], list[dict[str, Any]]]] = []  # (part kind, alert ids, blocks)
    for h in digest.headlines:
        groups.append(("fact change", (h.alert_id,), _plain(h.text) + _plain(f"“{h.evidence}”" if h.evidence else "") + [_link(h.url, h.source)]
                       + ([_link(digest.permalink(h.alert_id), "kvwatch: the evidence")] if digest.public_url else [])))
    for kind, title, entries in (("notice", "New K-visa notice or document", digest.notices), ("change", "Other change", digest.changes)):
        for e in entries:
            body = f"{e.summary}\n{e.diff}" if e.diff else e.summary
            links = [_link(url, text) for text, url in e.links] or [_link(e.url, e.source)]
            groups.append((kind, (e.alert_id,), _plain(f"[{title}] {body}") + links))
    if digest.baseline:
        text = "K visa today, as the pages you follow state it:\n" + "\n".join(f"• {b.label}: {b.text}" for b in digest.baseline)
        groups.append(("state", tuple(i for b in digest.baseline for i in b.alert_ids), _plain(text)))
    health: list[tuple[str, tuple[int, ...], list[dict[str, Any]]]] = [
        ("health", (e.alert_id,), _plain(f"[Page health] {e.summary}") + [_link(e.url, e.source)]) for e in digest.health]
    messages = _pack(groups) + _pack(health)  # health never shares a message with changes
    total = len(messages)
    return [(tuple(ids), {"text": f"kvwatch: {what} ({n}/{total})", "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": f"kvwatch: {what}"[:150]}}, *blocks,
                {"type": "context", "elements": [{"type": "plain_text", "text": f"{digest.generated} · part {n} of {total}"}]}]})
            for n, (ids, blocks, what) in enumerate(messages, start=1)]


def _pack(groups: list[tuple[str, tuple[int, ...], list[dict[str, Any]]]]) -> list[tuple[list[int], list[dict[str, Any]], str]]:
    """Groups into messages of at most SLACK_MAX_BLOCKS blocks, each with a header saying what it holds."""
    messages: list[tuple[list[int], list[dict[str, Any]], str]] = []
    blocks: list[dict[str, Any]] = []
    ids: list[int] = []
    kinds: Counter[str] = Counter()
    for kind, alert_ids, group in groups:
        if blocks and len(blocks) + len(group) > SLACK_MAX_BLOCKS:
            messages.append((ids, blocks, _counted(kinds)))
            blocks, ids, kinds = [], [], Counter()
        blocks.extend(group)
        ids.extend(i for i in alert_ids if i not in ids)
        kinds[kind] += 1
    if blocks:
        messages.append((ids, blocks, _counted(kinds)))
    return messages


def _counted(kinds: Counter[str]) -> str:
    names = {"fact change": "fact change", "notice": "new notice", "change": "other change", "state": "K visa today", "health": "page-health notice"}
    parts = [name if kind == "state" else f"{kinds[kind]} {name}{'s' if kinds[kind] != 1 else ''}" for kind, name in names.items() if kinds[kind]]
    return ", ".join(parts)


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

