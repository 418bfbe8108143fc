"""Opening the database: engines, SQLite pragmas, migrations to the newest schema."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError, ProgrammingError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from store.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

DEFAULT_DB = "sqlite:///kvwatch.db"
HEAD = "0011"  # the newest migration in store/migrations/versions (tests/test_store.py holds the two together)
MIGRATIONS = Path(__file__).with_name("migrations")


def utcnow() -> datetime:
    """Now, as the naive UTC datetime every table stores."""
    return datetime.now(UTC).replace(tzinfo=None)


def resolve_url(url: str | None) -> str:
    """The database URL: the argument, else $KVWATCH_DB, else ./kvwatch.db."""
    return url or os.environ.get("KVWATCH_DB") or DEFAULT_DB


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str | URL) -> Engine:
    """An engine for `url`; SQLite files get WAL mode and a busy timeout."""
    try:
        engine = create_engine(url, future=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise DatabaseUnavailable(f"cannot use database {masked(url)}: {str(exc).replace(str(url), masked(url))}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        path = engine.url.database
        if path and path != ":memory:" and not Path(path).parent.exists():
            raise DatabaseUnavailable(f"cannot open database {masked(url)}: folder {Path(path).parent} does not exist")
    return engine


def readonly_engine(url: str | URL) -> Engine:
    """An engine that cannot write (for `kvwatch web`): SQLite connections are `query_only`, PostgreSQL
    transactions read-only. The schema must already be current (nothing here migrates)."""
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", lambda conn, _record: conn.execute("PRAGMA query_only = ON"))
    elif engine.dialect.name == "postgresql":
        engine = create_engine(url, future=True, connect_args={"options": "-c default_transaction_read_only=on"})
    return engine


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    cfg.attributes["engine"] = engine
    return cfg


def schema_revision(engine: Engine) -> tuple[str | None, str]:
    """(the database's revision, the newest revision the code knows)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head() or ""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision(), head


def stored_revision(engine: Engine) -> str | None:
    """The database's schema revision, read directly (no Alembic import: commands start fast)."""
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (OperationalError, ProgrammingError):
        return None  # no schema yet


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (a no-op when it is already there)."""
    if stored_revision(engine) == HEAD:
        return
    current, head = schema_revision(engine)
    if current != head:
        from alembic import command

        log.info("migrating database from %s to %s", current, head)
        command.upgrade(alembic_config(engine), "head")


def prepare(engine: Engine, upgrade: bool = True) -> Engine:
    """Check the database answers and (by default) migrate it; raise DatabaseUnavailable if not."""
    try:
        if upgrade:
            migrate(engine)
        else:
            with engine.connect():
                pass
    except SQLAlchemyError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise DatabaseUnavailable(f"cannot reach database {engine.url!r}: {exc.__class__.__name__}: {first}") from exc
    return engine


def open_store(url: str | None = None, upgrade: bool = True) -> Engine:
    """Open (and by default migrate) the database; raise DatabaseUnavailable if it can't be reached."""
    return prepare(make_engine(resolve_url(url)), upgrade)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed on success, rolled back on error. A database that cannot be read
    or written (full disk, I/O error, server gone) raises DatabaseUnavailable, a one-line error."""
    factory = sessionmaker(engine, expire_on_commit=False)
    try:
        with factory.begin() as session:
            yield session
    except (OperationalError, InterfaceError) as exc:
        raise DatabaseUnavailable(f"database {engine.url!r} failed: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def masked(url: str | URL) -> str:
    """A database or broker URL fit to show: its password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<an unparsable database URL>"
