"""Coordination between fetch workers, through the shared PostgreSQL store.

Every claim is a session-level advisory lock on one connection of the worker's own. The server
releases all of them the moment that connection ends, so a worker killed with -9 (or a machine that
drops off the network) leaves nothing held: no lease to expire, no stale row to clean up.

- **Page claims**: a page is fetched by at most one worker at a time.
- **Host slots**: `limit` slots per host, shared by every worker, so a host's concurrency limit is
  global, not per worker. A process holds a slot once (advisory locks are re-entrant within one
  session, so the slots this process already holds are never "taken" again by it).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Iterable

from sqlalchemy import Connection, Engine, and_, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from store.errors import ConfigError, DatabaseUnavailable
from store.models import Fetch

log = logging.getLogger(__name__)
NOT_AN_ATTEMPT = ("interrupted",)  # "not fetched: the crawl stopped" does not count as the page's fetch in a cycle


def key(kind: str, name: str) -> int:
    """A signed 64-bit advisory-lock key for a page or a host slot (the run lock's key is a small constant)."""
    return int.from_bytes(hashlib.blake2b(f"kvwatch:{kind}:{name}".encode(), digest_size=8).digest(), "big", signed=True)


class Leases:
    """One worker process's claims. Thread-safe: Scrapy asks for host slots from a thread pool."""

    def __init__(self, engine: Engine):
        if engine.dialect.name != "postgresql":
            raise ConfigError(str(engine.url), "fetch workers share a PostgreSQL store; this database is "
                              f"{engine.dialect.name} (set KVWATCH_DB to postgresql+psycopg://…)", key="KVWATCH_DB")
        self.engine = engine
        self.lock = threading.Lock()
        self.held_slots: set[tuple[str, int]] = set()
        try:
            self.conn: Connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            raise DatabaseUnavailable(f"cannot reach database {engine.url!r}: {str(exc).splitlines()[0]}") from exc

    def _try(self, lock_key: int) -> bool:
        return bool(self.conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key}).scalar())

    def _unlock(self, lock_key: int) -> None:
        self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key})

    def claim_pages(self, page_ids: Iterable[str]) -> list[str]:
        """The pages this process now holds; the others are being fetched by another worker right now."""
        with self.lock:
            return [page_id for page_id in page_ids if self._try(key("page", page_id))]

    def try_host(self, host: str, limit: int) -> int | None:
        """A free slot of `host` (0 … limit-1), now held by this process; None when all are taken."""
        with self.lock:
            for slot in range(max(limit, 1)):
                if (host, slot) not in self.held_slots and self._try(key("host", f"{host}#{slot}")):
                    self.held_slots.add((host, slot))
                    return slot
        return None

    def release_host(self, host: str, slot: int) -> None:
        with self.lock:
            if (host, slot) in self.held_slots:
                self.held_slots.discard((host, slot))
                self._unlock(key("host", f"{host}#{slot}"))

    def close(self) -> None:
        """Release everything (closing the connection does it; so does the process dying)."""
        with self.lock:
            self.held_slots.clear()
            self.conn.close()


def fetched_in_cycle(session: Session, cycle: str, page_ids: Iterable[str], region: str | None = None) -> dict[str, list[tuple[str, str | None]]]:
    """Per page, the (outcome, region) of its attempts in a distributed cycle, oldest first (only `region`'s when given)."""
    ids = list(page_ids)
    found: dict[str, list[tuple[str, str | None]]] = {}
    for start in range(0, len(ids), 500):
        condition = and_(Fetch.cycle == cycle, Fetch.page_id.in_(ids[start:start + 500]), Fetch.outcome.not_in(NOT_AN_ATTEMPT))
        if region is not None:
            condition = and_(condition, Fetch.region == region)
        for page_id, outcome, where in session.execute(select(Fetch.page_id, Fetch.outcome, Fetch.region).where(condition).order_by(Fetch.id)):
            found.setdefault(page_id, []).append((outcome, where))
    return found
