"""Faults: the main job with delivery to a real SMTP server, alone or two at once, killed
with SIGKILL at random (seeded) points and rerun, ends exactly where an uninterrupted run
ends — same items, steps, outbox and delivered mail, nothing lost, at most one message
repeated per kill — on SQLite and PostgreSQL; a locked database fails clearly and writes
nothing."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import create_engine, text

from flows.engine import EngineContext, sweep
from notifications.compose import message_id
from notifications.delivery import deliver_pending
from notifications.settings import MailSettings
from tests.notifications.support import start_server

DUNGHAN = str(Path(sys.executable).with_name("dunghan"))
# The main job (`make run` without the dossiers) over three weeks of the plan: items,
# the first escalations, events and their confirmations, then delivery over SMTP.
MAIN_JOB = ("simulate", "--from", "2025-02-24", "--to", "2025-03-14", "--seed", "7", "--deliver")
KILLS = 22  # per backend, of the main job alone
# Two sweeps racing on each of these days (creation, due today, overdue steps): up to 8
# kills per backend.
RACING_DAYS = ("2025-02-24", "2025-02-28", "2025-03-05", "2025-03-14")


def env_for(url: str, **extra) -> dict:
    return {**os.environ, "DUNGHAN_DATABASE_URL": url, **extra}


def state(url: str) -> dict[str, list]:
    """Everything the engine wrote, by natural keys (ids and timestamps left out: a killed
    transaction on PostgreSQL still uses up sequence numbers)."""
    engine = create_engine(url)
    queries = {
        "items": """
            SELECT o.number, i.agency_code, i.period_key, i.due, i.status, i.completed_on,
                   i.original_agency_code, e.event_code, e.occurred_on
            FROM deadline_item i JOIN obligation o ON o.id = i.obligation_id
            LEFT JOIN event e ON e.id = i.event_id""",
        "escalations": """
            SELECT o.number, i.agency_code, i.period_key, s.step, s.step_date, s.notified
            FROM escalation s JOIN deadline_item i ON i.id = s.item_id
            JOIN obligation o ON o.id = i.obligation_id""",
        "outbox": "SELECT kind, recipient, subject, status FROM notification",
        "events": "SELECT event_code, agency_code, occurred_on, document FROM event",
    }
    with engine.connect() as conn:
        out = {
            name: sorted(tuple(map(_plain, row)) for row in conn.execute(text(sql)))
            for name, sql in queries.items()
        }
        out["keys"] = [k for (k,) in conn.execute(text("SELECT idempotency_key FROM notification"))]
    engine.dispose()
    return out


def _plain(value) -> str:
    """A value as text, alike on both backends (SQLite has no booleans)."""
    return str(int(value)) if isinstance(value, bool) else str(value)


def delivered(server) -> tuple[Counter, Counter]:
    """(recipient, subject) of each distinct message the server received, and how many
    times each Message-ID arrived."""
    ids = server.handler.ids()
    first = {}
    for received in server.handler.received:
        message = received.message
        first.setdefault(message["Message-ID"], (received.rcpt_tos[0], str(message["Subject"])))
    return Counter(first.values()), ids


@dataclass
class Reference:
    state: dict
    mail: Counter
    seconds: float


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Reference:
    """One uninterrupted main job, on SQLite, delivering to its own SMTP server."""
    folder = tmp_path_factory.mktemp("reference")
    url = f"sqlite:///{folder}/reference.db"
    server = start_server()
    try:
        began = time.perf_counter()
        done = subprocess.run(
            [DUNGHAN, *MAIN_JOB], env=env_for(url, **smtp_env(server)), capture_output=True
        )
        seconds = time.perf_counter() - began
        assert done.returncode == 0, done.stderr.decode()
        mail, ids = delivered(server)
    finally:
        server.stop()
    expected = state(url)
    assert expected["items"] and expected["escalations"] and expected["events"]
    assert set(ids.values()) == {1} and sum(mail.values()) == len(expected["outbox"])
    return Reference(expected, mail, seconds)


# A killed sender's claims last this long (DUNGHAN_OUTBOX_LEASE): the final run waits it
# out, as a real one would wait the default ten minutes.
LEASE_SECONDS = 2


def smtp_env(server) -> dict[str, str]:
    return {
        "DUNGHAN_SMTP_HOST": "127.0.0.1",
        "DUNGHAN_SMTP_PORT": str(server.port),
        "DUNGHAN_OUTBOX_LEASE": str(LEASE_SECONDS),
    }


@contextmanager
def fresh_database(database_url: str, tmp_path: Path, name: str) -> Iterator[str]:
    """Another empty database on the backend of `database_url` ("sqlite…", "postgresql…")."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path}/{name}.db"
        return
    base = os.environ["DUNGHAN_TEST_DATABASE_URL"]
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in base else "?"
    try:
        yield f"{base}{separator}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def kill_at(processes: list[subprocess.Popen], moments: list[float]) -> int:
    """SIGKILL each process at its moment (seconds from now) unless it ended; the kills."""
    began, kills = time.monotonic(), 0
    for process, moment in sorted(zip(processes, moments, strict=True), key=lambda p: p[1]):
        time.sleep(max(0.0, began + moment - time.monotonic()))
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            kills += 1
    for process in processes:
        process.wait()
    return kills


