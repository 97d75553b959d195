"""Deadline rules: their due dates on the real calendar, serialisation, settings."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deadlines.calendar import OutOfRangeError
from deadlines.datafile import DataFileError
from deadlines.rules import (
    RULE_KINDS,
    AfterEvent,
    Annual,
    Combined,
    Continuous,
    Fixed,
    OnDemand,
    Period,
    Recurring,
    Reference,
    RuleDataError,
    RuleSettings,
    Starting,
    due_dates_for,
    event_code_for,
    rule_from_dict,
)


def d(text: str) -> date:
    return date.fromisoformat(text)


# ----------------------------------------------------------------------------- fixed


def test_before_a_day_rolls_back_never_past_it(cal):
    # 31/8/2025 Sunday, 30/8 Saturday: the last working day before 1/9 is Friday 29/8.
    rule = Fixed(d("2025-09-01"), before=True)
    assert rule.due_date(cal) == d("2025-08-29")
    assert rule.due_dates(cal, year=2025) == [d("2025-08-29")]
    assert rule.due_dates(cal, year=2024) == []


def test_by_a_day_off_rolls_forward(cal):
    # "Chậm nhất ngày 01/9/2025": 1/9 and 2/9 are National Day days off (Art. 148(5)).
    assert Fixed(d("2025-09-01"), before=False).due_date(cal) == d("2025-09-03")
    assert Fixed(d("2025-03-05"), before=False).due_date(cal) == d("2025-03-05")


def test_before_new_year_falls_in_the_previous_year(cal):
    rule = Fixed(d("2026-01-01"), before=True)
    assert rule.due_dates(cal, year=2025) == [d("2025-12-31")]
    assert rule.due_dates(cal, year=2026) == []


@settings(max_examples=1200)
@given(day=st.dates(date(2015, 2, 1), date(2035, 11, 30)))
def test_fixed_due_dates_are_the_nearest_working_day_on_the_right_side(cal, day):
    before = Fixed(day, before=True).due_date(cal)
    assert before < day and cal.is_working_day(before)
    assert cal.count_working_days(before + timedelta(days=1), day - timedelta(days=1)) == 0
    by = Fixed(day, before=False).due_date(cal)
    assert by >= day and cal.is_working_day(by)
    assert cal.count_working_days(day, by - timedelta(days=1)) == 0


def test_describe_fixed_explains_the_roll(cal):
    assert Fixed(d("2025-09-01"), before=True).describe(cal) == (
        "Hạn: trước ngày 1/9/2025, tức hết ngày 31/8/2025; 31/8/2025 là ngày nghỉ nên lùi "
        "về ngày làm việc liền trước 29/8/2025 (không được vượt quá ngày 1/9/2025)"
    )
    assert Fixed(d("2025-03-05"), before=True).describe(cal) == (
        "Hạn: trước ngày 5/3/2025, tức hết ngày 4/3/2025"
    )
    assert "3/9/2025" in Fixed(d("2025-09-01"), before=False).describe(cal)
    assert "Điều 148 khoản 5" in Fixed(d("2025-09-01"), before=False).describe()


# ---------------------------------------------------------------------------- period


def test_period_is_due_on_its_last_working_day(cal):
    q3 = Period(d("2025-07-01"), d("2025-09-30"), "Quý III/2025")
    assert q3.due_dates(cal, year=2025) == [d("2025-09-30")]
    assert q3.due_dates(cal, year=2026) == []
    assert q3.describe(cal) == "Hạn: ngày làm việc cuối cùng của Quý III/2025 (30/9/2025)"
    january = Period(d("2025-01-01"), d("2025-01-31"), "tháng 1/2025")
    assert january.due_date(cal) == d("2025-01-24")  # 27-31/1/2025 are Tết days off


@settings(max_examples=800)
@given(start=st.dates(date(2015, 1, 1), date(2035, 6, 1)), length=st.integers(6, 180))
def test_period_due_is_the_last_working_day_inside_it(cal, start, length):
    end = start + timedelta(days=length)
    due = Period(start, end, "kỳ").due_date(cal)
    assert start <= due <= end and cal.is_working_day(due)
    assert cal.count_working_days(due + timedelta(days=1), end) == 0


# ------------------------------------------------------------------------- recurring


def test_monthly_is_due_on_each_last_working_day(cal):
    dues = Recurring("monthly").due_dates(cal, year=2025)
    assert len(dues) == 12
    assert dues[0] == d("2025-01-24")  # Tết
    assert dues[4] == d("2025-05-30")  # 31/5 is a Saturday
    assert dues[3] == d("2025-04-29")  # 30/4 holiday


def test_before_the_23rd_of_each_month_rolls_back(cal):
    dues = Recurring("monthly", before_day=23).due_dates(cal, year=2025)
    assert len(dues) == 12
    assert dues[1] == d("2025-02-21")  # 22/2/2025 is a Saturday
    assert all(due.day <= 22 for due in dues)


def test_quarterly_half_yearly_and_yearly(cal):
    assert Recurring("quarterly").due_dates(cal, year=2025) == [
        d("2025-03-31"),
        d("2025-06-30"),
        d("2025-09-30"),
        d("2025-12-31"),
    ]
    assert Recurring("half_yearly").due_dates(cal, year=2025) == [d("2025-06-30"), d("2025-12-31")]
    assert Recurring("yearly").due_dates(cal, year=2025) == [d("2025-12-31")]
    # A day for the quarter is a day of its last month: before 15/3, 15/6, 15/9, 15/12.
    assert Recurring("quarterly", before_day=15).due_dates(cal, year=2025) == [
        d("2025-03-14"),
        d("2025-06-13"),  # 14/6 Saturday
        d("2025-09-12"),  # 14/9 Sunday, 13/9 Saturday
        d("2025-12-12"),  # 14/12 Sunday
    ]


def test_rolling_back_can_move_a_due_date_into_the_previous_month_or_year(cal):
    # "Trước ngày 3 hằng tháng": day 2 of each month, rolled back over days off.
    rule = Recurring("monthly", before_day=3)
    assert [str(due) for due in rule.due_dates(cal, year=2025)] == [
        "2025-01-02",
        "2025-01-24",  # February's: 2/2 Sunday, 1/2 Saturday, 27-31/1 Tết
        "2025-02-28",  # March's: 2/3 Sunday, 1/3 Saturday
        "2025-04-02",
        "2025-04-29",  # May's: 2/5, 1/5, 30/4 days off
        "2025-06-02",
        "2025-07-02",
        "2025-08-01",
        "2025-08-29",  # September's: 2/9, 1/9 off, 31/8-30/8 weekend
        "2025-10-02",
        "2025-10-31",  # November's: 2/11 Sunday, 1/11 Saturday
        "2025-12-02",
        # January 2026's: 2/1/2026 is a day off (New Year swap, Công văn 12729/VPCP-KGVX)
        # and so is 1/1, so it falls in 2025.
        "2025-12-31",
    ]
    dues_2026 = rule.due_dates(cal, year=2026)
    assert dues_2026[0] == d("2026-02-02") and d("2025-12-31") not in dues_2026
    assert dues_2026[-1] == d("2026-12-31")  # January 2027's: 1/1/2027 Friday, 2/1 Saturday


def test_recurring_at_the_edge_of_the_calendar_says_why_it_cannot_answer(cal):
    assert len(Recurring("monthly").due_dates(cal, year=2035)) == 12
    with pytest.raises(OutOfRangeError, match="năm 2036"):
        Recurring("monthly", before_day=23).due_dates(cal, year=2035)


def test_describe_recurring():
    assert Recurring("monthly").describe() == (
        "Hạn: hằng tháng, vào ngày làm việc cuối cùng của mỗi tháng"
    )
    assert Recurring("monthly", before_day=23).describe() == (
        "Hạn: hằng tháng, trước ngày 23, tức hết ngày 22 (nếu là ngày nghỉ thì lùi về ngày "
        "làm việc liền trước)"
    )
    assert "tháng cuối mỗi quý" in Recurring("quarterly", before_day=15).describe()


# ----------------------------------------------------------------------- after event


def test_working_days_after_an_event_skip_the_event_day(cal):
    rule = AfterEvent("nhận được Quyết định", 3, "working_days")
    # Friday 25/4/2025 -> Saturday 26/4 (worked), Monday 28/4, Tuesday 29/4.
    assert rule.due_after(cal, d("2025-04-25")) == d("2025-04-29")
    assert rule.due_dates(cal, year=2025) == []


def test_calendar_days_after_an_event_roll_forward(cal):
    rule = AfterEvent("nhận hồ sơ", 10, "days")
    assert rule.due_after(cal, d("2025-04-20")) == d("2025-05-05")  # 30/4: holiday … 4/5 Sunday
    assert rule.due_after(cal, d("2025-04-10")) == d("2025-04-21")  # 20/4 Sunday


def test_immediately_is_the_next_working_day_by_default(cal):
    rule = AfterEvent("văn bản QPPL được ban hành", 1, "immediately")
    assert rule.due_after(cal, d("2025-04-29")) == d("2025-05-05")  # 30/4-2/5 off, weekend
    same_day = AfterEvent("văn bản QPPL được ban hành", 0, "immediately")
    assert same_day.due_after(cal, d("2025-04-29")) == d("2025-04-29")
    assert same_day.due_after(cal, d("2025-04-30")) == d("2025-05-05")


def test_an_event_without_a_stated_limit_has_no_due_date(cal):
    rule = AfterEvent("kiểm tra", 0, "unspecified")
    assert rule.due_after(cal, d("2025-04-25")) is None
    assert "không nêu thời hạn" in rule.describe()


def test_due_after_answers_only_for_its_own_event(cal):
    rule = AfterEvent("nhận được Quyết định", 3, "working_days")
    day = d("2025-04-25")
    assert rule.due_after(cal, day, event_code="nhan-duoc-quyet-dinh") == d("2025-04-29")
    assert rule.due_after(cal, day, event_code="kiem-tra") is None


@settings(max_examples=1200)
@given(event=st.dates(date(2015, 1, 1), date(2035, 10, 1)), n=st.integers(1, 40))
def test_n_working_days_after_is_the_nth_working_day(cal, event, n):
    due = AfterEvent("sự kiện", n, "working_days").due_after(cal, event)
    assert cal.is_working_day(due)
    assert cal.count_working_days(event + timedelta(days=1), due) == n


def test_event_code_is_an_ascii_slug_of_the_unaccented_words():
    assert (
        event_code_for("nhận được Quyết định công bố TTHC của bộ trưởng các Bộ, ngành Trung ương")
        == "nhan-duoc-quyet-dinh-cong-bo-tthc-cua-bo-truong-cac-bo-nganh-trung-uong"
    )
    assert event_code_for("Đoàn kiểm tra") == "doan-kiem-tra"


# ------------------------------------------------------------- no dates, and combined


@pytest.mark.parametrize("rule", [Continuous(), OnDemand(), Reference("Theo Kế hoạch của UBND")])
def test_rules_without_their_own_date(cal, rule):
    assert rule.due_dates(cal, year=2025) == []
    assert rule.due_after(cal, d("2025-04-25")) is None
    assert due_dates_for(rule, cal, year=2025, event_date=d("2025-04-25")) == []


def test_combined_is_the_union_of_its_parts(cal):
    rule = Combined((Recurring("quarterly"), Fixed(d("2025-06-01"), before=False), OnDemand()))
    assert rule.due_dates(cal, year=2025) == [
        d("2025-03-31"),
        d("2025-06-02"),  # 1/6/2025 Sunday
        d("2025-06-30"),
        d("2025-09-30"),
        d("2025-12-31"),
    ]
    assert rule.due_after(cal, d("2025-04-25")) is None


def test_combined_after_event_takes_the_earliest_part(cal):
    rule = Combined(
        (
            AfterEvent("nhận được phản ánh", 5, "working_days"),
            AfterEvent("nhận được phản ánh", 2, "working_days"),
            AfterEvent("có báo cáo", 0, "unspecified"),
        )
    )
    assert rule.due_after(cal, d("2025-04-25")) == d("2025-04-28")
    assert rule.due_after(cal, d("2025-04-25"), event_code="co-bao-cao") is None


def test_due_dates_for_uses_a_rules_own_date_whatever_the_year(cal):
    fixed = Fixed(d("2025-03-05"), before=True)
    assert due_dates_for(fixed, cal, year=2030) == [d("2025-03-04")]
    after = AfterEvent("nhận được Quyết định", 3, "working_days")
    assert due_dates_for(after, cal, year=2025) == []
    assert due_dates_for(after, cal, year=2025, event_date=d("2025-04-25")) == [d("2025-04-29")]
    both = Combined((after, Recurring("half_yearly")))
    assert due_dates_for(both, cal, year=2025, event_date=d("2025-04-25")) == [
        d("2025-04-29"),
        d("2025-06-30"),
        d("2025-12-31"),
    ]


# --------------------------------------------------------------------- serialisation

SAMPLES = [
    Fixed(d("2025-03-05"), before=True),
    Period(d("2025-04-01"), d("2025-09-30"), "Quý II–III/2025"),
    Recurring("monthly", before_day=23),
    Recurring("half_yearly"),
    AfterEvent("nhận được Quyết định công bố TTHC", 3, "working_days"),
    AfterEvent("kiểm tra", 0, "unspecified"),
    Continuous(),
    OnDemand(),
    Reference("Theo Kế hoạch của UBND tỉnh"),
    Combined((Recurring("quarterly"), OnDemand())),
    Annual(6, 1, before=True),
    Annual(12),
    Starting(d("2025-06-01"), "từ tháng 6/2025"),
]


@pytest.mark.parametrize("rule", SAMPLES, ids=lambda r: r.kind)
def test_to_dict_starts_with_kind_and_round_trips_through_json(rule):
    data = rule.to_dict()
    assert next(iter(data)) == "kind" and data["kind"] == rule.kind
    restored = rule_from_dict(json.loads(json.dumps(data, ensure_ascii=False)))
    assert restored == rule and restored.to_dict() == data


def test_every_kind_is_covered():
    assert set(RULE_KINDS) == {
        "fixed",
        "period",
        "recurring",
        "annual",
        "after_event",
        "starting",
        "continuous",
        "on_demand",
        "reference",
        "combined",
    }
    assert {rule.kind for rule in SAMPLES} == set(RULE_KINDS)


wording = st.text(
    st.sampled_from("abcdđêôơưăâáàạảãQĐTTHC ,-/0123456789"), min_size=1, max_size=30
).filter(event_code_for)
single_rules = st.one_of(
    st.builds(Fixed, st.dates(date(2000, 1, 2), date(2100, 1, 1)), st.booleans()),
    st.builds(
        lambda start, days, label: Period(start, start + timedelta(days=days), label),
        st.dates(date(2000, 1, 1), date(2100, 1, 1)),
        st.integers(0, 400),
        wording,
    ),
    st.builds(
        Recurring,
        st.sampled_from(["monthly", "quarterly", "half_yearly", "yearly"]),
        st.none() | st.integers(2, 29),
    ),
    st.builds(AfterEvent, wording, st.integers(1, 99), st.sampled_from(["working_days", "days"])),
    st.builds(AfterEvent, wording, st.integers(0, 5), st.just("immediately")),
    st.builds(AfterEvent, wording, st.just(0), st.just("unspecified")),
    st.just(Continuous()),
    st.just(OnDemand()),
    st.builds(Reference, wording),
    st.builds(Annual, st.integers(1, 12), st.none()),
    st.builds(
        lambda month, day, before: Annual(month, min(day, 28 if month == 2 else 30), before),
        st.integers(1, 12),
        st.integers(1, 31),
        st.booleans(),
    ),
    st.builds(Starting, st.dates(date(2000, 1, 1), date(2100, 1, 1)), wording),
)
any_rule = single_rules | st.builds(
    lambda parts: Combined(tuple(parts)), st.lists(single_rules, min_size=2, max_size=4)
)


@settings(max_examples=1200)
@given(rule=any_rule)
def test_any_rule_round_trips_exactly(rule):
    data = rule.to_dict()
    text = json.dumps(data, ensure_ascii=False)
    restored = rule_from_dict(json.loads(text))
    assert restored == rule
    assert json.dumps(restored.to_dict(), ensure_ascii=False) == text


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ({"kind": "weekly"}, "Loại quy tắc không hợp lệ"),
        ({"kind": "fixed", "day": "2025-03-05"}, "cần đúng các khóa"),
        ({"kind": "fixed", "day": "5/3/2025", "before": True}, "YYYY-MM-DD"),
        ({"kind": "fixed", "day": "2025-03-05", "before": "yes"}, "bool"),
        ({"kind": "recurring", "freq": "weekly", "before_day": None}, "Tần suất"),
        ({"kind": "recurring", "freq": "monthly", "before_day": 31}, "từ 2 đến 29"),
        (
            {"kind": "period", "start": "2025-09-30", "end": "2025-07-01", "label": "Q"},
            "kết thúc trước",
        ),
        (
            {
                "kind": "after_event",
                "event": "kiểm tra",
                "event_code": "thanh-tra",
                "amount": 0,
                "unit": "unspecified",
            },
            "không khớp",
        ),
        (
            {
                "kind": "after_event",
                "event": "x",
                "event_code": "x",
                "amount": 0,
                "unit": "working_days",
            },
            "từ 1 trở lên",
        ),
        (
            {"kind": "after_event", "event": "x", "event_code": "x", "amount": 1, "unit": "hours"},
            "Đơn vị",
        ),
        ({"kind": "combined", "parts": [{"kind": "on_demand"}]}, "ít nhất hai phần"),
        ({"kind": "reference", "text": " ", "code": ""}, "có nội dung"),
        ("fixed", "dict"),
    ],
)
def test_invalid_rule_data_is_refused_with_a_reason(data, needle):
    with pytest.raises(RuleDataError, match=needle):
        rule_from_dict(data)


def test_nested_combined_is_refused():
    inner = Combined((Continuous(), OnDemand()))
    with pytest.raises(RuleDataError, match="quy tắc đơn"):
        Combined((inner, Recurring("monthly")))


# -------------------------------------------------------------------------- settings


def test_default_settings():
    defaults = RuleSettings()
    assert (defaults.monthly_due, defaults.quarterly_due) == (None, None)
    assert (defaults.half_yearly_due, defaults.yearly_due) == (None, None)
    assert defaults.immediately_working_days == 1


def test_settings_from_yaml(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(
        "monthly_due: last_working_day\nquarterly_due: {before_day: 15}\n"
        "immediately_working_days: 2\n",
        encoding="utf-8",
    )
    assert RuleSettings.from_yaml(path) == RuleSettings(
        quarterly_due=15, immediately_working_days=2
    )


def test_bad_settings_file_lists_every_problem_with_its_line(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text(
        "monthly_due: 20\nweekly_due: last_working_day\nimmediately_working_days: -1\n",
        encoding="utf-8",
    )
    with pytest.raises(DataFileError) as err:
        RuleSettings.from_yaml(path)
    message = str(err.value)
    assert "dòng 1" in message and "before_day" in message
    assert "dòng 2" in message and "weekly_due" in message
    assert "dòng 3" in message and "không âm" in message


@pytest.mark.parametrize(
    "kwargs", [{"monthly_due": 1}, {"yearly_due": 30}, {"immediately_working_days": -1}]
)
def test_impossible_settings_are_refused(kwargs):
    with pytest.raises(RuleDataError):
        RuleSettings(**kwargs)


def test_occurrence_keys_do_not_depend_on_the_calendar(cal, tmp_path):
    """A new day off moves a due date but keeps the occurrence's key (no double item)."""
    from deadlines.calendar import WorkCalendar
    from deadlines.phrases import parse_timing

    province = tmp_path / "tinh.yaml"
    province.write_text(
        "overrides:\n  - {date: 2025-03-21, kind: off, name: Nghỉ, source: QĐ 1/QĐ-UBND}\n",
        encoding="utf-8",
    )
    other = WorkCalendar.vietnam(province)
    for phrase, key in [
        ("Trước ngày 23 hàng tháng", "2025-03"),
        ("Hàng quý", "2025-Q1"),
        ("Quý I/2025", "2025-01-01/2025-03-31"),
        ("Trước ngày 22/3/2025", "2025-03-22"),
    ]:
        rule = parse_timing(phrase, plan_year=2025)
        before = dict(rule.occurrences(cal, year=2025))
        after = dict(rule.occurrences(other, year=2025))
        assert before.keys() == after.keys() and key in before, phrase
        assert [d for _, d in rule.occurrences(cal, year=2025)] == rule.due_dates(cal, year=2025)
    monthly = parse_timing("Trước ngày 23 hàng tháng", plan_year=2025)
    assert dict(monthly.occurrences(cal, year=2025))["2025-03"] == date(2025, 3, 21)
    assert dict(monthly.occurrences(other, year=2025))["2025-03"] == date(2025, 3, 20)
