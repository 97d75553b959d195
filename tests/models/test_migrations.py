"""Upgrading a database that already holds dossiers (revision 0002) to the regimes and
states of revision 0003: every existing row is filled from what it holds; on SQLite and
PostgreSQL."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import models.tables  # noqa: F401  (registers the tables)
from models.db import MIGRATIONS, make_engine, migrate


def migration_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine, revision: str) -> None:
    config = migration_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_existing_dossiers_get_their_regime_state_and_clocks(database_url):
    engine = make_engine(database_url)
    upgrade(engine, "0002")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO agency (code, name, kind) VALUES ('SO-XD', 'Sở', 'x')"))
        conn.execute(
            text(
                "INSERT INTO procedure (code, name, limit_value, limit_unit, level) "
                "VALUES ('P', 'Thủ tục', 5, 'working_days', 'province')"
            )
        )
        for dossier_id, received, requested, supplied, completed, apology in (
            ("OLD", "2025-06-30 09:00:00", None, None, "2025-07-07 10:00:00", None),
            ("WAIT", "2025-07-21 09:00:00", "2025-07-23 10:00:00", None, None, None),
            ("SORRY", "2025-07-07 09:00:00", None, None, None, "2025-07-10 10:00:00"),
        ):
            conn.execute(
                text(
                    "INSERT INTO dossier (id, procedure_code, agency_code, channel, received_at,"
                    " completed_at, supplement_requested_at, supplement_received_at, apology_at,"
                    " apology_new_due, digitized, e_result, legal_due, due, imported_at) VALUES"
                    " (:id, 'P', 'SO-XD', 'online', :received, :completed, :requested,"
                    " :supplied, :apology, :new_due, true, true, '2025-07-28 17:00:00',"
                    " '2025-07-28 17:00:00', '2025-08-01 07:00:00')"
                ),
                {
                    "id": dossier_id,
                    "received": received,
                    "completed": completed,
                    "requested": requested,
                    "supplied": supplied,
                    "apology": apology,
                    "new_due": apology and "2025-07-18 17:00:00",
                },
            )
    upgrade(engine, "head")
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT id, regime, state, supplement_requests, reschedules,"
                " first_due = legal_due, due_766 = legal_due FROM dossier ORDER BY id"
            )
        ).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("OLD", "ND61", "completed", 0, 0, True, True),
        ("SORRY", "ND118", "rescheduled", 0, 1, True, True),
        ("WAIT", "ND118", "awaiting_supplement", 1, 0, True, True),
    ]


def test_the_migrated_schema_is_the_models_schema(database_url):
    """The migrations build exactly the schema the models declare (a column added to a
    table without its migration fails here, not in production)."""
    engine = make_engine(database_url)
    migrate(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert differences == []


KILLED_MIGRATION = """
import os, signal, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
from models.db import make_engine, migrate

created = 0

@event.listens_for(Engine, "after_cursor_execute")
def _die_after_some_tables(conn, cursor, statement, parameters, context, executemany):
    global created
    if statement.lstrip().upper().startswith("CREATE"):
        created += 1
        if created == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)

migrate(make_engine(sys.argv[1]))
"""


@pytest.mark.parametrize("statements", [1, 4, 15])
def test_a_migration_killed_halfway_leaves_nothing_and_the_next_start_migrates(
    database_url, statements
):
    """A process SIGKILLed in the middle of the first migration (several sweeps starting
    at once on a fresh database, one of them killed) leaves no table behind, so the next
    start does not fail with "table … already exists" but builds the whole schema."""
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_MIGRATION, database_url, str(statements)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    engine = make_engine(database_url)
    with engine.connect() as connection:
        assert inspect(connection).get_table_names() == []
    migrate(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    assert differences == []
    assert revision == ScriptDirectory.from_config(migration_config()).get_current_head()


def test_a_start_on_a_schema_at_head_does_not_wait_for_another_writer(tmp_path, monkeypatch):
    """A process starting while another holds SQLite's write lock (a large import, for
    tens of seconds) finds the schema at head by reading only: it neither waits for the
    lock nor fails with "database is locked"."""
    url = f"sqlite:///{tmp_path}/dunghan.db"
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    monkeypatch.setenv("DUNGHAN_SQLITE_TIMEOUT", "0.5")
    writer = sqlite3.connect(f"{tmp_path}/dunghan.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO agency (code, name, kind) VALUES ('X', 'X', 'x')")
    try:
        starting = make_engine(url)
        migrate(starting)  # raises "database is locked" if it asked for the write lock
        with starting.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM agency")).scalar() == 0
        starting.dispose()
    finally:
        writer.execute("ROLLBACK")
        writer.close()
