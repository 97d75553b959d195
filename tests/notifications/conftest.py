"""Fixtures of the notification tests: a real SMTP server, a migrated database."""

from __future__ import annotations

import pytest

from models.db import make_engine, migrate
from tests.notifications.support import start_server


@pytest.fixture
def smtp():
    server = start_server()
    yield server
    server.handler.release.set()
    server.stop()


@pytest.fixture
def engine(database_url):
    db = make_engine(database_url)
    migrate(db)
    yield db
    db.dispose()
