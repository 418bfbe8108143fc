"""Subscribers and the delivery outbox.

Each (subscriber, alert, channel) is one row: `pending` until the channel confirms, then `sent`.
A failure leaves it pending with `attempts` + 1 and `next_try_at` pushed back (or set from a
Retry-After); nothing is ever dropped, and a row marked sent is never selected again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from store.db import utcnow
from store.models import Alert, Delivery, Subscriber

BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=6)


@dataclass(frozen=True)
class SubscriberRecord:
    id: str
    name: str
    config: dict[str, Any]


def sync_subscribers(session: Session, records: Iterable[SubscriberRecord]) -> None:
    """Upsert subscribers; those no longer declared are disabled (their delivery history is kept)."""
    now, listed = utcnow(), set()
    existing = {s.id: s for s in session.scalars(select(Subscriber))}
    for record in records:
        listed.add(record.id)
        row = existing.get(record.id) or Subscriber(id=record.id, created_at=now)
        row.name, row.config, row.enabled, row.updated_at = record.name, record.config, True, now
        session.add(row)
    for sub_id, row in existing.items():
        if sub_id not in listed:
            row.enabled = False
    session.flush()


def enqueue(session: Session, subscriber_id: str, alert_id: int, channel: str, due_at: datetime) -> bool:
    """Add a pending delivery unless this (subscriber, alert, channel) already has one."""
    exists = session.scalar(select(Delivery.id).where(
        Delivery.subscriber_id == subscriber_id, Delivery.alert_id == alert_id, Delivery.channel == channel))
    if exists is not None:
        return False
    now = utcnow()
    session.add(Delivery(subscriber_id=subscriber_id, alert_id=alert_id, channel=channel, status="pending",
                         attempts=0, due_at=due_at, next_try_at=due_at, created_at=now))
    session.flush()
    return True


def known_alert_ids(session: Session, subscriber_id: str, channel: str) -> set[int]:
    return set(session.scalars(select(Delivery.alert_id).where(Delivery.subscriber_id == subscriber_id, Delivery.channel == channel)))


def due(session: Session, now: datetime) -> dict[tuple[str, str], list[tuple[Delivery, Alert]]]:
    """Pending deliveries whose digest is due and whose retry time has come, by (subscriber, channel)."""
    rows = session.execute(
        select(Delivery, Alert).join(Alert, Alert.id == Delivery.alert_id)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.status == "pending", Delivery.due_at <= now, Delivery.next_try_at <= now, Subscriber.enabled.is_(True))
        .order_by(Delivery.subscriber_id, Delivery.channel, Alert.id)
    ).all()
    grouped: dict[tuple[str, str], list[tuple[Delivery, Alert]]] = {}
    for delivery, alert in rows:
        grouped.setdefault((delivery.subscriber_id, delivery.channel), []).append((delivery, alert))
    return grouped


def mark_sent(session: Session, deliveries: Iterable[Delivery], response: str, now: datetime) -> None:
    for delivery in deliveries:
        delivery.status, delivery.sent_at, delivery.response = "sent", now, response[:1000]
        delivery.attempts += 1


def mark_failed(session: Session, deliveries: Iterable[Delivery], error: str, now: datetime, retry_after: float | None = None,
                permanent: bool = False) -> datetime:
    """Keep the deliveries pending and push their next try back; return when that is. A permanent
    failure (the channel no longer exists) makes them `failed`: kept, shown, never retried."""
    next_try = now
    for delivery in deliveries:
        delivery.attempts += 1
        if permanent:
            delivery.status, delivery.response = "failed", f"failed for good after {delivery.attempts} attempts: {error}"[:1000]
            continue
        wait = timedelta(seconds=retry_after) if retry_after is not None else min(BACKOFF_BASE * 2 ** (delivery.attempts - 1), BACKOFF_MAX)
        delivery.next_try_at, delivery.response = now + wait, f"attempt {delivery.attempts} failed: {error}"[:1000]
        next_try = delivery.next_try_at
    return next_try


def state_by_alert(session: Session) -> dict[int, Counter[str]]:
    out: dict[int, Counter[str]] = {}
    for alert_id, status, n in session.execute(select(Delivery.alert_id, Delivery.status, func.count()).group_by(Delivery.alert_id, Delivery.status)):
        out.setdefault(alert_id, Counter())[status] = n
    return out


def state_by_subscriber(session: Session) -> dict[str, Counter[str]]:
    out: dict[str, Counter[str]] = {}
    for sub_id, status, n in session.execute(select(Delivery.subscriber_id, Delivery.status, func.count()).group_by(Delivery.subscriber_id, Delivery.status)):
        out.setdefault(sub_id, Counter())[status] = n
    return out


def failed_by_subscriber(session: Session) -> dict[str, dict[str, str]]:
    """Per subscriber and channel, why its deliveries failed for good (the latest reason)."""
    out: dict[str, dict[str, str]] = {}
    for sub_id, channel, response in session.execute(
            select(Delivery.subscriber_id, Delivery.channel, Delivery.response).where(Delivery.status == "failed").order_by(Delivery.id)):
        out.setdefault(sub_id, {})[channel] = response
    return out

