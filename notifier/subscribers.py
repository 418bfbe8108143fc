"""subscribers.toml → validated, frozen `Subscriber`s: channels, cadence and filters.

    [[subscriber]]
    id = "uni-intl-office"
    email = "intl@uni.example"            # or a list of addresses
    slack = "KVWATCH_SLACK_UNI"           # the NAME of an environment variable holding the webhook URL
    apprise = ["KVWATCH_APPRISE_TEAMS"]   # NAMES of variables holding Apprise URLs (Teams, WeCom, DingTalk, Feishu, Telegram…)
    webhook = "KVWATCH_HOOK_URL"          # a JSON webhook: the NAME of the variable holding its URL…
    webhook_secret = "KVWATCH_HOOK_KEY"   # …and of the one holding its HMAC-SHA256 signing secret
    cadence = "daily"                     # immediate | daily | weekly
    at = "08:00"                          # daily and weekly
    timezone = "Asia/Shanghai"            # default UTC
    weekday = "monday"                    # weekly
    pages = ["embassy-us-visa"]           # default: every page
    tags = { country = "us" }             # every given tag must match
    fields = ["stay_duration"]            # fact fields (default: all)
    kinds = ["fact", "new_link", "content"]   # add "health" for page-health notices
    relevant_only = true                  # K-visa alerts only (default)

Secrets never live in this file: Slack webhooks and SMTP credentials come from the environment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from store.configfile import read_toml
from store.errors import ConfigError
from store.facts import LABELS
from store.pages import TAG_KEYS

CADENCES = ("immediate", "daily", "weekly")
KINDS = ("fact", "new_link", "content", "health")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
KEYS = {"id", "name", "email", "slack", "apprise", "webhook", "webhook_secret",
        "cadence", "at", "timezone", "weekday", "pages", "tags", "fields", "kinds", "relevant_only", "backlog_days"}
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_ID = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class Subscriber:
    id: str
    name: str = ""
    email: tuple[str, ...] = ()
    slack: str | None = None
    apprise: tuple[str, ...] = ()
    webhook: str | None = None
    webhook_secret: str | None = None
    cadence: str = "immediate"
    at: time = time(8, 0)
    timezone: str = "UTC"
    weekday: int = 0
    pages: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    fields: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ("fact", "new_link", "content")
    relevant_only: bool = True
    backlog_days: int = 14

    @property
    def channels(self) -> tuple[str, ...]:
        """Outbox channel names: one per kind, and one per Apprise URL variable ("apprise:KVWATCH_APPRISE_TEAMS")."""
        return (("email",) if self.email else ()) + (("slack",) if self.slack else ()) + (("webhook",) if self.webhook else ()) \
            + tuple(f"apprise:{name}" for name in self.apprise)

    def wants(self, alert: Any, page_tags: dict[str, str]) -> bool:
        """Does this alert pass the subscriber's filters? (`alert` is a store Alert row.)"""
        if alert.kind not in self.kinds:
            return False
        if self.relevant_only and not alert.relevant and alert.kind != "health":
            return False
        if self.pages and alert.page_id.split("~")[0] not in self.pages:
            return False
        if any(page_tags.get(k) != v for k, v in self.tags):
            return False
        return not (alert.kind == "fact" and self.fields and not any(f["field"] in self.fields for f in alert.facts))

    def due_at(self, moment: datetime) -> datetime:
        """When an alert seen at `moment` (naive UTC) is due: now, or the next digest time."""
        if self.cadence == "immediate":
            return moment
        zone = ZoneInfo(self.timezone)
        local = moment.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
        candidate = local.replace(hour=self.at.hour, minute=self.at.minute, second=0, microsecond=0)
        while candidate < local or (self.cadence == "weekly" and candidate.weekday() != self.weekday):
            candidate += timedelta(days=1)
        return candidate.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)

    def config(self) -> dict[str, Any]:
        return {"email": list(self.email), "slack": self.slack, "apprise": list(self.apprise), "webhook": self.webhook, "cadence": self.cadence, "at": self.at.strftime("%H:%M"),
                "timezone": self.timezone, "weekday": WEEKDAYS[self.weekday], "pages": list(self.pages), "tags": dict(self.tags),
                "fields": list(self.fields), "kinds": list(self.kinds), "relevant_only": self.relevant_only}


class Known(Protocol):
    """What the watchlist defines, for checking subscriber filters (crawler.watchlist.Watchlist)."""

    @property
    def pages(self) -> tuple[Any, ...]: ...


def load(path: str | Path, watchlist: Known | None = None) -> tuple[Subscriber, ...]:
    """Read and validate subscribers. With the watchlist, `pages` must name its pages and `tags` its
    tag keys: a typo there would otherwise silently deliver nothing, ever."""
    path = str(path)
    data = read_toml(path)
    for key in data:
        if key != "subscriber":
            raise ConfigError(path, "unknown key (valid keys: subscriber)", key=key)
    entries = data.get("subscriber", [])
    if not isinstance(entries, list):
        raise ConfigError(path, "must be an array of tables [[subscriber]]", key="subscriber")
    subs, seen = [], set()
    for index, entry in enumerate(entries, start=1):
        sub = _subscriber(entry, index, path)
        if watchlist is not None:
            _check_filters(sub, watchlist, path)
        if sub.id in seen:
            raise ConfigError(path, f"duplicate id {sub.id!r}", f"[[subscriber]] id={sub.id}", "id")
        seen.add(sub.id)
        subs.append(sub)
    return tuple(subs)


