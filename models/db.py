"""The database: where it is, how to open it, how to bring its schema up to date."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool
from sqlmodel import Session, create_engine

DATABASE_ENV = "DUNGHAN_DATABASE_URL"
DEFAULT_DATABASE = "sqlite:///var/dunghan.db"
# How long a SQLite writer waits for another's lock before failing (seconds).
SQLITE_TIMEOUT_ENV = "DUNGHAN_SQLITE_TIMEOUT"
MIGRATIONS = Path(__file__).with_name("migrations")


def database_url(environ: dict[str, str] | None = None) -> str:
    """The configured SQLAlchemy URL: `DUNGHAN_DATABASE_URL`, else a SQLite file in var/."""
    return (os.environ if environ is None else environ).get(DATABASE_ENV) or DEFAULT_DATABASE


def redact(url: str) -> str:
    """A URL safe to print: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def make_engine(url: str | None = None, **kwargs) -> Engine:
    """An engine for `url` (default: the configured one). SQLite gets a busy timeout and
    foreign keys; its folder is created."""
    url = url or database_url()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        timeout = float(os.environ.get(SQLITE_TIMEOUT_ENV) or 30)
        kwargs.setdefault("connect_args", {"timeout": timeout})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


PAGE_SIZE = 16384


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # A new database gets 16 KiB pages (SQLite's default is 4 KiB; an existing file keeps
    # its own): measured on a million dossiers, the upsert, the index builds and the
    # commit of an import take a quarter less time.
    cursor.execute(f"PRAGMA page_size={PAGE_SIZE}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # 64 MiB of page cache (the default is 2 MiB): a million-row table's indexes then stay
    # in memory during bulk upserts, which keeps the import linear.
    cursor.execute("PRAGMA cache_size=-65536")
    # Reads through the OS page cache without copying (up to 1 GiB of the file): halves
    # the aggregate queries over a million dossiers.
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.close()


def migrate(engine: Engine) -> None:
    """Create or upgrade the schema to the latest Alembic revision.

    Several processes may start at once on a fresh database (two sweeps, a sweep and a
    sender): one migrates while the others wait for it, then find the schema at head.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with (
        _migration_lock(engine),
        _transactional_ddl(engine) as migrating,
        migrating.begin() as connection,
    ):
        if connection.dialect.name == "postgresql":
            # Held until this transaction ends, per schema (the search path's first).
            connection.exec_driver_sql(
                "SELECT pg_advisory_xact_lock(hashtext('dunghan.migrate.' || current_schema()))"
            )
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def _transactional_ddl(engine: Engine) -> Iterator[Engine]:
    """The engine to migrate with. PostgreSQL's DDL is transactional already. Python's
    sqlite3 driver runs CREATE/ALTER outside any transaction, so a process killed halfway
    through a migration would leave tables without the revision that made them (the next
    start then fails with "table … already exists"): on SQLite the migration runs on its
    own engine whose every transaction is an explicit BEGIN … COMMIT, so all of it lands
    or none of it does. (Deferred: a start that finds the schema at head only reads, and
    does not wait for another process's long write such as a large import; migrations
    themselves are serialised by `_migration_lock`.)"""
    if engine.url.get_backend_name() != "sqlite" or engine.url.database in (None, "", ":memory:"):
        yield engine  # (an in-memory database lives in its one connection: nothing to kill)
        return
    migrating = make_engine(engine.url.render_as_string(hide_password=False), poolclass=NullPool)

    @event.listens_for(migrating, "connect")  # after make_engine's pragmas
    def _connect(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None  # the driver opens no transaction itself

    @event.listens_for(migrating, "begin")
    def _begin(connection) -> None:
        connection.exec_driver_sql("BEGIN")

    try:
        yield migrating
    finally:
        migrating.dispose()


@contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """SQLite: an exclusive lock on a file beside the database for the migration, so one
    process migrates while the others wait and then find the schema at head."""
    database = engine.url.database if engine.url.get_backend_name() == "sqlite" else None
    if not database or database == ":memory:":
        yield
        return
    import fcntl

    with open(f"{database}.migrate-lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error: all or nothing."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
