"""Scale-out: several sweep partitions and several senders at once, in separate
processes, against one database and one real SMTP server. Every item, ladder step and
message exists exactly once, and every message is delivered exactly once.

Runs on SQLite and, when `DUNGHAN_TEST_DATABASE_URL` is set (CI), on PostgreSQL, where
the senders claim rows with SELECT … FOR UPDATE SKIP LOCKED.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from collections import Counter
from datetime import date

from sqlalchemy import func, select

from flows.engine import EngineContext, agency_partitions, sweep
from models.db import session_scope
from models.tables import DeadlineItem, Escalation, Notification, Obligation
from tests.notifications.support import RecordingHandler, start_server

DAYS = (date(2025, 2, 27), date(2025, 3, 18))
PARTITIONS = 4
SENDERS = 3


class SlowServer(RecordingHandler):
    """A server that takes a while per message, so that the senders overlap."""

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(0.03)
        return await super().handle_DATA(server, session, envelope)


def sweep_partition(url: str, day: date, agencies: list[str], label: str) -> int:
    ctx = EngineContext.open(url)
    result = sweep(ctx, day, agencies=agencies, partition=label)
    ctx.db.dispose()
    return len(result.escalations)


def send(url: str, port: int) -> int:
    from models.db import make_engine
    from notifications.delivery import deliver_pending
    from notifications.settings import MailSettings

    engine = make_engine(url)
    settings = MailSettings(
        host="127.0.0.1", port=port, mail_from="Đúng hạn <dunghan@example.gov.vn>"
    )
    report = deliver_pending(engine, settings=settings, batch_size=5)
    engine.dispose()
    return report.sent


def keys(ctx: EngineContext) -> tuple[list, list]:
    with session_scope(ctx.db) as session:
        items = session.execute(
            select(Obligation.number, DeadlineItem.agency_code, DeadlineItem.due).join(
                Obligation, Obligation.id == DeadlineItem.obligation_id
            )
        ).all()
        steps = session.execute(
            select(Obligation.number, DeadlineItem.agency_code, DeadlineItem.due, Escalation.step)
            .join(DeadlineItem, DeadlineItem.id == Escalation.item_id)
            .join(Obligation, Obligation.id == DeadlineItem.obligation_id)
        ).all()
    return sorted(items), sorted(steps)


def test_partitions_and_senders_at_once_no_duplicates_no_losses(database_url, tmp_path):
    ctx = EngineContext.open(database_url)
    parts = agency_partitions(ctx, PARTITIONS)
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(PARTITIONS + 1) as pool:
        for day in DAYS:
            jobs = [
                pool.apply_async(sweep_partition, (database_url, day, part, f"p{i}"))
                for i, part in enumerate(parts)
            ]
            # A duplicate partition at the same time: unique keys must absorb it.
            jobs.append(pool.apply_async(sweep_partition, (database_url, day, parts[0], "p0")))
            assert all(job.get(timeout=300) >= 0 for job in jobs)

    reference = EngineContext.open(f"sqlite:///{tmp_path}/reference.db")
    for day in DAYS:
        sweep(reference, day)
    assert keys(ctx) == keys(reference)
    with session_scope(ctx.db) as session:
        doubled = session.execute(
            select(Escalation.item_id, Escalation.step)
            .group_by(Escalation.item_id, Escalation.step)
            .having(func.count() > 1)
        ).all()
        queued = session.scalar(select(func.count()).select_from(Notification))
    assert doubled == [] and queued > SENDERS * 5

    server = start_server(SlowServer())
    try:
        with spawn.Pool(SENDERS) as pool:
            sent = pool.starmap(send, [(database_url, server.port)] * SENDERS)
        arrivals = Counter(r.message["Message-ID"] for r in server.handler.received)
    finally:
        server.stop()
    assert sum(sent) == queued
    assert len(arrivals) == queued and set(arrivals.values()) == {1}
    with session_scope(ctx.db) as session:
        states = dict(
            session.execute(
                select(Notification.status, func.count()).group_by(Notification.status)
            ).all()
        )
    assert states == {"sent": queued}
    assert sum(1 for n in sent if n > 0) >= 2, "the senders did not share the work"
    ctx.db.dispose()
    reference.db.dispose()
