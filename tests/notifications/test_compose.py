"""What a recipient reads: subjects, both parts, dates, grouping, tone — and the MIME
email itself (decoded the way a mail client decodes it)."""

from __future__ import annotations

import email
from datetime import UTC, date, datetime
from email import policy

import pytest

from notifications import compose
from tests.notifications.support import TODAY, decoded, line, raw_headers


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        (date(2025, 4, 29), "thứ Ba, 29/4/2025"),
        (date(2025, 3, 2), "Chủ nhật, 2/3/2025"),
        (date(2025, 12, 1), "thứ Hai, 1/12/2025"),
    ],
)
def test_vietnamese_dates_read_as_people_write_them(day, expected):
    assert compose.vn_date(day) == expected


def test_a_digest_groups_one_recipients_items_by_urgency():
    items = [line(1, -3, step="Quá hạn 1 ngày làm việc"), line(2, 0), line(3, 2), line(4, -1)]
    message = compose.digest(
        "so-tp@example.gov.vn", "Cán bộ đầu mối — Sở Tư pháp", "Sở Tư pháp", TODAY, items
    )
    assert message.subject == (
        "[Đúng hạn] Sở Tư pháp: 2 việc quá hạn, 1 việc đến hạn hôm nay, "
        "1 việc sắp đến hạn — 29/4/2025"
    )
    text = message.body_text
    overdue, today, soon = text.index("QUÁ HẠN (2)"), text.index("ĐẾN HẠN HÔM NAY (1)"), None
    soon = text.index("SẮP ĐẾN HẠN (1)")
    assert overdue < today < soon
    assert text.index("[X.1]") < today and text.index("[X.4]") < today
    assert today < text.index("[X.2]") < soon < text.index("[X.3]")
    assert "Hạn: thứ Sáu, 25/4/2025 (quá hạn 3 ngày làm việc); bậc đôn đốc: Quá hạn 1" in text
    assert "(còn 2 ngày làm việc)" in text and "(đến hạn hôm nay)" in text
    assert "Chủ trì: Các Sở, ban, ngành cấp tỉnh; phối hợp: Văn phòng UBND tỉnh" in text
    assert message.item_ids == (1, 2, 3, 4)
    # A digest's key is what it says: the same lines to the same address that day (in
    # any order, the address in any case) are the same message; other lines are another.
    assert message.covers == ("1@0", "2@0", "3@0", "4@0")
    same = compose.digest("SO-TP@example.gov.vn", "x", "Sở Tư pháp", TODAY, items[::-1])
    assert same.idempotency_key == message.idempotency_key
    fewer = compose.digest("so-tp@example.gov.vn", "x", "Sở Tư pháp", TODAY, items[:1])
    assert fewer.idempotency_key != message.idempotency_key
    later_step = line(1, -3, step="Quá hạn 1 ngày làm việc", history=("a", "b"))
    moved_on = compose.digest("so-tp@example.gov.vn", "x", "Sở Tư pháp", TODAY, [later_step])
    assert moved_on.covers == ("1@2",) and moved_on.idempotency_key != fewer.idempotency_key
    supplement = compose.digest(
        "so-tp@example.gov.vn", "x", "Sở Tư pháp", TODAY, items[1:2], supplement=True
    )
    assert supplement.subject.startswith("[Đúng hạn] Sở Tư pháp (bổ sung): 1 việc đến hạn hôm nay")


def test_html_parts_escape_what_the_data_says():
    message = compose.digest(
        "a@example.gov.vn",
        "Sở <b>A</b>",
        "Sở A",
        TODAY,
        [line(1, content="<script>alert(1)</script> & co")],
    )
    assert "<script>" not in message.body_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in message.body_html
    assert "Sở &lt;b&gt;A&lt;/b&gt;" in message.body_html
    assert "<script>alert(1)</script> & co" in message.body_text  # plain text stays plain


