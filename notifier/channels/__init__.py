"""Delivery channels: a literal registry. Another channel is one module with a `send` function.

Every `send(digest, subscriber, now) -> Iterator[Sent]` yields one `Sent` per confirmed message (with
the alert ids it carried) as soon as the channel confirmed it, so the caller records it before the
next message goes out, and raises `DeliveryError` at the first message that was not confirmed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial


@dataclass(frozen=True)
class Sent:
    alert_ids: tuple[int, ...]
    response: str


Send = Callable[..., Iterator[Sent]]  # (digest, subscriber, now[, target=…]) → confirmed messages


def registry() -> dict[str, Send]:
    from notifier.channels import apprise, email, slack, webhook

    return {"email": email.send, "slack": slack.send, "webhook": webhook.send, "apprise": apprise.send}


def channel(name: str) -> Send:
    """The sender of an outbox channel name ("email", "slack", "webhook", "apprise:VARIABLE")."""
    kind, _, target = name.partition(":")
    channels = registry()
    if kind not in channels:
        raise KeyError(f"unknown channel {name!r}; valid channels: {', '.join(channels)}")
    return partial(channels[kind], target=target) if target else channels[kind]
