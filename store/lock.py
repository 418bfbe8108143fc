"""One run at a time per database: a file lock beside a SQLite file, an advisory lock on PostgreSQL.

Both are released by the operating system or the server when the process dies, so a crashed
run never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from store.errors import DatabaseUnavailable, RunLocked

_PG_LOCK_KEY = 0x6B767761  # "kvwa"


@contextmanager
def run_lock(engine: Engine) -> Iterator[None]:
    """Hold the database's run lock for the block; raise RunLocked if another run holds it."""
    if engine.dialect.name == "postgresql":
        with _pg_lock(engine):
            yield
    elif engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
        with _file_lock(f"{engine.url.database}.lock"):
            yield
    else:
        yield


@contextmanager
def _file_lock(path: str) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
            raise RunLocked(f"another kvwatch run (pid {holder}) is using this database; not starting a second one") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)


@contextmanager
def _pg_lock(engine: Engine) -> Iterator[None]:
    try:
        conn = engine.connect()
    except SQLAlchemyError as exc:
        raise DatabaseUnavailable(f"cannot reach database {engine.url!r}: {str(exc).splitlines()[0]}") from exc
    with conn:
        if not conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_LOCK_KEY}).scalar():
            raise RunLocked("another kvwatch run is using this database; not starting a second one")
        conn.commit()  # the advisory lock is session-level: it outlives the transaction
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK_KEY})
            conn.commit()