def test_an_escalation_to_the_responsible_head_urges_and_to_leaders_reports():
    own = [line(1, -6, history=("Nhắc hạn (22/4/2025)", "Quá hạn 1 ngày (23/4/2025)"))]
    to_head = compose.escalation(
        "gd.so-tp@example.gov.vn",
        "Thủ trưởng — Sở Tư pháp tỉnh Nghệ An",
        ("kstt@example.gov.vn",),
        "overdue_1",
        "Quá hạn 1 ngày làm việc — đôn đốc thủ trưởng cơ quan",
        TODAY,
        own,
    )
    assert "V/v: Quá hạn 1 ngày làm việc — đôn đốc thủ trưởng cơ quan" in to_head.body_text
    assert "Sở Tư pháp tỉnh Nghệ An còn 1 nhiệm vụ" in to_head.body_text
    assert "Đề nghị Thủ trưởng cơ quan chỉ đạo khẩn trương" in to_head.body_text
    assert "Quá trình đôn đốc: Nhắc hạn (22/4/2025); Quá hạn 1 ngày (23/4/2025)" in (
        to_head.body_text
    )
    assert to_head.cc == ("kstt@example.gov.vn",)

    several = [*own, line(2, -12, agency="Sở Y tế tỉnh Nghệ An"), line(3, -7, agency="Sở Y tế")]
    to_chairman = compose.escalation(
        "chu-tich@example.gov.vn",
        "Chủ tịch — UBND tỉnh Nghệ An",
        (),
        "overdue_10",
        "Quá hạn 10 ngày làm việc — báo cáo Chủ tịch UBND tỉnh",
        TODAY,
        several,
    )
    assert to_chairman.subject.endswith("3 việc quá hạn của 3 cơ quan — 29/4/2025")
    assert "kính báo cáo" in to_chairman.body_text
    assert "thuộc 3 cơ quan, đơn vị" in to_chairman.body_text
    assert "- Sở Y tế tỉnh Nghệ An: 1 việc, quá hạn lâu nhất 12 ngày làm việc" in (
        to_chairman.body_text
    )
    assert "Kính đề nghị chỉ đạo các cơ quan" in to_chairman.body_text
    # The agencies most behind come first, in the summary and in the details.
    text = to_chairman.body_text
    assert text.index("- Sở Y tế tỉnh Nghệ An: 1 việc") < text.index("- Sở Tư pháp tỉnh")
    assert text.index("SỞ Y TẾ TỈNH NGHỆ AN (1 việc)") < text.index("SỞ TƯ PHÁP TỈNH")
    assert "<th>Cơ quan, đơn vị</th>" in to_chairman.body_html
    # One letter per recipient, step, items and day.
    assert to_chairman.idempotency_key != to_head.idempotency_key


def test_confirmations_say_what_was_created_and_what_was_completed():
    created = compose.confirmation(
        "so-tp@example.gov.vn",
        "Cán bộ đầu mối — Sở Tư pháp",
        "Sở Tư pháp",
        "created",
        date(2025, 3, 3),
        [line(1, 8, due=date(2025, 3, 15)), line(2, 8, due=date(2025, 3, 15)), line(3, 9)],
        "event:17",
    )
    assert created.subject == "[Đúng hạn] Sở Tư pháp: 3 việc mới, hạn sớm nhất 15/3/2025"
    assert "đã ghi nhận 3 việc mới của Sở Tư pháp" in created.body_text
    same_day = compose.confirmation(
        "so-tp@example.gov.vn", "x", "Sở Tư pháp", "created", TODAY, [line(1, 8)], "event:9"
    )
    assert same_day.subject == "[Đúng hạn] Sở Tư pháp: 1 việc mới, hạn 25/4/2025"

    done_late = compose.confirmation(
        "so-tp@example.gov.vn", "x", "Sở Tư pháp", "completed", TODAY, [line(4, -2)], "done:4"
    )  # due 25/4, done 29/4: two working days late
    assert done_late.subject == (
        "[Đúng hạn] Sở Tư pháp: đã ghi nhận hoàn thành 1 việc (1 việc trễ hạn)"
    )
    assert "hoàn thành trễ hạn 2 ngày làm việc" in done_late.body_text
    assert "quá hạn" not in done_late.body_text.split("Hạn:")[1].split("\n")[0]
    on_time = compose.confirmation(
        "so-tp@example.gov.vn",
        "x",
        "Sở Tư pháp",
        "completed",
        TODAY,
        [line(5, 1, due=date(2025, 4, 30))],
        "done:5",
    )
    assert "hoàn thành đúng hạn" in on_time.body_text
    # Due on Tuesday 29/4, done on the holiday 30/4: late, though no working day passed.
    holiday = compose.confirmation(
        "so-tp@example.gov.vn",
        "x",
        "Sở Tư pháp",
        "completed",
        date(2025, 4, 30),
        [line(6, 0, due=date(2025, 4, 29))],
        "done:6",
    )
    assert holiday.subject.endswith("(1 việc trễ hạn)")
    assert "(hoàn thành trễ hạn)" in holiday.body_text
    with pytest.raises(ValueError, match="unknown confirmation"):
        compose.confirmation("a@b.vn", "x", "y", "deleted", TODAY, [line(1)], "k")


def test_names_and_subjects_cannot_carry_a_line_break():
    message = compose.digest(
        "a@example.gov.vn",
        "Sở A\r\nBcc: attacker@evil.example",
        "Sở A\nX-Injected: yes",
        TODAY,
        [line(1)],
    )
    assert "\n" not in message.subject and "\r" not in message.subject
    assert "\n" not in message.recipient_name
    assert compose.clean_header("a\r\n\tb\x00c\u2028d") == "a b c d"


def mime(**overrides):
    values = {
        "idempotency_key": "digest:2025-04-29:abc",
        "kind": "digest",
        "recipient": "bql-kkt@example.gov.vn",
        "recipient_name": "Cán bộ đầu mối KSTTHC — Ban Quản lý Khu kinh tế Đông Nam Nghệ An",
        "cc": ("kstt.vp-ubnd@example.gov.vn",),
        "subject": "[Đúng hạn] Ban Quản lý Khu kinh tế Đông Nam Nghệ An: 4 việc quá hạn, "
        "1 việc đến hạn hôm nay — 29/4/2025",
        "body_text": "Kính gửi: Cán bộ đầu mối,\nHạn: thứ Ba, 29/4/2025\n",
        "body_html": "<p>Kính gửi: Cán bộ đầu mối,</p>",
        "ics_text": "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n",
        "created_at": datetime(2025, 4, 29, 1, 0, tzinfo=UTC),
        "mail_from": "Hệ thống Đúng hạn <dunghan@ubnd.example.gov.vn>",
    }
    return compose.email_message(**(values | overrides))


