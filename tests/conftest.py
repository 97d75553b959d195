"""Shared fixtures.

`database_url` gives each test a fresh, empty database: a SQLite file in the test's tmp
folder, and — when `DUNGHAN_TEST_DATABASE_URL` is set (CI sets it) — the same test again
on PostgreSQL, in a schema of its own that is dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import quote

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, text

from deadlines.calendar import WorkCalendar

POSTGRES_ENV = "DUNGHAN_TEST_DATABASE_URL"

# CI explores the same examples on every run (a red CI must be reproducible); a
# developer's runs explore new ones.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

# How many inputs Hypothesis generated in this run, said at the end (the figure CI keeps
# above 10,000). Counted through Hypothesis' observability callbacks, without the code
# coverage it would otherwise collect for each input.
_generated: list[int] = [0]


def _count_input(observation, _thread=None) -> None:
    if observation.type == "test_case" and observation.status != "gave_up":
        _generated[0] += 1


try:
    from hypothesis.internal import observability

    observability.OBSERVABILITY_COLLECT_COVERAGE = False
    observability.add_observability_callback(_count_input, all_threads=True)
except (ImportError, AttributeError):  # pragma: no cover - an older Hypothesis: no count
    pass


def pytest_terminal_summary(terminalreporter):
    if _generated[0]:
        terminalreporter.write_line(f"Hypothesis generated {_generated[0]:,} inputs")


BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get(POSTGRES_ENV) else [])


@pytest.fixture(scope="session")
def cal() -> WorkCalendar:
    return WorkCalendar.vietnam()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """A fresh database URL per test, on each configured backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/dunghan.db"
        return
    base = os.environ[POSTGRES_ENV]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()
