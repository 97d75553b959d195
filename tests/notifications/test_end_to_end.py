"""From the plan to the inbox: the engine's sweep queues, delivery sends to a real SMTP
server, and what each department receives is its own digest, once, with its calendar."""

from __future__ import annotations

import re
import threading
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from flows.cli import app
from flows.engine import EngineContext, complete_item, record_event, sweep
from models.db import session_scope
from models.store import utcnow
from models.tables import DeadlineItem, ItemStatus, Notification, Obligation
from notifications.delivery import deliver_pending
from notifications.queries import agency_calendar
from tests.notifications.test_ics import events, unescape

D = date.fromisoformat
TUESDAY = D("2025-04-29")
II_1B = "nhan-duoc-quyet-dinh-cong-bo-tthc-cua-bo-truong-cac-bo-nganh-trung-uong"


@pytest.fixture
def ctx(database_url) -> EngineContext:
    context = EngineContext.open(database_url)
    yield context
    context.db.dispose()


def by_recipient(received) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in received:
        out.setdefault(r.rcpt_tos[0], []).append(r.message)
    return out


def test_each_department_gets_one_digest_of_all_its_items_and_its_calendar(ctx, smtp):
    result = sweep(ctx, TUESDAY)
    assert result.notifications > 10
    report = deliver_pending(ctx.db, now=utcnow(), settings=smtp.settings())
    assert (report.sent, report.retry, report.failed) == (result.notifications, 0, 0)
    received = smtp.handler.received
    assert len(received) == result.notifications

    digests = [r for r in received if r.message["X-Dunghan-Kind"] == "digest"]
    recipients = Counter(r.rcpt_tos[0] for r in digests)
    assert set(recipients.values()) == {1}  # one digest per recipient
    focal = ctx.registry.agencies["SO-TP"].focal_email or ctx.registry.agencies["SO-TP"].email
    (digest,) = by_recipient(digests)[focal]
    assert digest["Subject"].startswith("[Đúng hạn] Sở Tư pháp tỉnh Nghệ An: ")
    assert digest["Subject"].endswith(" — 29/4/2025")
    text = digest.get_body(("plain",)).get_content()
    horizon = ctx.cal.add_working_days(TUESDAY, 3)
    with session_scope(ctx.db) as session:
        listed = session.execute(
            select(Obligation.number, DeadlineItem.due)
            .join(Obligation, Obligation.id == DeadlineItem.obligation_id)
            .where(
                DeadlineItem.agency_code == "SO-TP",
                DeadlineItem.status == ItemStatus.OPEN,
                DeadlineItem.due <= horizon,
            )
        ).all()
        open_uids_count = session.scalar(
            select(func.count()).where(
                DeadlineItem.agency_code == "SO-TP", DeadlineItem.status == ItemStatus.OPEN
            )
        )
    assert listed
    for number, due in listed:  # every item of the department, with its Vietnamese date
        weekday = "thứ" if due.weekday() < 6 else "Chủ nhật"
        assert re.search(
            rf"\[{re.escape(number)}\].*\r?\n  Hạn: {weekday}[^,]*, {due.day}/{due.month}/"
            rf"{due.year} \((quá hạn|còn|đến hạn)",
            text,
        ), (number, due)
    assert "Chủ trì: " in text and "QUÁ HẠN (" in text

    (attachment,) = digest.iter_attachments()
    calendar = attachment.get_content()
    entries = events(calendar)
    assert len(entries) == open_uids_count  # every open deadline of the department
    assert all(unescape(e["SUMMARY"]).startswith("[") for e in entries)
    with session_scope(ctx.db) as session:
        same, count = agency_calendar(session, "SO-TP", stamp=utcnow())
    assert count == open_uids_count
    assert {e["UID"] for e in events(same)} == {e["UID"] for e in entries}

    # The escalation letters name every agency and go to the leaders with copies.
    letters = [r for r in received if r.message["X-Dunghan-Kind"] == "escalation"]
    assert letters
    chairman = ctx.registry.agencies["UBND-TINH"].head_email
    (to_chairman,) = by_recipient(letters)[chairman]
    assert "kính báo cáo" in to_chairman.get_body(("plain",)).get_content()
    assert to_chairman["Cc"] is not None

    # Sweeping the same day again, or delivering again, sends nothing more.
    assert sweep(ctx, TUESDAY).notifications == 0
    later = utcnow() + timedelta(hours=1)
    assert deliver_pending(ctx.db, now=later, settings=smtp.settings()).sent == 0
    assert len(smtp.handler.received) == result.notifications


def test_two_sweeps_at_once_then_two_senders_deliver_each_email_once(ctx, database_url, smtp):
    other = EngineContext.open(database_url)
    errors: list[BaseException] = []

    def run(work):
        try:
            work()
        except BaseException as exc:  # reported below
            errors.append(exc)

    try:
        sweeps = [
            threading.Thread(target=run, args=(lambda c=c: sweep(c, TUESDAY),))
            for c in (ctx, other)
        ]
        for thread in sweeps:
            thread.start()
        for thread in sweeps:
            thread.join(timeout=300)
        senders = [
            threading.Thread(
                target=run,
                args=(
                    lambda c=c: deliver_pending(
                        c.db, now=utcnow(), settings=smtp.settings(), batch_size=3
                    ),
                ),
            )
            for c in (ctx, other)
        ]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join(timeout=300)
    finally:
        other.db.dispose()
    assert not errors, errors
    with session_scope(ctx.db) as session:
        stored = session.scalar(select(Notification.id).order_by(Notification.id.desc()).limit(1))
        total = len(session.scalars(select(Notification.id)).all())
    assert stored and total > 10
    assert len(smtp.handler.received) == total
    assert set(smtp.handler.ids().values()) == {1}


