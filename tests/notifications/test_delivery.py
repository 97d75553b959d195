"""Delivery against a real SMTP server (aiosmtpd, started by the tests): what arrives,
once; what the outbox records when the server says no, goes away, or the sender dies."""

from __future__ import annotations

import email
import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import select

from models.db import session_scope
from models.tables import Notification
from notifications import compose
from notifications.delivery import EmlFolderTransport, deliver_pending
from notifications.outbox import Status, claim, list_messages, requeue_failed, status_counts
from notifications.settings import MailSettings, Secret
from tests.notifications.support import (
    NOW,
    TODAY,
    Authenticator,
    RecordingHandler,
    decoded,
    digests,
    free_port,
    line,
    raw_headers,
    self_signed_certificate,
    start_server,
    store,
)

ROOT = Path(__file__).resolve().parents[2]


def rows(engine) -> dict[str, Notification]:
    with session_scope(engine) as session:
        return {n.recipient: n for n in session.scalars(select(Notification))}


def message_id(message: compose.Message) -> str:
    return compose.message_id(message.idempotency_key, "dunghan@ubnd.example.gov.vn")


def test_each_kind_of_email_arrives_whole_and_readable(engine, smtp):
    messages = [
        compose.digest(
            "so-tp@example.gov.vn",
            "Cán bộ đầu mối KSTTHC — Sở Tư pháp tỉnh Nghệ An",
            "Sở Tư pháp tỉnh Nghệ An",
            TODAY,
            [line(1, -3, step="Quá hạn 1 ngày làm việc"), line(2, 0), line(3, 2)],
        ),
        compose.escalation(
            "chu-tich@example.gov.vn",
            "Chủ tịch — Ủy ban nhân dân tỉnh Nghệ An",
            ("chanh-van-phong@example.gov.vn", "gd.so-tp@example.gov.vn"),
            "overdue_10",
            "Quá hạn 10 ngày làm việc — báo cáo Chủ tịch UBND tỉnh",
            TODAY,
            [line(1, -12, history=("Nhắc hạn trước 3 ngày làm việc (22/4/2025)",))],
        ),
        compose.confirmation(
            "dau-moi.so-yt@example.gov.vn",
            "Cán bộ đầu mối KSTTHC — Sở Y tế tỉnh Nghệ An",
            "Sở Y tế tỉnh Nghệ An",
            "created",
            TODAY,
            [line(7, 10, due=TODAY + timedelta(days=14))],
            "event:3",
        ),
    ]
    assert store(engine, messages) == 3
    report = deliver_pending(engine, now=NOW, settings=smtp.settings())
    assert (report.sent, report.retry, report.failed, report.error) == (3, 0, 0, None)

    arrived = {r.message["Message-ID"]: r for r in smtp.handler.received}
    assert set(arrived) == {message_id(m) for m in messages}
    for message in messages:
        received = arrived[message_id(message)]
        parsed = received.message
        assert received.mail_from == "dunghan@ubnd.example.gov.vn"
        assert received.rcpt_tos == [message.recipient, *message.cc]
        assert decoded(raw_headers(received.data)["Subject"]) == message.subject
        assert parsed["Subject"] == message.subject
        plain = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")
        html = parsed.get_body(("html",)).get_content().replace("\r\n", "\n")
        assert plain == message.body_text
        assert html == message.body_html
        (calendar,) = parsed.iter_attachments()
        assert calendar.get_content_type() == "text/calendar"
        assert calendar.get_content().startswith("BEGIN:VCALENDAR\r\n")
    digest = arrived[message_id(messages[0])].message
    text = digest.get_body(("plain",)).get_content()
    assert "Kính gửi: Cán bộ đầu mối KSTTHC — Sở Tư pháp tỉnh Nghệ An," in text
    assert "thứ Sáu, 25/4/2025 (quá hạn 3 ngày làm việc)" in text
    letter = arrived[message_id(messages[1])].message
    assert [a.addr_spec for a in letter["Cc"].addresses] == [
        "chanh-van-phong@example.gov.vn",
        "gd.so-tp@example.gov.vn",
    ]
    assert "Quá trình đôn đốc: Nhắc hạn trước 3 ngày làm việc (22/4/2025)" in (
        letter.get_body(("plain",)).get_content()
    )
    assert {n.status for n in rows(engine).values()} == {Status.SENT}


