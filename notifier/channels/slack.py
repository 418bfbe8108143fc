"""Slack through an incoming webhook, posted with our own request to the URL held in the environment
variable the subscriber names (Apprise's Slack plugin hard-codes Slack's host). A long digest is
split into several messages; each is recorded as sent as soon as Slack confirmed it, marking only
the alerts it carried, so a crash part-way never re-sends a confirmed part."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from notifier.channels import Sent
from notifier.digest import Digest, render_slack
from notifier.subscribers import Subscriber
from store.errors import DeliveryError

TIMEOUT = 15.0


PERMANENT = (403, 404, 410)  # invalid_token / no_service / channel_is_archived: retrying never helps


def send(digest: Digest, subscriber: Subscriber, now: datetime) -> Iterator[Sent]:
    variable = subscriber.slack or ""
    url = os.environ.get(variable)
    if not url:
        raise DeliveryError("slack", variable, f"environment variable {variable} is not set (it must hold the incoming-webhook URL)")
    for alert_ids, payload in render_slack(digest):
        status, body = post("slack", url, json.dumps(payload, ensure_ascii=False).encode(),
                            {"Content-Type": "application/json; charset=utf-8"}, permanent=lambda code: code in PERMANENT)
        yield Sent(alert_ids, f"HTTP {status} {body[:100]}")


def post(channel: str, url: str, body: bytes, headers: dict[str, str], permanent: Callable[[int], bool]) -> tuple[int, str]:
    """POST and return (status, body); raise DeliveryError (permanent, or with the server's Retry-After)."""
    request = urllib.request.Request(url, data=body, method="POST", headers={"User-Agent": "kvwatch", **headers})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - the configured webhook
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        said = exc.read().decode(errors="replace")[:200].strip()
        reason = f"HTTP {exc.code}" + (f" {said}" if said else "")
        raise DeliveryError(channel, _host(url), reason, retry_after(exc.headers.get("Retry-After")), permanent=permanent(exc.code)) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError(channel, _host(url), f"{type(exc).__name__}: {exc}") from exc


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max((moment - (now or datetime.now(UTC))).total_seconds(), 0.0)


def _host(url: str) -> str:
    return url.split("/")[2] if "//" in url else url