def test_the_email_reads_right_in_a_mail_client():
    data = mime().as_bytes()
    headers = raw_headers(data)
    # Every header line is ASCII and short; non-ASCII text travels as RFC 2047 UTF-8.
    head = data.split(b"\r\n\r\n", 1)[0]
    assert all(len(text) <= 78 for text in head.split(b"\r\n"))
    assert "=?utf-8?" in headers["Subject"]
    assert decoded(headers["Subject"]) == (
        "[Đúng hạn] Ban Quản lý Khu kinh tế Đông Nam Nghệ An: 4 việc quá hạn, "
        "1 việc đến hạn hôm nay — 29/4/2025"
    )
    assert decoded(headers["To"]) == (
        "Cán bộ đầu mối KSTTHC — Ban Quản lý Khu kinh tế Đông Nam Nghệ An <bql-kkt@example.gov.vn>"
    )
    assert decoded(headers["From"]) == "Hệ thống Đúng hạn <dunghan@ubnd.example.gov.vn>"
    assert headers["Date"] == "Tue, 29 Apr 2025 08:00:00 +0700"
    assert headers["Auto-Submitted"] == "auto-generated"

    parsed = email.message_from_bytes(data, policy=policy.default)
    # (Python's own address parser keeps the space between two encoded-words of a name,
    # against RFC 2047; mail clients do not, so names are checked with `decoded` above.)
    assert [a.addr_spec for a in parsed["To"].addresses] == ["bql-kkt@example.gov.vn"]
    assert [a.addr_spec for a in parsed["Cc"].addresses] == ["kstt.vp-ubnd@example.gov.vn"]
    assert parsed["Subject"] == decoded(headers["Subject"])
    assert parsed.get_content_type() == "multipart/mixed"
    body = parsed.get_body(("related", "html", "plain"))
    assert body.get_content_type() == "text/html"
    assert parsed.get_body(("plain",)).get_content() == (
        "Kính gửi: Cán bộ đầu mối,\r\nHạn: thứ Ba, 29/4/2025\r\n"
    )
    assert "<p>Kính gửi: Cán bộ đầu mối,</p>" in body.get_content()
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_filename() == "lich-han-xu-ly.ics"
    assert attachment.get_content() == "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"


def test_no_space_of_a_long_vietnamese_subject_is_lost_when_it_is_folded():
    # The email package's own folder drops the space in "Quản lý" at this width.
    subject = (
        "[Đúng hạn] Quá hạn 5 ngày làm việc — báo cáo Chánh Văn phòng UBND tỉnh: "
        "34 việc quá hạn của Ban Quản lý Khu kinh tế Đông Nam Nghệ An — 29/4/2025"
    )
    for name in ("Văn phòng Ủy ban nhân dân tỉnh Nghệ An", "Ban Quản lý Khu kinh tế Đông Nam"):
        data = mime(subject=subject, recipient_name=name, mail_from=f"{name} <a@b.vn>").as_bytes()
        headers = raw_headers(data)
        assert decoded(headers["Subject"]) == subject
        assert decoded(headers["To"]) == f"{name} <bql-kkt@example.gov.vn>"
        assert decoded(headers["From"]) == f"{name} <a@b.vn>"
        assert all(len(text) <= 78 for text in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"))


def test_the_message_id_is_the_same_for_the_same_message():
    first, second = mime(), mime()
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Message-ID"].endswith("@ubnd.example.gov.vn>")
    assert mime(idempotency_key="other")["Message-ID"] != first["Message-ID"]


def test_headers_cannot_be_injected_through_names_or_subjects():
    data = mime(
        recipient_name="Sở A\r\nBcc: attacker@evil.example",
        subject="Hạn\r\nBcc: attacker@evil.example\r\n\r\nthân thư giả",
    ).as_bytes()
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert parsed["Bcc"] is None
    assert b"\r\nBcc:" not in data
    assert parsed["Subject"] == "Hạn Bcc: attacker@evil.example thân thư giả"
    assert [a.addr_spec for a in parsed["To"].addresses] == ["bql-kkt@example.gov.vn"]


@pytest.mark.parametrize(
    "address",
    ["not-an-address", "a@b", "a b@c.vn", "a@b.vn\r\nRCPT TO:<x@y.vn>", "<a@b.vn>", ""],
)
def test_a_malformed_address_is_refused_before_any_server_sees_it(address):
    with pytest.raises(compose.InvalidAddress, match="không hợp lệ"):
        mime(recipient=address)
    with pytest.raises(compose.InvalidAddress):
        mime(cc=("ok@example.gov.vn", address))