def test_events_and_completions_are_confirmed_to_the_department(ctx, smtp):
    event = record_event(ctx, II_1B, "SO-TP", D("2025-04-25"), document="123/QĐ-BTP")
    (item_id,) = event.created_items
    complete_item(ctx, item_id, D("2025-04-30"), "45/BC-STP")
    report = deliver_pending(ctx.db, now=utcnow(), settings=smtp.settings())
    assert report.sent == 2
    created, completed = (r.message for r in smtp.handler.received)
    assert created["Subject"] == "[Đúng hạn] Sở Tư pháp tỉnh Nghệ An: 1 việc mới, hạn 29/4/2025"
    assert "thứ Ba, 29/4/2025" in created.get_body(("plain",)).get_content()
    assert completed["Subject"] == (
        "[Đúng hạn] Sở Tư pháp tỉnh Nghệ An: đã ghi nhận hoàn thành 1 việc (1 việc trễ hạn)"
    )
    body = completed.get_body(("plain",)).get_content()
    assert "(hoàn thành trễ hạn)" in body  # 30/4 is a holiday: late, no working day passed
    assert "(ngày 30/4/2025)" in body


runner = CliRunner()


def test_the_outbox_and_calendar_commands(ctx, database_url, tmp_path, monkeypatch, smtp):
    monkeypatch.setenv("DUNGHAN_DATABASE_URL", database_url)
    monkeypatch.setenv("DUNGHAN_OUTBOX_DIR", str(tmp_path / "outbox"))
    for name in ("HOST", "PORT", "SECURITY", "USER", "PASSWORD"):
        monkeypatch.delenv(f"DUNGHAN_SMTP_{name}", raising=False)
    sweep(ctx, TUESDAY)
    with session_scope(ctx.db) as session:
        queued = len(session.scalars(select(Notification.id)).all())
        bad = session.scalars(select(Notification).order_by(Notification.id).limit(1)).one()
        bad.recipient = "hong@@example"
        session.add(bad)

    sent = runner.invoke(app, ["outbox", "send"])
    assert sent.exit_code == 0, sent.output
    assert f"{queued - 1} thư đã gửi, 0 thư sẽ gửi lại, 1 thư lỗi vĩnh viễn" in sent.output
    assert "Xem thư lỗi: dunghan outbox list --status failed" in sent.output
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == queued - 1

    failed = runner.invoke(app, ["outbox", "list", "--status", "failed"])
    assert failed.exit_code == 0, failed.output
    assert "hong@@example" in failed.output
    assert "Lỗi: Không gửi được: địa chỉ email không hợp lệ: 'hong@@example'" in failed.output
    assert "dunghan outbox retry" in failed.output
    wrong = runner.invoke(app, ["outbox", "list", "--status", "lost"])
    assert wrong.exit_code == 2 and "--status không hợp lệ" in wrong.output

    with session_scope(ctx.db) as session:
        session.get(Notification, bad.id).recipient = "so-tp@example.gov.vn"
    retried = runner.invoke(app, ["outbox", "retry", str(bad.id)])
    assert "Đã đưa 1 thư lỗi trở lại hàng đợi" in retried.output

    monkeypatch.setenv("DUNGHAN_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("DUNGHAN_SMTP_PORT", str(smtp.port))
    again = runner.invoke(app, ["outbox", "send"])
    assert "1 thư đã gửi" in again.output and f"{queued} đã gửi, 0 lỗi" in again.output
    assert len(smtp.handler.received) == 1

    monkeypatch.setenv("DUNGHAN_SMTP_PASSWORD", "pw-123")
    misconfigured = runner.invoke(app, ["outbox", "send"])
    assert misconfigured.exit_code == 2
    assert "thiếu DUNGHAN_SMTP_USER" in misconfigured.output and "pw-123" not in (
        misconfigured.output
    )

    target = tmp_path / "lich" / "so-tp.ics"
    written = runner.invoke(app, ["ics", "SO-TP", "--output", str(target)])
    assert written.exit_code == 0, written.output
    assert "hạn đang mở của Sở Tư pháp tỉnh Nghệ An" in written.output
    with session_scope(ctx.db) as session:
        expected, count = agency_calendar(session, "SO-TP", stamp=utcnow())
    written_events = events(target.read_bytes().decode("utf-8"))
    assert len(written_events) == count > 0
    assert [e["UID"] for e in written_events] == [e["UID"] for e in events(expected)]
    unknown = runner.invoke(app, ["ics", "SO-KHONG-CO"])
    assert unknown.exit_code == 2 and "Mã cơ quan không hợp lệ" in unknown.output
