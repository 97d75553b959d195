"""Fixtures for the Prefect flows: one real Prefect server (ephemeral, in a subprocess)
for the whole session, started only when a test asks for it, and the environment a flow
run reads its database and report folder from.

Prefect is imported inside the fixtures, so the engine's tests in this folder do not pay
for it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

# Read by the server subprocess: no telemetry calls, no block registration (the flows use
# no blocks), and events persisted quickly so a test can read them back.
SERVER_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_API_BLOCKS_REGISTER_ON_START": "false",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL": "0.2",
}

_startup: list[float] = []


@pytest.fixture(scope="session")
def prefect_api():
    """A temporary Prefect server and API for the session; yields its startup seconds."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with pytest.MonkeyPatch.context() as patch:
        for name, value in SERVER_ENV.items():
            patch.setenv(name, value)
        began = time.perf_counter()
        # Heartbeats off: the heartbeat thread makes every flow run wait up to a second
        # for it at the end.
        with (
            prefect_test_harness(server_startup_timeout=120),
            temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}),
        ):
            _startup.append(time.perf_counter() - began)
            yield _startup[0]


def pytest_terminal_summary(terminalreporter):
    if _startup:
        terminalreporter.write_line(f"Prefect test server started in {_startup[0]:.1f} s")


@pytest.fixture
def dunghan_env(database_url, tmp_path, monkeypatch):
    """What a flow run reads from its environment: a fresh database, a report folder, the
    shipped calendar. Returns the database URL."""
    monkeypatch.setenv("DUNGHAN_DATABASE_URL", database_url)
    monkeypatch.setenv("DUNGHAN_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("DUNGHAN_OUTBOX_DIR", str(tmp_path / "outbox"))
    for name in ("DUNGHAN_SMTP_HOST", "DUNGHAN_SMTP_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DUNGHAN_CALENDAR_OVERRIDES", raising=False)
    return database_url


@pytest.fixture
def since():
    """The moment the test started: events are read back from then on."""
    return datetime.now(UTC)
