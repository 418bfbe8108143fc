"""A plain JSON webhook for people who wire kvwatch into their own systems: each digest is one POST
of the alert objects exactly as `kvwatch alerts --json` prints them (a JSON array), with
`X-Kvwatch-Signature: sha256=<hex>`, the HMAC-SHA256 of the body under the secret held by the
variable the subscriber names in `webhook_secret`. 2xx confirms; 408, 425, 429 and 5xx are retried
(429/503 honour Retry-After); any other 4xx is permanent (the endpoint refuses: fix it, don't retry)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from datetime import datetime

from notifier.channels import Sent
from notifier.channels.slack import post
from notifier.digest import Digest
from notifier.subscribers import Subscriber
from store.errors import DeliveryError

RETRIED = (408, 425, 429)


def send(digest: Digest, subscriber: Subscriber, now: datetime) -> Iterator[Sent]:
    variable = subscriber.webhook or ""
    url = os.environ.get(variable)
    if not url:
        raise DeliveryError("webhook", variable, f"environment variable {variable} is not set (it must hold the webhook URL)")
    body = json.dumps(list(digest.payload), ensure_ascii=False, indent=2).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if subscriber.webhook_secret:
        secret = os.environ.get(subscriber.webhook_secret)
        if not secret:
            raise DeliveryError("webhook", variable, f"environment variable {subscriber.webhook_secret} is not set (it must hold the signing secret)")
        headers["X-Kvwatch-Signature"] = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    status, answer = post("webhook", url, body, headers, permanent=lambda code: 400 <= code < 500 and code not in RETRIED)
    yield Sent(digest.alert_ids, f"HTTP {status} {answer[:100]}")


def signature(secret: str, body: bytes) -> str:
    """What a receiver computes to check `X-Kvwatch-Signature`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