def test_a_batch_goes_over_one_connection(engine, smtp):
    store(engine, digests(25))
    report = deliver_pending(engine, now=NOW, settings=smtp.settings(), batch_size=10)
    assert (report.sent, report.batches) == (25, 3)
    assert smtp.handler.connections == 3
    assert len(smtp.handler.received) == 25


def test_storing_or_delivering_again_sends_nothing_twice(engine, smtp):
    messages = digests(5)
    assert store(engine, messages) == 5
    assert store(engine, messages) == 0  # a rerun of the sweep
    deliver_pending(engine, now=NOW, settings=smtp.settings())
    again = deliver_pending(engine, now=NOW + timedelta(days=1), settings=smtp.settings())
    assert again.sent == 0 and again.batches == 0
    assert sorted(smtp.handler.ids().values()) == [1] * 5


def test_two_concurrent_deliveries_send_each_message_once(engine, smtp):
    store(engine, digests(60))
    reports = []

    def deliver():
        reports.append(deliver_pending(engine, now=NOW, settings=smtp.settings(), batch_size=4))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sum(r.sent for r in reports) == 60
    assert len(smtp.handler.received) == 60
    assert set(smtp.handler.ids().values()) == {1}
    assert status_counts(engine)[Status.SENT] == 60


def test_the_server_going_away_mid_batch_then_back_delivers_everything_once(engine, smtp):
    messages = digests(10)
    store(engine, messages)
    smtp.handler.drop_at = 4  # the 4th message's data arrives, then the server goes down
    report = deliver_pending(engine, now=NOW, settings=smtp.settings())
    assert report.sent == 3
    assert report.retry == 7
    assert "Không kết nối được máy chủ SMTP 127.0.0.1" in report.error
    waiting = [n for n in rows(engine).values() if n.status == Status.PENDING]
    assert len(waiting) == 7
    assert {n.attempts for n in waiting} == {1}
    assert {n.next_attempt_at for n in waiting} == {NOW + timedelta(minutes=1)}
    assert all(n.last_error for n in waiting)
    # Before the backoff has passed, nothing is tried again.
    early = deliver_pending(engine, now=NOW + timedelta(seconds=30), settings=smtp.settings())
    assert early.batches == 0

    smtp.handler.down, smtp.handler.drop_at = False, None
    later = deliver_pending(engine, now=NOW + timedelta(minutes=2), settings=smtp.settings())
    assert (later.sent, later.retry, later.error) == (7, 0, None)
    assert smtp.handler.ids() == {message_id(m): 1 for m in messages}
    assert status_counts(engine)[Status.SENT] == 10


def test_a_refused_connection_leaves_every_message_queued(engine):
    store(engine, digests(3))
    settings = MailSettings(host="127.0.0.1", port=free_port(), timeout=5)
    report = deliver_pending(engine, now=NOW, settings=settings)
    assert (report.sent, report.retry, report.failed) == (0, 3, 0)
    assert "ConnectionRefusedError" in report.error
    assert status_counts(engine)[Status.PENDING] == 3


def test_a_5xx_answer_is_recorded_and_never_retried(engine, smtp):
    bad = "khong-ton-tai@example.gov.vn"
    messages = [*digests(2), compose.digest(bad, "Sở X", "Sở X", TODAY, [line(9)])]
    store(engine, messages)
    smtp.handler.refuse[bad] = "550 5.1.1 <khong-ton-tai@example.gov.vn>: User unknown"
    report = deliver_pending(engine, now=NOW, settings=smtp.settings())
    assert (report.sent, report.retry, report.failed) == (2, 0, 1)
    failed = rows(engine)[bad]
    assert failed.status == Status.FAILED
    assert "550 5.1.1 <khong-ton-tai@example.gov.vn>: User unknown" in failed.last_error
    for later in (timedelta(hours=1), timedelta(days=3)):
        deliver_pending(engine, now=NOW + later, settings=smtp.settings())
    assert smtp.handler.rcpt_attempts[bad] == 1
    # Operators see it, with the server's answer.
    (entry,) = list_messages(engine, status=Status.FAILED)
    assert entry.recipient == bad and "User unknown" in entry.last_error


