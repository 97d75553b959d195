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