def _subscriber(entry: Any, index: int, path: str) -> Subscriber:
    label = f"[[subscriber]] #{index}"
    if not isinstance(entry, dict):
        raise ConfigError(path, "must be a table", label)
    sub_id = entry.get("id")
    if not isinstance(sub_id, str) or not _ID.match(sub_id):
        raise ConfigError(path, "missing" if sub_id is None else f"must be lower-case letters, digits, '.', '_' or '-', got {sub_id!r}", label, "id")
    label = f"[[subscriber]] id={sub_id}"
    fail = lambda key, message: ConfigError(path, message, label, key)  # noqa: E731
    for key in entry:
        if key not in KEYS:
            raise fail(key, f"unknown key (valid keys: {', '.join(sorted(KEYS))})")
    emails = entry.get("email", [])
    emails = [emails] if isinstance(emails, str) else emails
    if not isinstance(emails, list) or not all(isinstance(e, str) and _EMAIL.match(e) for e in emails):
        raise fail("email", f"must be an address or a list of addresses, got {entry.get('email')!r}")
    slack = entry.get("slack")
    if slack is not None and (not isinstance(slack, str) or not _ENV.match(slack)):
        raise fail("slack", f"must be the NAME of an environment variable holding the webhook URL (like KVWATCH_SLACK_TEAM), got {slack!r}")
    apprise = entry.get("apprise", [])
    apprise = [apprise] if isinstance(apprise, str) else apprise
    if not isinstance(apprise, list) or not all(isinstance(a, str) and _ENV.match(a) for a in apprise):
        raise fail("apprise", f"must be NAMES of environment variables holding Apprise URLs (like [\"KVWATCH_APPRISE_TEAMS\"]), got {entry.get('apprise')!r}")
    webhook, secret = entry.get("webhook"), entry.get("webhook_secret")
    for key, value in (("webhook", webhook), ("webhook_secret", secret)):
        if value is not None and (not isinstance(value, str) or not _ENV.match(value)):
            raise fail(key, f"must be the NAME of an environment variable (like KVWATCH_HOOK_URL), got {value!r}")
    if secret is not None and webhook is None:
        raise fail("webhook_secret", "is only used with `webhook`")
    if not emails and slack is None and not apprise and webhook is None:
        raise fail("email", "a subscriber needs at least one channel: email, slack, apprise or webhook")
    cadence = entry.get("cadence", "immediate")
    if cadence not in CADENCES:
        raise fail("cadence", f"unknown cadence {cadence!r} (valid: {', '.join(CADENCES)})")
    at = _time(entry.get("at", "08:00"), fail)
    zone = entry.get("timezone", "UTC")
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise fail("timezone", f"unknown time zone {zone!r} (use an IANA name like Asia/Shanghai)") from None
    weekday = entry.get("weekday", "monday")
    if weekday not in WEEKDAYS:
        raise fail("weekday", f"must be one of {', '.join(WEEKDAYS)}, got {weekday!r}")
    kinds = _strings(entry, "kinds", KINDS, fail) or ("fact", "new_link", "content")
    fields = _strings(entry, "fields", tuple(LABELS), fail)
    tags = entry.get("tags", {})
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise fail("tags", f"must be a table of strings like {{ country = \"us\" }}, got {tags!r}")
    relevant = entry.get("relevant_only", True)
    backlog = entry.get("backlog_days", 14)
    if not isinstance(relevant, bool):
        raise fail("relevant_only", f"must be true or false, got {relevant!r}")
    if not isinstance(backlog, int) or isinstance(backlog, bool) or backlog < 0:
        raise fail("backlog_days", f"must be a whole number of days, got {backlog!r}")
    pages = _strings(entry, "pages", None, fail)
    name = entry.get("name", "")
    if not isinstance(name, str):
        raise fail("name", f"must be a string, got {name!r}")
    return Subscriber(id=sub_id, name=name, email=tuple(emails), slack=slack, apprise=tuple(apprise), webhook=webhook, webhook_secret=secret, cadence=cadence, at=at, timezone=zone,
                      weekday=WEEKDAYS.index(weekday), pages=pages, tags=tuple(sorted(tags.items())), fields=fields,
                      kinds=kinds, relevant_only=relevant, backlog_days=backlog)


def _check_filters(sub: Subscriber, watchlist: Known, path: str) -> None:
    ids = {spec.id for spec in watchlist.pages}
    for page_id in sub.pages:
        if page_id not in ids:
            raise ConfigError(path, f"unknown page id {page_id!r} (not in the watchlist; see `kvwatch pages`)", f"[[subscriber]] id={sub.id}", "pages")
    for key, _ in sub.tags:
        if key not in TAG_KEYS:
            raise ConfigError(path, f"unknown tag key {key!r} (the watchlist's tag keys: {', '.join(TAG_KEYS)})", f"[[subscriber]] id={sub.id}", "tags")


def _time(value: Any, fail: Any) -> time:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", value) if isinstance(value, str) else None
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise fail("at", f"must be a time like \"08:00\", got {value!r}")
    return time(int(match.group(1)), int(match.group(2)))


def _strings(entry: dict[str, Any], key: str, valid: tuple[str, ...] | None, fail: Any) -> tuple[str, ...]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise fail(key, f"must be a list of strings, got {value!r}")
    for item in value:
        if valid is not None and item not in valid:
            raise fail(key, f"unknown value {item!r} (valid: {', '.join(valid)})")
    return tuple(value)
