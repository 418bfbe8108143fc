"""Email through SMTP: multipart text + HTML, UTF-8, Message-ID and Date. No List-Unsubscribe header:
nothing here processes unsubscribe requests, so none is promised; the footer says whom to ask.

Settings come only from the environment: KVWATCH_SMTP_HOST (localhost), KVWATCH_SMTP_PORT (25),
KVWATCH_SMTP_SECURITY (none | starttls | tls; default starttls on 587, tls on 465, else none),
KVWATCH_SMTP_USER, KVWATCH_SMTP_PASSWORD, KVWATCH_SMTP_FROM (kvwatch@localhost), KVWATCH_SMTP_TIMEOUT (30).
The Message-ID is derived from the digest's alerts, so a retried digest keeps its Message-ID.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from notifier.channels import Sent
from notifier.digest import Digest, render_html, render_text
from notifier.subscribers import Subscriber
from store.errors import DeliveryError


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str
    user: str | None
    password: str | None
    sender: str
    timeout: float

    @classmethod
    def from_env(cls) -> SmtpSettings:
        port = int(os.environ.get("KVWATCH_SMTP_PORT") or 25)
        default = {587: "starttls", 465: "tls"}.get(port, "none")
        security = os.environ.get("KVWATCH_SMTP_SECURITY") or default
        if security not in ("none", "starttls", "tls"):
            raise DeliveryError("email", "-", f"KVWATCH_SMTP_SECURITY must be none, starttls or tls, not {security!r}")
        return cls(os.environ.get("KVWATCH_SMTP_HOST") or "localhost", port, security, os.environ.get("KVWATCH_SMTP_USER") or None,
                   os.environ.get("KVWATCH_SMTP_PASSWORD") or None, os.environ.get("KVWATCH_SMTP_FROM") or "kvwatch@localhost",
                   float(os.environ.get("KVWATCH_SMTP_TIMEOUT") or 30))


def message(digest: Digest, subscriber: Subscriber, sender: str, now: datetime) -> EmailMessage:
    msg = EmailMessage()
    domain = sender.rsplit("@", 1)[-1]
    key = hashlib.sha256(f"{subscriber.id}:{digest.alert_ids}".encode()).hexdigest()[:24]
    msg["Subject"] = digest.subject[:200]
    msg["From"] = sender
    msg["To"] = ", ".join(subscriber.email)
    msg["Date"] = format_datetime(now.replace(tzinfo=UTC))
    msg["Message-ID"] = f"<kvwatch.{key}@{domain}>"
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(render_text(digest), charset="utf-8")
    msg.add_alternative(render_html(digest), subtype="html", charset="utf-8")
    return msg


def send(digest: Digest, subscriber: Subscriber, now: datetime) -> Iterator[Sent]:
    settings = SmtpSettings.from_env()
    target = ", ".join(subscriber.email)
    msg = message(digest, subscriber, settings.sender, now)
    try:
        if settings.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with client:
            if settings.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings.user:
                client.login(settings.user, settings.password or "")
            refused = client.send_message(msg)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError("email", target, f"{type(exc).__name__}: {exc}") from exc
    if refused:
        raise DeliveryError("email", target, f"refused recipients: {refused}")
    yield Sent(digest.alert_ids, f"accepted by {settings.host}:{settings.port} as {msg['Message-ID']}")
