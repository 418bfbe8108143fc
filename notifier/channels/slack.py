"""Slack through an incoming webhook, posted with our own request to the URL held in the environment
variable the subscriber names (Apprise's Slack plugin hard-codes Slack's host). A long digest is
split into several messages; each is recorded as sent as soon as Slack confirmed it, marking only
the alerts it carried, so a crash part-way never re-sends a confirmed part."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime

from notifier.channels import Sent
from notifier.digest import Digest, render_slack
from notifier.subscribers import Subscriber
from store.errors import DeliveryError

TIMEOUT = 15.0


def send(digest: Digest, subscriber: Subscriber, now: datetime) -> Iterator[Sent]:
    variable = subscriber.slack or ""
    url = os.environ.get(variable)
    if not url:
        raise DeliveryError("slack", variable, f"environment variable {variable} is not set (it must hold the incoming-webhook URL)")
    for alert_ids, payload in render_slack(digest):
        status, body = _post(url, payload)
        yield Sent(alert_ids, f"HTTP {status} {body[:100]}")


def _post(url: str, payload: dict) -> tuple[int, str]:
    request = urllib.request.Request(url, data=json.dumps(payload, ensure_ascii=False).encode(), method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "kvwatch"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310 - the configured webhook
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        retry = exc.headers.get("Retry-After") if exc.code == 429 else None
        raise DeliveryError("slack", _host(url), f"HTTP {exc.code}", float(retry) if retry and retry.isdigit() else None) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise DeliveryError("slack", _host(url), f"{type(exc).__name__}: {exc}") from exc


def _host(url: str) -> str:
    return url.split("/")[2] if "//" in url else url