def test_a_4xx_answer_is_retried_with_backoff_and_not_forever(engine, smtp):
    grey = "greylist@example.gov.vn"
    store(engine, [compose.digest(grey, "Sở X", "Sở X", TODAY, [line(9)])])
    smtp.handler.refuse[grey] = "451 4.7.1 Greylisted, try again later"
    settings = smtp.settings(max_attempts=4)
    moments = []
    now = NOW
    for _ in range(10):
        report = deliver_pending(engine, now=now, settings=settings)
        if report.batches:
            moments.append(now)
        row = rows(engine)[grey]
        if row.status == Status.FAILED:
            break
        assert row.status == Status.PENDING
        assert "451 4.7.1 Greylisted" in row.last_error
        now = row.next_attempt_at
    gaps = [b - a for a, b in itertools.pairwise(moments)]
    assert gaps == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4)]
    row = rows(engine)[grey]
    assert row.status == Status.FAILED and row.attempts == 4
    assert row.last_error.startswith("Đã thử 4 lần")
    assert smtp.handler.rcpt_attempts[grey] == 4
    # After the cause is fixed, an operator puts it back in the queue.
    smtp.handler.refuse.clear()
    assert requeue_failed(engine, None, now=now) == 1
    assert deliver_pending(engine, now=now, settings=settings).sent == 1


def test_a_greylisted_message_goes_out_on_the_next_run(engine, smtp):
    grey = "greylist@example.gov.vn"
    store(engine, [compose.digest(grey, "Sở X", "Sở X", TODAY, [line(9)]), *digests(2)])
    smtp.handler.refuse[grey] = "451 4.7.1 Greylisted, try again later"
    first = deliver_pending(engine, now=NOW, settings=smtp.settings())
    assert (first.sent, first.retry) == (2, 1)
    smtp.handler.refuse.clear()
    second = deliver_pending(engine, now=NOW + timedelta(minutes=5), settings=smtp.settings())
    assert second.sent == 1
    assert set(smtp.handler.ids().values()) == {1} and len(smtp.handler.received) == 3


def test_a_refused_sender_address_holds_the_queue_instead_of_failing_it(engine, smtp):
    store(engine, digests(4))
    smtp.handler.refuse_sender = "553 5.7.1 Sender address rejected: not owned by user"
    report = deliver_pending(engine, now=NOW, settings=smtp.settings())
    assert (report.sent, report.retry, report.failed) == (0, 4, 0)
    assert "Máy chủ từ chối địa chỉ người gửi dunghan@ubnd.example.gov.vn — 553 5.7.1" in (
        report.error
    )
    assert "kiểm tra DUNGHAN_MAIL_FROM" in report.error
    assert smtp.handler.connections == 1
    assert status_counts(engine)[Status.PENDING] == 4
    smtp.handler.refuse_sender = None  # the operator fixed the address
    later = deliver_pending(engine, now=NOW + timedelta(minutes=2), settings=smtp.settings())
    assert later.sent == 4


def test_a_copy_refused_does_not_hold_back_the_letter(engine, smtp):
    letter = compose.escalation(
        "chu-tich@example.gov.vn",
        "Chủ tịch",
        ("bo-hong@example.gov.vn",),
        "overdue_10",
        "Quá hạn 10 ngày",
        TODAY,
        [line(1, -12)],
    )
    store(engine, [letter])
    smtp.handler.refuse["bo-hong@example.gov.vn"] = "550 5.1.1 mailbox unavailable"
    report = deliver_pending(engine, now=NOW, settings=smtp.settings())
    assert report.sent == 1
    row = rows(engine)["chu-tich@example.gov.vn"]
    assert row.status == Status.SENT
    assert "bo-hong@example.gov.vn: 550 5.1.1 mailbox unavailable" in row.last_error
    assert smtp.handler.received[0].rcpt_tos == ["chu-tich@example.gov.vn"]


