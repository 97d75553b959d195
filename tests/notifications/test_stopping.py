"""`dunghan run` delivers the day's mail as the daily-sweep flow does; a sender stopped
gracefully gives back what it had not tried; a sender killed holds its messages only for
the lease `DUNGHAN_OUTBOX_LEASE` sets. Real processes, a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flows.engine import EngineContext, sweep
from models.db import make_engine, session_scope
from models.tables import Notification
from notifications.delivery import deliver_pending
from notifications.settings import MailSettings

DUNGHAN = str(Path(sys.executable).with_name("dunghan"))
D = date.fromisoformat


def environment(url: str, smtp, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DUNGHAN_", "PREFECT_"))}
    return env | {
        "DUNGHAN_DATABASE_URL": url,
        "DUNGHAN_SMTP_HOST": "127.0.0.1",
        "DUNGHAN_SMTP_PORT": str(smtp.port),
        "DUNGHAN_OUTBOX_DIR": str(tmp_path / "eml"),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        **extra,
    }


def statuses(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with session_scope(engine) as session:
        rows = dict(
            session.execute(
                select(Notification.status, func.count()).group_by(Notification.status)
            ).all()
        )
    engine.dispose()
    return rows


def queue_a_day(url: str, day: str) -> int:
    ctx = EngineContext.open(url)
    queued = sweep(ctx, D(day)).notifications
    ctx.db.dispose()
    return queued


def test_dunghan_run_delivers_the_days_mail_and_says_so(database_url, smtp, tmp_path):
    env = environment(database_url, smtp, tmp_path)
    done = subprocess.run(
        [DUNGHAN, "run", "--date", "2025-03-18"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    sent = statuses(database_url)
    assert set(sent) == {"sent"} and sent["sent"] > 0
    assert len(smtp.handler.received) == sent["sent"]
    assert f"{sent['sent']} thư đã gửi" in done.stdout
    assert f"máy chủ SMTP 127.0.0.1:{smtp.port}" in done.stdout

    queued = subprocess.run(
        [DUNGHAN, "run", "--date", "2025-03-19", "--no-deliver"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert queued.returncode == 0, queued.stderr
    assert statuses(database_url).get("pending", 0) > 0
    assert len(smtp.handler.received) == sent["sent"]  # nothing more went out
    assert "thư đã gửi" not in queued.stdout and "Thư đưa vào hàng đợi" in queued.stdout


@pytest.mark.parametrize(("stop", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_sender_stopped_gracefully_gives_back_what_it_had_not_tried(
    database_url, smtp, tmp_path, stop, code
):
    queued = queue_a_day(database_url, "2025-03-18")
    assert queued > 4
    smtp.handler.hold_at = 3  # the third message stays on its way until released
    env = environment(database_url, smtp, tmp_path, DUNGHAN_OUTBOX_LEASE="3600")
    sender = subprocess.Popen(
        [DUNGHAN, "outbox", "send"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert smtp.handler.arrived.wait(60)
    sender.send_signal(stop)
    _, err = sender.communicate(timeout=60)
    smtp.handler.release.set()
    assert sender.returncode == code, err.decode()
    stopped = err.decode()
    assert "Đã dừng theo yêu cầu: 2 thư đã gửi" in stopped
    assert f"{queued - 3} thư chưa gửi được trả lại hàng đợi" in stopped
    assert "Traceback" not in stopped
    # Given back: due at once, although the lease is an hour; the third keeps its claim
    # (it reached the server, whose answer never came back).
    assert statuses(database_url) == {"sent": 2, "sending": 1, "pending": queued - 3}
    again = subprocess.run([DUNGHAN, "outbox", "send"], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert statuses(database_url) == {"sent": queued - 1, "sending": 1}
    ids = smtp.handler.ids()
    assert len(ids) == queued and set(ids.values()) == {1}


def test_a_killed_senders_messages_wait_only_for_the_lease_it_sets(database_url, smtp, tmp_path):
    queued = queue_a_day(database_url, "2025-03-18")
    smtp.handler.hold_at = 2
    env = environment(database_url, smtp, tmp_path, DUNGHAN_OUTBOX_LEASE="5")
    settings = MailSettings.from_env(env)
    assert settings.lease == timedelta(seconds=5)
    sender = subprocess.Popen(
        [DUNGHAN, "outbox", "send"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert smtp.handler.arrived.wait(60)
    sender.kill()
    killed = time.monotonic()
    sender.wait()
    smtp.handler.release.set()
    assert statuses(database_url) == {"sent": 1, "sending": queued - 1}
    engine = make_engine(database_url)
    early = deliver_pending(engine, settings=settings)
    assert time.monotonic() - killed < 5
    assert early.sent == 0  # still held by the dead sender's claim
    time.sleep(max(0.0, 5.5 - (time.monotonic() - killed)))
    late = deliver_pending(engine, settings=settings)
    engine.dispose()
    assert late.sent == queued - 1
    assert statuses(database_url) == {"sent": queued}
    ids = smtp.handler.ids()
    # Every message arrived; the one the server had when the sender died, twice.
    assert len(ids) == queued and sorted(ids.values()) == [1] * (queued - 1) + [2]