def start(url: str, server, output=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen(
        [DUNGHAN, *MAIN_JOB], env=env_for(url, **smtp_env(server)), stdout=output, stderr=output
    )


def check_against(reference: Reference, url: str, server, kills: int) -> tuple[int, int]:
    """The crashed database and mailbox hold what the uninterrupted run's do; every
    message arrived, at most one of them once more per kill. Returns (delivered, repeats)."""
    got = state(url)
    for table in ("items", "escalations", "outbox", "events"):
        assert got[table] == reference.state[table], table
    mail, ids = delivered(server)
    assert mail == reference.mail
    sender = MailSettings.from_env({}).from_address
    lost = {message_id(key, sender) for key in got["keys"]} - set(ids)
    assert not lost, f"{len(lost)} messages lost"
    repeats = sum(ids.values()) - len(ids)
    assert repeats <= kills
    return len(ids), repeats


def test_the_main_job_killed_at_random_points_ends_like_an_uninterrupted_run(
    reference, database_url, tmp_path
):
    """The main job killed again and again from a fresh database; when a run gets to its
    end before its kill, the sequence is checked and the next starts afresh, until the
    kills add up."""
    rng = random.Random(2025)
    figures: Counter = Counter()
    while figures["kills"] < KILLS:
        server = start_server()
        try:
            with fresh_database(database_url, tmp_path, f"crashed-{figures['sequences']}") as url:
                kills = 0
                while figures["kills"] + kills < KILLS:
                    moment = rng.uniform(0.3, 1.0) * reference.seconds
                    if not kill_at([start(url, server)], [moment]):
                        break  # this run got to its end
                    kills += 1
                time.sleep(LEASE_SECONDS)  # a killed sender's claims run out
                rerun = subprocess.run(
                    [DUNGHAN, *MAIN_JOB], env=env_for(url, **smtp_env(server)), capture_output=True
                )
                assert rerun.returncode == 0, rerun.stderr.decode()
                sent, repeats = check_against(reference, url, server, kills)
        finally:
            server.stop()
        figures.update(sequences=1, kills=kills, delivered=sent, repeated=repeats)
    print(f"main job: {dict(figures)}")


@pytest.fixture(scope="module")
def sweeps_reference(tmp_path_factory) -> Reference:
    """The racing days swept and delivered one after the other, uninterrupted."""
    folder = tmp_path_factory.mktemp("sweeps-reference")
    url = f"sqlite:///{folder}/reference.db"
    server = start_server()
    try:
        ctx = EngineContext.open(url)
        settings = MailSettings.from_env(smtp_env(server))
        for day in RACING_DAYS:
            sweep(ctx, date.fromisoformat(day), actor="cli")
            deliver_pending(ctx.db, settings=settings)
        ctx.db.dispose()
        mail, ids = delivered(server)
    finally:
        server.stop()
    expected = state(url)
    assert expected["escalations"] and set(ids.values()) == {1}
    return Reference(expected, mail, 0.0)


def test_two_racing_sweeps_killed_at_random_points_end_like_one(
    sweeps_reference, reference, database_url, tmp_path
):
    """Each day two `dunghan run` (sweep, then delivery) at once, both killed at random
    points, then both run again to the end: as if each day had been swept once."""
    rng = random.Random(384)
    server = start_server()
    estimate, kills = reference.seconds / 2, 0
    try:
        with fresh_database(database_url, tmp_path, "racing") as url:
            for day in RACING_DAYS:
                command = [DUNGHAN, "run", "--date", day]
                environment = env_for(url, **smtp_env(server))

                def racer(output=subprocess.DEVNULL, command=command, environment=environment):
                    return subprocess.Popen(command, env=environment, stdout=output, stderr=output)

                moments = [rng.uniform(0.3, 1.0) * estimate for _ in range(2)]
                kills += kill_at([racer(), racer()], moments)
                time.sleep(LEASE_SECONDS)
                began = time.monotonic()
                finishing = [racer(subprocess.PIPE) for _ in range(2)]
                for process in finishing:
                    out, err = process.communicate(timeout=600)
                    assert process.returncode == 0, (out + err).decode()[-3000:]
                estimate = time.monotonic() - began
            sent, repeats = check_against(sweeps_reference, url, server, kills)
    finally:
        server.stop()
    assert kills >= len(RACING_DAYS)
    print(f"racing sweeps: kills {kills}, delivered {sent}, repeated {repeats}")


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
