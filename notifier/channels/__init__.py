"""Delivery channels: a literal registry. Another channel is one module with a `send` function.

Every `send(digest, subscriber, now) -> list[Sent]` returns one `Sent` per confirmed message (with
the alert ids it carried) and raises `DeliveryError` for the first message that was not confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from notifier.digest import Digest
from notifier.subscribers import Subscriber


@dataclass(frozen=True)
class Sent:
    alert_ids: tuple[int, ...]
    response: str


Send = Callable[[Digest, Subscriber, datetime], list[Sent]]


def registry() -> dict[str, Send]:
    from notifier.channels import email, slack

    return {"email": email.send, "slack": slack.send}


def channel(name: str) -> Send:
    channels = registry()
    if name not in channels:
        raise KeyError(f"unknown channel {name!r}; valid channels: {', '.join(channels)}")
    return channels[name]
