"""Deliver: alerts → outbox → digests → channels → confirmations.

1. Sync subscribers into the store; enqueue every alert a subscriber wants and has not had, once
   per channel, due at the subscriber's next digest time.
2. For every (subscriber, channel) with due deliveries, build one digest and send it.
3. Mark exactly the confirmed deliveries sent; everything else stays pending with backoff (or the
   channel's Retry-After). A crash between sending and recording re-sends on the next run (at
   least once); a confirmed delivery is never selected again. One bad subscriber or channel never
   stops the others.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from notifier.channels import channel
from notifier.digest import Digest, build, test_digest
from notifier.subscribers import Subscriber
from store import alerts as alert_store
from store import deliveries, pages
from store.db import session_scope, utcnow
from store.errors import DeliveryError, NotFound
from store.models import Alert, Delivery, Page

log = logging.getLogger(__name__)
OPERATOR_PAGE = "kvwatch-delivery"  # the page id of operator notices about delivery (not a watched page)


@dataclass(frozen=True)
class DeliverySummary:
    queued: int = 0
    messages: int = 0
    delivered: int = 0
    failures: tuple[str, ...] = field(default=())


def sync(engine: Engine, subscribers: tuple[Subscriber, ...]) -> None:
    with session_scope(engine) as session:
        deliveries.sync_subscribers(session, [deliveries.SubscriberRecord(s.id, s.name, s.config()) for s in subscribers])


def wanted(session: Session, subscriber: Subscriber, now: datetime) -> list[Alert]:
    """The alerts within the subscriber's backlog window that pass its filters (history found by
    `kvwatch reprocess` is not news: backfilled alerts are never queued)."""
    tags = {p.id: (p.tags or {}) for p in session.scalars(select(Page))}
    since = now - timedelta(days=subscriber.backlog_days)
    return [a for a in alert_store.query(session, since=since) if not a.backfilled and subscriber.wants(a, tags.get(a.page_id, {}))]


def enqueue(engine: Engine, subscribers: tuple[Subscriber, ...], now: datetime) -> int:
    queued = 0
    with session_scope(engine) as session:
        for sub in subscribers:
            matching = wanted(session, sub, now)
            for name in sub.channels:
                known = deliveries.known_alert_ids(session, sub.id, name)
                for alert in matching:
                    if alert.id not in known:
                        queued += deliveries.enqueue(session, sub.id, alert.id, name, sub.due_at(alert.detected_at))
    return queued


def deliver(engine: Engine, subscribers: tuple[Subscriber, ...], now: datetime | None = None) -> DeliverySummary:
    """Send every digest that is due; record what the channels confirmed."""
    now = now or utcnow()
    sync(engine, subscribers)
    queued = enqueue(engine, subscribers, now)
    by_id = {s.id: s for s in subscribers}
    with session_scope(engine) as session:
        groups = {key: [d.id for d, _ in rows] for key, rows in deliveries.due(session, now).items()}
    messages = delivered = 0
    failures: list[str] = []
    for (sub_id, name), delivery_ids in groups.items():
        sub = by_id.get(sub_id)
        if sub is None or name not in sub.channels:
            continue
        sent, confirmed, error = _send(engine, sub, name, delivery_ids, now)
        messages += sent
        delivered += confirmed
        if error is not None:
            failures.append(f"{sub_id}: {error}")
            log.warning("delivery failed, will retry: %s", error, extra={"subscriber": sub_id, "channel": name})
    return DeliverySummary(queued, messages, delivered, tuple(failures))


def _send(engine: Engine, sub: Subscriber, name: str, delivery_ids: list[int], now: datetime) -> tuple[int, int, DeliveryError | None]:
    """Send one digest; record each message as sent the moment the channel confirms it, and keep
    whatever was not confirmed pending with backoff. (messages, deliveries confirmed, the error)."""
    messages = confirmed = 0
    error: DeliveryError | None = None
    try:
        digest = _digest_for(engine, sub, delivery_ids, now)
        for sent in channel(name)(digest, sub, now):
            if os.environ.get("KVWATCH_FAULT") == "after-send":  # crash test: sent, not yet recorded
                log.error("KVWATCH_FAULT=after-send: exiting before recording the delivery")
                os._exit(70)
            messages += 1
            confirmed += _confirm(engine, delivery_ids, sent, now)
    except DeliveryError as exc:
        error = exc
    except Exception as exc:  # noqa: BLE001 - one bad subscriber or channel never stops the others
        log.exception("unexpected error delivering", extra={"subscriber": sub.id, "channel": name})
        error = DeliveryError(name, sub.id, f"{type(exc).__name__}: {exc}")
    _postpone(engine, delivery_ids, error, now)
    return messages, confirmed, error


def _digest_for(engine: Engine, sub: Subscriber, delivery_ids: list[int], now: datetime) -> Digest:
    with session_scope(engine) as session:
        rows = session.scalars(select(Delivery).where(Delivery.id.in_(delivery_ids))).all()
        alerts = list(session.scalars(select(Alert).where(Alert.id.in_([d.alert_id for d in rows])).order_by(Alert.id)))
        names = {p.id: p.name or p.id for p in session.scalars(select(Page))}
        return build(sub, alerts, names, now, tuple(pages.followed_missions(session, sub.tags, sub.pages)))


def _confirm(engine: Engine, delivery_ids: list[int], sent: Any, now: datetime) -> int:
    """Mark the deliveries of the alerts one confirmed message carried as sent, in their own transaction."""
    with session_scope(engine) as session:
        rows = session.scalars(select(Delivery).where(Delivery.id.in_(delivery_ids), Delivery.alert_id.in_(sent.alert_ids),
                                                      Delivery.status == "pending")).all()
        deliveries.mark_sent(session, rows, sent.response, now)
        return len(rows)


def _postpone(engine: Engine, delivery_ids: list[int], error: DeliveryError | None, now: datetime) -> None:
    """Whatever of this digest was not confirmed stays pending, with backoff (or the channel's Retry-After);
    a permanent refusal marks it failed for good, and says so once, loudly, for the operator."""
    permanent = bool(error and error.permanent)
    with session_scope(engine) as session:
        rest = session.scalars(select(Delivery).where(Delivery.id.in_(delivery_ids), Delivery.status == "pending")).all()
        if not rest:
            return
        if permanent:
            sub_id, name = rest[0].subscriber_id, rest[0].channel
            known = session.scalar(select(Delivery.id).where(Delivery.subscriber_id == sub_id, Delivery.channel == name, Delivery.status == "failed").limit(1))
            if known is None:  # the first refusal of this channel: one log line and one health notice, not one per digest
                log.error("channel refused for good; its deliveries are marked failed until it is fixed: %s", error,
                          extra={"subscriber": sub_id, "channel": name})
                pages.ensure(session, pages.PageRecord(id=OPERATOR_PAGE, url="kvwatch:delivery", name="kvwatch deliveries"))
                alert_store.add(session, alert_store.NewAlert(
                    key=f"{OPERATOR_PAGE}:{sub_id}:{name}:{rest[0].id}", page_id=OPERATOR_PAGE, url="", kind="health", relevant=True,
                    summary=f"delivery to subscriber {sub_id} via {name} fails for good: {error}. Fix the channel; "
                            f"`kvwatch subscribers` lists what waits as failed."), now)
        deliveries.mark_failed(session, rest, str(error) if error else "not confirmed", now, error.retry_after if error else None, permanent)


def preview(engine: Engine, subscribers: tuple[Subscriber, ...], now: datetime | None = None) -> list[Digest]:
    """The digest each subscriber would get now if every pending alert were due (writes nothing)."""
    now = now or utcnow()
    out = []
    with session_scope(engine) as session:
        names = {p.id: p.name or p.id for p in session.scalars(select(Page))}
        for sub in subscribers:
            sent = set(session.scalars(select(Delivery.alert_id).where(Delivery.subscriber_id == sub.id, Delivery.status == "sent")))
            alerts = [a for a in wanted(session, sub, now) if a.id not in sent]
            if alerts:
                out.append(build(sub, alerts, names, now, tuple(pages.followed_missions(session, sub.tags, sub.pages))))
    return out


def test_message(subscriber: Subscriber, only: str | None = None, now: datetime | None = None) -> list[tuple[str, bool, str]]:
    """Send a marked test message through each of the subscriber's channels (or `only`); records nothing.
    Returns (channel, confirmed, what the channel said)."""
    digest = test_digest(subscriber, now or utcnow())
    names = [n for n in subscriber.channels if only is None or n == only or n.split(":")[0] == only]
    if not names:
        raise NotFound(f"subscriber {subscriber.id!r} has no channel {only!r} (its channels: {', '.join(subscriber.channels)})")
    results = []
    for name in names:
        try:
            said = "; ".join(sent.response for sent in channel(name)(digest, subscriber, now or utcnow()))
            results.append((name, True, said))
        except DeliveryError as exc:
            results.append((name, False, str(exc) + (" (permanent)" if exc.permanent else "")))
    return results