def test_a_malformed_address_fails_without_reaching_the_server(engine, smtp):
    broken = compose.Message(
        kind="digest",
        recipient="so-tp@@example",
        recipient_name="Sở Tư pháp",
        subject="[Đúng hạn] thử",
        body_text="x",
        body_html="<p>x</p>",
        idempotency_key="digest:broken",
    )
    store(engine, [broken, *digests(1)])
    report = deliver_pending(engine, now=NOW, settings=smtp.settings())
    assert (report.sent, report.failed) == (1, 1)
    row = rows(engine)["so-tp@@example"]
    assert row.status == Status.FAILED
    assert "địa chỉ email không hợp lệ: 'so-tp@@example'" in row.last_error
    assert "so-tp@@example" not in smtp.handler.rcpt_attempts


def test_names_and_subjects_in_the_outbox_cannot_inject_headers(engine, smtp):
    hostile = compose.Message(
        kind="digest",
        recipient="so-tp@example.gov.vn",
        recipient_name="Sở Tư pháp\r\nBcc: attacker@evil.example",
        subject="Hạn xử lý\r\nBcc: attacker@evil.example\r\n\r\nThân thư giả mạo",
        body_text="x",
        body_html="<p>x</p>",
        idempotency_key="digest:hostile",
    )
    store(engine, [hostile])
    assert deliver_pending(engine, now=NOW, settings=smtp.settings()).sent == 1
    (received,) = smtp.handler.received
    assert received.rcpt_tos == ["so-tp@example.gov.vn"]
    parsed = received.message
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Hạn xử lý Bcc: attacker@evil.example Thân thư giả mạo"
    assert parsed.get_body(("plain",)).get_content().strip() == "x"


@pytest.fixture
def auth_smtp():
    """A server that wants a login (dunghan / the-right-one), over plain SMTP."""
    server = start_server(
        authenticator=Authenticator("dunghan", "the-right-one"), auth_require_tls=False
    )
    yield server
    server.stop()


def test_the_password_appears_in_no_error_log_or_record(engine, auth_smtp, caplog):
    password = "M4t-khau-rat-bi-mat"
    store(engine, digests(2))
    settings = auth_smtp.settings(user="dunghan", password=Secret(password))
    with caplog.at_level(logging.DEBUG):
        report = deliver_pending(engine, now=NOW, settings=settings)
    assert report.sent == 0 and report.retry == 2
    assert "đăng nhập bị từ chối — 535" in report.error
    texts = [
        report.error,
        report.summary(),
        repr(report),
        repr(settings),
        str(settings.password),
        settings.describe(),
        *(n.last_error for n in rows(engine).values()),
        *(r.getMessage() for r in caplog.records if not r.name.startswith("mail.")),
    ]
    assert [t for t in texts if password in t] == []
    assert auth_smtp.handler.received == []


def test_a_non_ascii_password_is_refused_without_showing_it(engine, auth_smtp):
    store(engine, digests(1))
    settings = auth_smtp.settings(user="dunghan", password=Secret("mật-khẩu-bí-mật"))
    report = deliver_pending(engine, now=NOW, settings=settings)
    assert "ký tự ngoài ASCII" in report.error
    assert "bí" not in report.error and "\\u" not in report.error
    assert report.retry == 1


def test_login_with_the_right_password_delivers(engine, auth_smtp):
    store(engine, digests(2))
    settings = auth_smtp.settings(user="dunghan", password=Secret("the-right-one"))
    assert deliver_pending(engine, now=NOW, settings=settings).sent == 2
    assert len(auth_smtp.handler.received) == 2


@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_encrypted_delivery_trusts_the_configured_ca_and_only_it(engine, tmp_path, security):
    import ssl

    cert, key = self_signed_certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    options = (
        {"tls_context": server_tls, "require_starttls": True}
        if security == "starttls"
        # aiosmtpd does not see implicit TLS as TLS when deciding to offer AUTH.
        else {"ssl_context": server_tls, "auth_require_tls": False}
    )
    auth = Authenticator("dunghan", "the-right-one")
    server = start_server(authenticator=auth, **options)
    try:
        store(engine, digests(2))
        base = {"security": security, "user": "dunghan", "password": Secret("the-right-one")}
        untrusted = deliver_pending(engine, now=NOW, settings=server.settings(**base))
        assert untrusted.sent == 0 and "CERTIFICATE_VERIFY_FAILED" in untrusted.error
        trusted = deliver_pending(
            engine, now=NOW + timedelta(hours=1), settings=server.settings(**base, ca_file=cert)
        )
        assert (trusted.sent, trusted.error) == (2, None)
        assert auth.seen == [b"dunghan"]
    finally:
        server.stop()


