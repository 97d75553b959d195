"""Dossier due dates: receipt after hours, holidays, swaps, worked Saturdays, units,
restarts after a supplement; the regime of the receipt date; the end of a day at 24:00
(Civil Code Art. 148) or at the close of business; timely apologies; the two clocks on
arrays. Every expected instant is written by hand from the 2025 calendar; the vectorised
form equals the scalar one."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deadlines.dossier import (
    UNITS,
    ArrayOps,
    ClockFacts,
    DossierRecord,
    OneStopRules,
    apology_deadline_many,
    due_766_many,
    explain_dossier,
    late_766,
    late_at,
    late_legal_in_month,
    legal_due,
    legal_due_many,
    states_many,
    waiting_at,
    when,
)
from deadlines.one_stop import RULES_FILE

T = datetime.fromisoformat
NAT = np.datetime64("NaT", "s")


def a(*values) -> np.ndarray:
    """Times as a `datetime64[s]` array; None is NaT."""
    return np.array([NAT if v is None else np.datetime64(v, "s") for v in values])


@pytest.fixture(scope="module")
def rules() -> OneStopRules:
    return OneStopRules.load()


def variant(tmp_path: Path, old: str, new: str, count: int = -1) -> OneStopRules:
    """The shipped rules with one setting changed."""
    text = RULES_FILE.read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "one_stop.yaml"
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    return OneStopRules.load(path)


@pytest.mark.parametrize(
    ("received", "value", "unit", "due"),
    [
        # Friday 25/4/2025 09:00, 3 working days: Sat 26 (worked), Mon 28, Tue 29; the
        # limit ends at 24:00 of its last day (Civil Code Art. 148(6)), kept as 23:59:59.
        ("2025-04-25 09:00", 3, "working_days", "2025-04-29 23:59:59"),
        # After hours on Friday: counts from the worked Saturday 07:00; 26 not counted.
        ("2025-04-25 18:00", 3, "working_days", "2025-05-05 23:59:59"),
        # On the 30/4 holiday: counts from Monday 5/5, which is not counted.
        ("2025-04-30 10:00", 1, "working_days", "2025-05-06 23:59:59"),
        # Tết 2025: received Friday 24/1, 2 working days -> Mon 3/2, Tue 4/2.
        ("2025-01-24 10:00", 2, "working_days", "2025-02-04 23:59:59"),
        # 2026 New Year swap: Friday 2/1/2026 is off and Saturday 10/1 is worked.
        ("2025-12-31 10:00", 1, "working_days", "2026-01-05 23:59:59"),
        ("2026-01-09 10:00", 1, "working_days", "2026-01-10 23:59:59"),
        # Working hours: 15:00 + 4 h = 2 h today, 2 h on the worked Saturday.
        ("2025-04-25 15:00", 4, "working_hours", "2025-04-26 09:00"),
        ("2025-04-25 12:00", 2, "working_hours", "2025-04-25 15:30"),  # lunch break
        # Calendar days: 25/4 + 5 = 30/4 (holiday) -> next working day, Mon 5/5.
        ("2025-04-25 09:00", 5, "days", "2025-05-05 23:59:59"),
        ("2025-04-25 09:00", 0, "working_days", "2025-04-25 23:59:59"),
        # Decree 118/2025 from 1/7/2025: Tue 1/7 09:00 + 5 working days -> Tue 8/7.
        ("2025-07-01 09:00", 5, "working_days", "2025-07-08 23:59:59"),
        # The last day of Decree 61/2018: Mon 30/6 + 5 -> Mon 7/7.
        ("2025-06-30 09:00", 5, "working_days", "2025-07-07 23:59:59"),
    ],
)
def test_legal_due(cal, rules, received, value, unit, due):
    assert legal_due(cal, rules, T(received), None, value, unit) == T(due)


def test_the_regime_is_the_one_in_force_on_the_receipt_date(rules):
    assert rules.regime_on(T("2025-06-30").date()).code == "ND61"
    assert rules.regime_on(T("2025-07-01").date()).code == "ND118"
    assert rules.regime_on(T("2018-06-20").date()) is None  # before Decree 61/2018
    days = np.array(["2018-06-20", "2018-06-21", "2025-06-30", "2025-07-01", "2031-01-01"])
    assert rules.regime_index_many(days.astype("datetime64[D]")).tolist() == [-1, 0, 0, 1, 1]


def test_a_limit_can_end_at_the_close_of_business_instead(cal, tmp_path):
    # The other reading: a day-based limit ends with the last working session (17:00).
    # Only the regime whose setting changes moves: ND118 here, not ND61.
    close = variant(
        tmp_path,
        'end_of_day: "24:00"\n      source: >-\n        Nghị định 118',
        'end_of_day: "close_of_business"\n      source: >-\n        Nghị định 118',
    )
    assert legal_due(cal, close, T("2025-07-01 09:00"), None, 5, "working_days") == T(
        "2025-07-08 17:00"
    )
    assert legal_due(cal, close, T("2025-06-30 09:00"), None, 5, "working_days") == T(
        "2025-07-07 23:59:59"
    )
    due = legal_due_many(
        cal,
        close,
        a("2025-06-30T09:00", "2025-07-01T09:00"),
        a(None, None),
        np.array([5.0, 5.0]),
        np.array([0, 0]),
    )
    assert due.tolist() == [T("2025-07-07 23:59:59"), T("2025-07-08 17:00")]


def test_the_receipt_setting_is_read(cal, tmp_path):
    # Received Saturday 5/7/2025 10:00 (a day off), 1 working day.
    # next_session_outside_hours: true -> counted from Mon 7/7 07:00, which is not
    # counted: due Tue 8/7. false -> Saturday is the receipt day, not counted: Mon 7/7.
    received = T("2025-07-05 10:00")
    shipped = OneStopRules.load()
    assert legal_due(cal, shipped, received, None, 1, "working_days") == T("2025-07-08 23:59:59")
    literal = variant(
        tmp_path, "next_session_outside_hours: true", "next_session_outside_hours: false"
    )
    assert legal_due(cal, literal, received, None, 1, "working_days") == T("2025-07-07 23:59:59")
    many = legal_due_many(cal, literal, a(received), a(None), np.array([1.0]), np.array([0]))
    assert many.tolist() == [T("2025-07-07 23:59:59")]


def test_a_supplement_restarts_the_limit_from_zero(cal, rules):
    # Received Mon 5/5/2025 09:00 with 5 working days: due Mon 12/5.
    assert legal_due(cal, rules, T("2025-05-05 09:00"), None, 5, "working_days") == T(
        "2025-05-12 23:59:59"
    )
    # The complete dossier arrives Thu 8/5 16:00: 5 full working days from then, not the
    # 2 days that were left (no pause): due Thu 15/5.
    restarted = legal_due(
        cal, rules, T("2025-05-05 09:00"), T("2025-05-08 16:00"), 5, "working_days"
    )
    assert restarted == T("2025-05-15 23:59:59")


def test_when_writes_the_end_of_a_day_as_24_00():
    assert when(T("2025-07-08 23:59:59")) == "24:00 08/07/2025"
    assert when(T("2025-07-08 17:00")) == "17:00 08/07/2025"


@pytest.mark.parametrize(
    ("apology", "timely"),
    [
        ("2025-07-10 10:00", True),  # Thu, two working days before Mon 14/7
        ("2025-07-11 16:59", True),  # Fri, the working day before
        ("2025-07-13 09:00", True),  # Sunday: still a day before the due day
        ("2025-07-14 00:00", False),  # the due day itself
        ("2025-07-14 09:00", False),
        ("2025-07-15 09:00", False),  # after
    ],
)
def test_an_apology_is_timely_only_before_the_due_day(cal, rules, apology, timely):
    # Decree 118/2025, Art. 19(6): "chậm nhất 01 ngày trước ngày hết hạn"; due Mon 14/7.
    deadline = apology_deadline_many(cal, rules, np.array([1]), a("2025-07-14T23:59:59"))
    assert deadline.tolist() == [T("2025-07-14 00:00")]
    assert bool(a(apology)[0] < deadline[0]) is timely


def test_apology_deadline_with_more_working_days(cal, tmp_path):
    two = variant(
        tmp_path, "working_days_before_due: 1\n      max", "working_days_before_due: 2\n      max"
    )
    # Two working days before Mon 14/7: sent by the end of Thu 10/7 -> before Fri 11/7.
    deadline = apology_deadline_many(cal, two, np.array([1]), a("2025-07-14T23:59:59"))
    assert deadline.tolist() == [T("2025-07-11 00:00")]


def test_states():
    states = states_many(
        a(None, "2025-07-02T09:00", "2025-07-02T09:00", None, "2025-07-02T09:00", None),
        a(None, None, "2025-07-04T09:00", None, None, None),
        a(None, None, "2025-07-08T09:00", None, None, None),
        a(None, None, None, None, "2025-08-01T10:00", None),
        a(None, None, None, "2025-07-06T09:00", None, None),
    )
    assert states.tolist() == [
        "received",
        "awaiting_supplement",
        "completed",
        "rescheduled",
        "closed",
        "received",
    ]


def facts(**columns) -> ClockFacts:
    base = dict(
        first_due=a(None),
        legal_due=a(None),
        requested=a(None),
        supplied=a(None),
        requests=np.array([0]),
        completed=a(None),
        closed=a(None),
        appointment=a(None),
        due_766=a(None),
    )
    base.update(columns)
    return ClockFacts(**base)


def test_waiting_for_the_citizen_across_a_month_end_is_never_late(rules):
    # Received Mon 21/7, 5 working days: due Mon 28/7 24:00. Asked for a supplement
    # Wed 23/7; nothing back by the end of July: waiting, not late.
    f = facts(
        first_due=a("2025-07-28T23:59:59"),
        legal_due=a("2025-07-28T23:59:59"),
        requested=a("2025-07-23T10:00"),
        requests=np.array([1]),
        due_766=a("2025-07-28T23:59:59"),
    )
    end = a("2025-08-01T00:00")
    assert waiting_at(f, end, ArrayOps).tolist() == [True]
    assert late_at(f, end, ArrayOps).tolist() == [False]
    assert late_legal_in_month(f, end, ArrayOps).tolist() == [False]
    assert late_766(f, end, ArrayOps, rules.indicator).tolist() == [False]
    # Before the request, on Tue 22/7, the clock ran: not waiting, not yet due.
    assert waiting_at(f, a("2025-07-22T00:00"), ArrayOps).tolist() == [False]


def test_the_two_clocks_disagree_after_a_supplement(rules):
    # Received Mon 7/7 08:00, 3 working days: due Thu 10/7; the slip says 10/7 17:00.
    # Supplement asked Wed 9/7 16:00, complete Mon 14/7 09:00: the legal limit restarts,
    # 3 working days from 14/7 -> Thu 17/7 24:00. The portal pauses instead: 10/7 17:00
    # + the 4 days 17 hours the citizen took = Tue 15/7 10:00. Done Thu 17/7 15:00.
    due_766 = due_766_many(
        rules.indicator,
        a("2025-07-10T17:00"),
        a("2025-07-10T23:59:59"),
        a("2025-07-09T16:00"),
        a("2025-07-14T09:00"),
        a(None),
    )
    assert due_766.tolist() == [T("2025-07-15 10:00")]
    f = facts(
        first_due=a("2025-07-10T23:59:59"),
        legal_due=a("2025-07-17T23:59:59"),
        requested=a("2025-07-09T16:00"),
        supplied=a("2025-07-14T09:00"),
        requests=np.array([1]),
        completed=a("2025-07-17T15:00"),
        appointment=a("2025-07-10T17:00"),
        due_766=due_766,
    )
    done = a("2025-07-17T15:00")
    assert late_at(f, done, ArrayOps).tolist() == [False]
    assert late_766(f, done, ArrayOps, rules.indicator).tolist() == [True]


def test_a_second_supplement_request_is_late_on_the_portal_s_clock_only(rules):
    # Received Tue 1/7, 3 working days; asked twice, the last time Thu 3/7 10:00,
    # complete Mon 7/7 09:00: restarted due Thu 10/7 24:00; done Wed 9/7 16:00.
    f = facts(
        first_due=a("2025-07-04T23:59:59"),
        legal_due=a("2025-07-10T23:59:59"),
        requested=a("2025-07-03T10:00"),
        supplied=a("2025-07-07T09:00"),
        requests=np.array([2]),
        completed=a("2025-07-09T16:00"),
        due_766=a("2025-07-08T22:59:59"),
    )
    end = a("2025-08-01T00:00")
    assert late_legal_in_month(f, end, ArrayOps).tolist() == [False]
    assert late_766(f, a("2025-07-09T16:00"), ArrayOps, rules.indicator).tolist() == [True]


def test_explanation_names_the_decree_and_article_of_each_step(cal, rules):
    record = DossierRecord(
        id="X",
        regime="ND118",
        received=T("2025-07-07 08:00"),
        limit_value=3,
        limit_unit="working_days",
        first_due=T("2025-07-10 23:59:59"),
        legal_due=T("2025-07-17 23:59:59"),
        due_766=T("2025-07-15 10:00"),
        requested=T("2025-07-09 16:00"),
        supplied=T("2025-07-14 09:00"),
        requests=2,
        completed=T("2025-07-17 15:00"),
        apology_at=T("2025-07-14 09:00"),
        apology_new_due=T("2025-07-18 17:00"),
        apology_timely=False,
        appointment=T("2025-07-11 17:00"),
    )
    text = "\n".join(explain_dossier(cal, rules, record, T("2025-08-01 00:00")))
    assert "Quy định áp dụng: Nghị định 118/2025/NĐ-CP" in text
    assert "Điều 17 khoản 3" in text and "Điều 148" in text  # receipt, counting
    assert "hạn 24:00 10/07/2025" in text
    assert "Điều 11 khoản 2 điểm c" in text and "bổ sung 2 lần" in text  # the breach
    assert "tính lại từ đầu (Nghị định 118/2025/NĐ-CP, Điều 19 khoản 5)" in text
    assert "hạn 24:00 17/07/2025" in text
    assert "MUỘN" in text and "Điều 19 khoản 6" in text  # a late apology, with its article
    assert "MUỘN HƠN hạn theo quy định tính từ khi tiếp nhận 24:00 10/07/2025" in text
    assert "theo hạn luật định — đúng hạn" in text
    assert "Cổng Dịch vụ công quốc gia" in text and "(chưa xác nhận)): trễ hạn" in text


def test_explanation_of_an_old_dossier_cites_decree_61(cal, rules):
    record = DossierRecord(
        id="Y",
        regime="ND61",
        received=T("2025-04-25 18:00"),
        limit_value=3,
        limit_unit="working_days",
        first_due=T("2025-05-05 23:59:59"),
        legal_due=T("2025-05-05 23:59:59"),
        due_766=T("2025-05-05 23:59:59"),
    )
    text = "\n".join(explain_dossier(cal, rules, record, T("2025-05-06 00:00")))
    assert text.startswith("Quy định áp dụng: Nghị định 61/2018/NĐ-CP")
    assert "tính từ 07:00 26/04/2025" in text and "(chưa xác nhận)" in text
    assert "Ngày Chiến thắng" in text  # 30/4 skipped, with its reason
    assert "Đến 00:00 06/05/2025 chưa có kết quả: theo hạn luật định — trễ hạn." in text


def test_waiting_explanation_counts_the_decree_s_15_days(cal, rules):
    record = DossierRecord(
        id="Z",
        regime="ND118",
        received=T("2025-07-14 09:00"),
        limit_value=5,
        limit_unit="working_days",
        first_due=T("2025-07-21 23:59:59"),
        legal_due=T("2025-07-21 23:59:59"),
        due_766=T("2025-07-21 23:59:59"),
        requested=T("2025-07-15 09:00"),
        requests=1,
    )
    before = "\n".join(explain_dossier(cal, rules, record, T("2025-07-25 00:00")))
    assert "không bị tính trễ hạn" in before
    assert "Nếu không bổ sung trước hết ngày 30/07/2025" in before
    assert "đang chờ bổ sung, không tính trễ hạn" in before
    after = "\n".join(explain_dossier(cal, rules, record, T("2025-08-01 00:00")))
    assert "Đã quá 15 ngày kể từ khi yêu cầu bổ sung (30/07/2025)" in after


@settings(max_examples=160, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.datetimes(min_value=datetime(2018, 7, 1), max_value=datetime(2034, 6, 1)),
            st.one_of(st.none(), st.integers(min_value=0, max_value=30 * 24)),
            st.integers(min_value=0, max_value=40),
            st.sampled_from(UNITS),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_vectorised_equals_scalar(cal, rules, rows):
    received = [r[0].replace(microsecond=0) for r in rows]
    supplement = [
        None if r[1] is None else received[i] + timedelta(hours=r[1]) for i, r in enumerate(rows)
    ]
    out = legal_due_many(
        cal,
        rules,
        np.array(received, dtype="datetime64[s]"),
        np.array([s or np.datetime64("NaT") for s in supplement], dtype="datetime64[s]"),
        np.array([r[2] for r in rows], dtype=float),
        np.array([UNITS.index(r[3]) for r in rows]),
    )
    for i, r in enumerate(rows):
        assert out[i].item() == legal_due(cal, rules, received[i], supplement[i], r[2], r[3])
