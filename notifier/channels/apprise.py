"""Apprise: Microsoft Teams, WeCom (企业微信), DingTalk, Feishu, Telegram, ntfy, Matrix and a hundred
more, through one kept library. A subscriber names environment variables holding Apprise URLs
(`apprise = ["KVWATCH_APPRISE_TEAMS"]`); each URL is its own outbox channel (`apprise:VARIABLE`),
so one failing service never holds back another. Apprise answers True (the service accepted the
message: confirmed) or False (not confirmed: retried with the usual backoff)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime

from notifier.channels import Sent
from notifier.digest import Digest, render_text
from notifier.subscribers import Subscriber
from store.errors import DeliveryError


def send(digest: Digest, subscriber: Subscriber, now: datetime, target: str = "") -> Iterator[Sent]:
    import apprise

    url = os.environ.get(target, "")
    if not url:
        raise DeliveryError(f"apprise:{target}", target, f"environment variable {target} is not set (it must hold an Apprise URL)")
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise DeliveryError(f"apprise:{target}", target, f"{target} does not hold a URL Apprise understands", permanent=True)
    if not notifier.notify(title=digest.subject, body=render_text(digest)):
        raise DeliveryError(f"apprise:{target}", target, "the service did not accept the message (Apprise answered False)")
    yield Sent(digest.alert_ids, f"accepted via Apprise ({url.split(':', 1)[0]}://…)")
