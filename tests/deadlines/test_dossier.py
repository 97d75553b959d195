"""Dossier due dates: receipt after hours, holidays, swaps, worked Saturdays, units,
restarts after a supplement; the vectorised form equals the scalar one."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deadlines.dossier import UNITS, OneStopRules, explain_due, legal_due, legal_due_many

T = datetime.fromisoformat


@pytest.fixture(scope="module")
def rules() -> OneStopRules:
    return OneStopRules.load()


@pytest.mark.parametrize(
    ("received", "value", "unit", "due"),
    [
        # Friday 25/4/2025 09:00, 3 working days: Sat 26 (worked), Mon 28, Tue 29.
        ("2025-04-25 09:00", 3, "working_days", "2025-04-29 17:00"),
        # After hours on Friday: counts from the worked Saturday 07:00; 26 not counted.
        ("2025-04-25 18:00", 3, "working_days", "2025-05-05 17:00"),
        # On the 30/4 holiday: counts from Monday 5/5, which is not counted.
        ("2025-04-30 10:00", 1, "working_days", "2025-05-06 17:00"),
        # Tết 2025: received Friday 24/1, 2 working days -> Mon 3/2, Tue 4/2.
        ("2025-01-24 10:00", 2, "working_days", "2025-02-04 17:00"),
        # 2026 New Year swap: Friday 2/1/2026 is off and Saturday 10/1 is worked.
        ("2025-12-31 10:00", 1, "working_days", "2026-01-05 17:00"),
        ("2026-01-09 10:00", 1, "working_days", "2026-01-10 17:00"),
        # Working hours: 15:00 + 4 h = 2 h today, 2 h on the worked Saturday.
        ("2025-04-25 15:00", 4, "working_hours", "2025-04-26 09:00"),
        ("2025-04-25 12:00", 2, "working_hours", "2025-04-25 15:30"),  # lunch break
        # Calendar days: 25/4 + 5 = 30/4 (holiday) -> next working day, Mon 5/5.
        ("2025-04-25 09:00", 5, "days", "2025-05-05 17:00"),
        ("2025-04-25 09:00", 0, "working_days", "2025-04-25 17:00"),
    ],
)
def test_legal_due(cal, rules, received, value, unit, due):
    assert legal_due(cal, rules, T(received), None, value, unit) == T(due)


def test_a_supplement_restarts_the_limit_from_zero(cal, rules):
    # Received Mon 5/5/2025 09:00 with 5 working days: due Mon 12/5.
    assert legal_due(cal, rules, T("2025-05-05 09:00"), None, 5, "working_days") == T(
        "2025-05-12 17:00"
    )
    # The complete dossier arrives Thu 8/5 16:00: 5 full working days from then, not the
    # 2 days that were left (no pause): due Thu 15/5.
    restarted = legal_due(
        cal, rules, T("2025-05-05 09:00"), T("2025-05-08 16:00"), 5, "working_days"
    )
    assert restarted == T("2025-05-15 17:00")


def test_explanation_names_each_step(cal, rules):
    lines = explain_due(
        cal,
        rules,
        T("2025-04-25 18:00"),
        T("2025-04-28 09:00"),
        3,
        "working_days",
        apology_new_due=T("2025-05-09 17:00"),
    )
    text = "\n".join(lines)
    assert "tính lại từ đầu" in text and "61/2018" in text
    assert "hạn 17:00 06/05/2025" in text
    assert "Ngày Chiến thắng" in text  # 30/4 skipped, with its reason
    assert "chỉ được hẹn lại một lần" in text


@settings(max_examples=160, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.datetimes(min_value=datetime(2016, 1, 1), max_value=datetime(2034, 6, 1)),
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
