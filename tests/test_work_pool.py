"""Scale-out as docs/scale-out.md sets it up: a Prefect server, a process work pool, two
`prefect worker` processes, the daily sweep deployed and run in partitions at once (plus
a duplicate partition) with the outbox delivery, on PostgreSQL (SQLite when no
PostgreSQL is configured) and a real SMTP server. Every item, step, Prefect event and
message exists once, and every message is delivered once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flows.engine import EngineContext, agency_partitions, sweep
from flows.local_server import local_server, stop_group
from models.db import session_scope
from models.tables import Announcement, Escalation, Notification
from tests.flows.prefect_support import read_events
from tests.flows.test_engine import natural_keys
from tests.flows.test_faults import fresh_database
from tests.notifications.support import start_server

ROOT = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))
POOL = "dunghan-test"
DAY = "2025-03-18"
PARTITIONS = 4


@pytest.fixture
def store_url(tmp_path):
    """PostgreSQL when configured (CI) in a schema of its own, else SQLite: one run."""
    backend = "postgresql" if os.environ.get("DUNGHAN_TEST_DATABASE_URL") else "sqlite"
    with fresh_database(backend, tmp_path, "pool") as url:
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_partitions_and_delivery_on_a_process_work_pool_with_two_workers(store_url, tmp_path):
    from prefect import flow as prefect_flow
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    smtp = start_server()
    home = tmp_path / "prefect"
    workers: list[subprocess.Popen] = []
    try:
        with local_server(free_port(), home) as server:
            env = {
                **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
                "PREFECT_API_URL": server.api_url,
                "PREFECT_HOME": str(home),
                "DUNGHAN_DATABASE_URL": store_url,
                "DUNGHAN_SMTP_HOST": "127.0.0.1",
                "DUNGHAN_SMTP_PORT": str(smtp.port),
                "DUNGHAN_REPORTS_DIR": str(tmp_path / "reports"),
                "DUNGHAN_OUTBOX_DIR": str(tmp_path / "eml"),
            }
            created = subprocess.run(
                [PREFECT, "work-pool", "create", POOL, "--type", "process"],
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert created.returncode == 0, created.stdout + created.stderr
            with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
                for name, entrypoint in (
                    ("sweep", "flows/daily_sweep.py:daily_sweep"),
                    ("deliver", "flows/outbox_flow.py:deliver_outbox"),
                ):
                    source = prefect_flow.from_source(source=str(ROOT), entrypoint=entrypoint)
                    source.deploy(name=f"test-{name}", work_pool_name=POOL, print_next_steps=False)
                for n in range(2):
                    workers.append(
                        subprocess.Popen(
                            [PREFECT, "worker", "start", "--pool", POOL, "--name", f"w{n}"],
                            env=env,
                            cwd=ROOT,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            start_new_session=True,
                        )
                    )
                ctx = EngineContext.open(store_url)
                parts = agency_partitions(ctx, PARTITIONS)
                ctx.db.dispose()
                began = time.monotonic()
                runs = [
                    run_deployment(
                        "daily-sweep/test-sweep",
                        parameters={"date": DAY, "agencies": part},
                        timeout=0,
                    )
                    for part in [*parts, parts[0]]  # the first partition twice
                ] + [run_deployment("deliver-outbox/test-deliver", timeout=0) for _ in range(2)]
                finished = {}
                with get_client(sync_client=True) as client:
                    while len(finished) < len(runs) and time.monotonic() - began < 900:
                        for run in runs:
                            state = client.read_flow_run(run.id)
                            if state.state and state.state.is_final():
                                finished[run.id] = state
                        time.sleep(1)
                elapsed = time.monotonic() - began
                stored = Counter(
                    (event.resource.id, event.resource["dunghan.step"])
                    for event in read_events(
                        "dunghan.escalation.reached", datetime.now(UTC) - timedelta(hours=1)
                    ).values()
                )
    finally:
        for worker in workers:
            stop_group(worker, 20)
        smtp.stop()

    assert len(finished) == len(runs), f"{len(finished)} of {len(runs)} runs ended in {elapsed} s"
    assert all(r.state.is_completed() for r in finished.values()), [
        (r.name, r.state.message) for r in finished.values()
    ]
    durations = sorted(r.total_run_time.total_seconds() for r in finished.values())
    print(f"work pool: {len(runs)} runs on 2 workers in {elapsed:.0f} s; run times {durations}")

    # The same as one whole sweep alone, delivered once, every message.
    whole = EngineContext.open(f"sqlite:///{tmp_path}/whole.db")
    sweep(whole, date.fromisoformat(DAY))
    pooled = EngineContext.open(store_url)
    assert natural_keys(pooled)[0] == natural_keys(whole)[0]
    with session_scope(pooled.db) as session:
        statuses = dict(
            session.execute(
                select(Notification.status, func.count()).group_by(Notification.status)
            ).all()
        )
        steps = session.scalar(select(func.count()).select_from(Escalation))
        announced = session.scalar(
            select(func.count()).where(Announcement.announced_at.is_not(None))
        )
        announcements = session.scalar(select(func.count()).select_from(Announcement))
    ids = smtp.handler.ids()
    assert set(statuses) == {"sent"} and statuses["sent"] == len(ids) > 0
    assert set(ids.values()) == {1}
    # Each step reached is announced once, and the server stored exactly those events.
    assert steps == announcements == announced > 0
    assert len(stored) == steps and set(stored.values()) == {1}
    whole.db.dispose()
    pooled.db.dispose()