def test_without_smtp_each_message_is_an_eml_file_named_by_its_key(engine, tmp_path):
    messages = digests(3)
    store(engine, messages)
    settings = MailSettings(outbox_dir=tmp_path / "outbox")
    report = deliver_pending(engine, now=NOW, settings=settings)
    assert report.sent == 3 and report.transport == f"thư mục {tmp_path / 'outbox'}"
    files = sorted((tmp_path / "outbox").iterdir())
    transport = EmlFolderTransport(tmp_path / "outbox")
    assert files == sorted(transport.path_of(m.idempotency_key) for m in messages)
    for message in messages:
        path = transport.path_of(message.idempotency_key)
        parsed = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert parsed["Subject"] == message.subject
        assert [a.addr_spec for a in parsed["To"].addresses] == [message.recipient]
        assert parsed.get_body(("plain",)).get_content().replace("\r\n", "\n") == (
            message.body_text
        )
    assert deliver_pending(engine, now=NOW, settings=settings).sent == 0
    assert len(list((tmp_path / "outbox").iterdir())) == 3  # no temporary file left


def test_a_message_whose_sender_died_is_claimed_again_after_its_lease(engine, smtp):
    store(engine, digests(3))
    settings = smtp.settings()
    claimed = claim(engine, now=NOW, lease=settings.lease, limit=10)
    assert len(claimed) == 3  # … and the process holding them dies here
    assert deliver_pending(engine, now=NOW + timedelta(minutes=5), settings=settings).sent == 0
    later = NOW + settings.lease + timedelta(seconds=1)
    assert deliver_pending(engine, now=later, settings=settings).sent == 3
    assert {n.attempts for n in rows(engine).values()} == {2}


def test_a_sender_killed_mid_batch_loses_nothing_and_repeats_at_most_one(
    engine, database_url, tmp_path
):
    messages = digests(12)
    store(engine, messages)
    handler = RecordingHandler(hold_at=5)
    server = start_server(handler)
    script = (
        "import sys\n"
        "from datetime import datetime\n"
        "from models.db import make_engine\n"
        "from notifications.delivery import deliver_pending\n"
        "deliver_pending(make_engine(sys.argv[1]), now=datetime.fromisoformat(sys.argv[2]))\n"
    )
    env = os.environ | {
        "DUNGHAN_SMTP_HOST": "127.0.0.1",
        "DUNGHAN_SMTP_PORT": str(server.port),
        "DUNGHAN_MAIL_FROM": "Hệ thống Đúng hạn <dunghan@ubnd.example.gov.vn>",
    }
    sender = subprocess.Popen(
        [sys.executable, "-c", script, database_url, NOW.isoformat()], cwd=ROOT, env=env
    )
    try:
        assert handler.arrived.wait(timeout=60), "the sender never reached the 5th message"
        os.kill(sender.pid, signal.SIGKILL)  # the server has message 5; the outbox does not
        assert sender.wait(timeout=30) == -signal.SIGKILL
    finally:
        handler.release.set()
        if sender.poll() is None:
            sender.kill()
    counts = status_counts(engine)
    assert (counts[Status.SENT], counts[Status.SENDING]) == (4, 8)

    settings = server.settings()
    rerun = deliver_pending(
        engine, now=NOW + settings.lease + timedelta(seconds=1), settings=settings
    )
    server.stop()
    assert rerun.sent == 8
    arrived = handler.ids()
    assert set(arrived) == {message_id(m) for m in messages}  # nothing lost
    repeated = [key for key, times in arrived.items() if times > 1]
    assert repeated == [message_id(messages[4])]  # only the one in flight, and once
    assert arrived[message_id(messages[4])] == 2
    assert status_counts(engine)[Status.SENT] == 12
