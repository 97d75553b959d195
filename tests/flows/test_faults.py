"""Faults: a run killed with SIGKILL at random points, then rerun, ends exactly where an
uninterrupted run ends; a locked database fails clearly and writes nothing."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text

DUNGHAN = str(Path(sys.executable).with_name("dunghan"))
SIMULATION = ("simulate", "--from", "2025-02-24", "--to", "2025-04-30", "--seed", "7")


def env_for(url: str, **extra) -> dict:
    return {**os.environ, "DUNGHAN_DATABASE_URL": url, **extra}


def state(url: str) -> dict[str, list]:
    """Everything the engine wrote, by natural keys (ids and timestamps left out)."""
    engine = create_engine(url)
    queries = {
        "items": """
            SELECT o.number, i.agency_code, i.due, i.status, i.completed_on,
                   i.original_agency_code, e.event_code, e.occurred_on
            FROM deadline_item i JOIN obligation o ON o.id = i.obligation_id
            LEFT JOIN event e ON e.id = i.event_id""",
        "escalations": """
            SELECT o.number, i.agency_code, i.due, s.step, s.step_date, s.notified
            FROM escalation s JOIN deadline_item i ON i.id = s.item_id
            JOIN obligation o ON o.id = i.obligation_id""",
        "outbox": "SELECT idempotency_key, kind, recipient, subject FROM notification",
        "events": "SELECT event_code, agency_code, occurred_on, document FROM event",
    }
    with engine.connect() as conn:
        out = {
            name: sorted(tuple(map(str, row)) for row in conn.execute(text(sql)))
            for name, sql in queries.items()
        }
    engine.dispose()
    return out


def test_a_simulation_killed_at_random_points_then_rerun_ends_like_an_uninterrupted_one(
    tmp_path,
):
    reference = f"sqlite:///{tmp_path}/reference.db"
    began = time.perf_counter()
    done = subprocess.run(
        [DUNGHAN, *SIMULATION], env=env_for(reference), capture_output=True, text=True
    )
    duration = time.perf_counter() - began
    assert done.returncode == 0, done.stderr
    expected = state(reference)
    assert expected["items"] and expected["escalations"] and expected["outbox"]

    crashed = f"sqlite:///{tmp_path}/crashed.db"
    rng = random.Random(2025)
    kills = 0
    for _ in range(4):
        process = subprocess.Popen(
            [DUNGHAN, *SIMULATION],
            env=env_for(crashed),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Somewhere between start-up and the end of an uninterrupted run.
        time.sleep(rng.uniform(0.25, 0.9) * duration)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
        process.wait()
    assert kills >= 2, "the run finished before it could be killed: lengthen the simulation"
    rerun = subprocess.run(
        [DUNGHAN, *SIMULATION], env=env_for(crashed), capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    got = state(crashed)
    for table in expected:
        assert got[table] == expected[table], table


def test_a_locked_database_fails_clearly_and_writes_nothing(tmp_path):
    path = tmp_path / "locked.db"
    url = f"sqlite:///{path}"
    first = subprocess.run(
        [DUNGHAN, "run", "--date", "2025-03-03"], env=env_for(url), capture_output=True, text=True
    )
    assert first.returncode == 0, first.stderr
    before = state(url)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        locked = subprocess.run(
            [DUNGHAN, "run", "--date", "2025-03-18"],
            env=env_for(url, DUNGHAN_SQLITE_TIMEOUT="1"),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert locked.returncode == 3
    assert "Không truy cập được cơ sở dữ liệu" in locked.stderr
    assert "Traceback" not in locked.stderr
    assert state(url) == before
    # Once the lock is gone the same run goes through.
    again = subprocess.run(
        [DUNGHAN, "run", "--date", "2025-03-18"], env=env_for(url), capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    assert state(url) != before
