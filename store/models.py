"""Tables. Times are naive UTC datetimes (the same on SQLite and PostgreSQL).

Schema changes go through Alembic migrations in `store/migrations/versions/`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Page(Base):
    """A watched page, synced from the watchlist. Removed pages are disabled, never deleted."""

    __tablename__ = "page"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(20), default="auto")
    tags: Mapped[dict] = mapped_column(JSON, default=dict)
    options: Mapped[dict] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Fetch(Base):
    """One fetch attempt, whatever its outcome."""

    __tablename__ = "fetch"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    page_id: Mapped[str] = mapped_column(ForeignKey("page.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    url: Mapped[str] = mapped_column(Text)
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    bytes: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    etag: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_modified: Mapped[str | None] = mapped_column(Text, nullable=True)
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshot.id"), nullable=True)
    via: Mapped[str] = mapped_column(String(10), default="plain", server_default="plain")  # plain | browser
    body_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)  # SHA-256 of a good fetch's body
    region: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the fetching worker's region (distributed cycles)
    cycle: Mapped[str | None] = mapped_column(String(40), nullable=True, index=True)  # the distributed cycle it belongs to


class Snapshot(Base):
    """A distinct state of a page's normalized text. A new row only when the hash changes."""

    __tablename__ = "snapshot"
    __table_args__ = (Index("ix_snapshot_page_id_id", "page_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    page_id: Mapped[str] = mapped_column(ForeignKey("page.id"))
    hash: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text, default="")
    text: Mapped[str] = mapped_column(Text)
    links: Mapped[list] = mapped_column(JSON, default=list)
    content_type: Mapped[str] = mapped_column(String(100), default="")
    encoding: Mapped[str] = mapped_column(String(40), default="")
    headers: Mapped[dict] = mapped_column(JSON, default=dict)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    raw_codec: Mapped[str] = mapped_column(String(10), default="zstd")
    region: Mapped[str] = mapped_column(Text, default="", server_default="")  # how the main text was found
    complete: Mapped[bool | None] = mapped_column(Boolean, nullable=True)  # an HTML body that ended with </html>; None: not HTML, or not known
    first_seen: Mapped[datetime] = mapped_column(DateTime)
    last_seen: Mapped[datetime] = mapped_column(DateTime)
    analysed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True, index=True)


class Alert(Base):
    """Something a subscriber may need to know. `dedupe_key` makes deriving alerts idempotent."""

    __tablename__ = "alert"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(300), unique=True)
    page_id: Mapped[str] = mapped_column(ForeignKey("page.id"), index=True)
    url: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    relevant: Mapped[bool] = mapped_column(Boolean, default=False)
    detected_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    from_snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshot.id"), nullable=True)
    to_snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("snapshot.id"), nullable=True)
    facts: Mapped[list] = mapped_column(JSON, default=list)
    links: Mapped[list] = mapped_column(JSON, default=list)
    summary: Mapped[str] = mapped_column(Text, default="")
    diff: Mapped[str] = mapped_column(Text, default="")
    backfilled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())  # found by `kvwatch reprocess`


class Fact(Base):
    """A K-visa fact's value on one page over time: valid_from … valid_to (None = still current)."""

    __tablename__ = "fact"
    __table_args__ = (Index("ix_fact_page_field", "page_id", "field", "valid_to"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    page_id: Mapped[str] = mapped_column(ForeignKey("page.id"))
    field: Mapped[str] = mapped_column(String(40), index=True)
    value: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text, default="")
    tier: Mapped[str] = mapped_column(String(20), default="other")
    snapshot_id: Mapped[int] = mapped_column(ForeignKey("snapshot.id"))
    valid_from: Mapped[datetime] = mapped_column(DateTime)
    valid_to: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Subscriber(Base):
    """A subscriber, synced from subscribers.toml (its channels, cadence and filters in `config`)."""

    __tablename__ = "subscriber"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(Text, default="")
    config: Mapped[dict] = mapped_column(JSON, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    updated_at: Mapped[datetime] = mapped_column(DateTime)


class Delivery(Base):
    """The outbox: one row per (subscriber, alert, channel); `sent` only after the channel confirmed."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "alert_id", "channel", name="uq_delivery_subscriber_alert_channel"),
        Index("ix_delivery_pending", "status", "due_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[str] = mapped_column(ForeignKey("subscriber.id"))
    alert_id: Mapped[int] = mapped_column(ForeignKey("alert.id"))
    channel: Mapped[str] = mapped_column(String(120))  # email, slack, webhook, apprise:VARIABLE
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending | sent | failed (for good)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(DateTime)
    next_try_at: Mapped[datetime] = mapped_column(DateTime)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    response: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
