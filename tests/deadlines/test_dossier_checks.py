"""The export's column checks: pure functions over whole columns, each problem with its row
and column."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from deadlines import dossier_checks as checks
from deadlines.export_columns import TIME_COLUMNS


def times(**columns: list[str]) -> dict[str, np.ndarray]:
    n = len(next(iter(columns.values())))
    out = {}
    for name in TIME_COLUMNS:
        parsed, problems = checks.parse_times(columns.get(name, [""] * n), name)
        assert problems == []
        out[name] = parsed
    return out


def test_times_are_parsed_per_column_with_offsets_and_formats():
    parsed, problems = checks.parse_times(
        ["2025-07-01T09:00:00", "", "2025-07-01T02:00:00+00:00", "2025-13-01T09:00", "x"],
        "received_at",
        required=True,
    )
    assert parsed[:3].astype(str).tolist() == ["2025-07-01T09:00:00", "NaT", "2025-07-01T09:00:00"]
    assert [(row, column) for row, column, _ in problems] == [
        (1, "received_at"),
        (3, "received_at"),
        (4, "received_at"),
    ]
    assert problems[0][2] == "trống (bắt buộc)"
    assert problems[2][2] == "ngày giờ không hợp lệ (cần ISO 8601): 'x'"
    portal, problems = checks.parse_times(["20250701133000"], "received_at", "%Y%m%d%H%M%S")
    assert problems == [] and portal.astype(str).tolist() == ["2025-07-01T13:30:00"]


def test_an_apology_before_receipt_and_a_supplement_before_its_request():
    found = checks.check_event_order(
        times(
            received_at=["2025-07-07T09:00", "2025-07-07T09:00", "2025-07-07T09:00"],
            apology_at=["2025-07-06T09:00", "", "2025-07-08T09:00"],
            apology_new_due=["2025-07-20T09:00", "", "2025-07-20T09:00"],
            supplement_requested_at=["", "2025-07-09T10:00", ""],
            supplement_received_at=["", "2025-07-08T10:00", ""],
        )
    )
    assert found == [
        (1, "supplement_received_at", "nhận bổ sung trước khi yêu cầu"),
        (0, "apology_at", "xin lỗi trước khi tiếp nhận"),
    ]


def test_facts_that_belong_together():
    found = checks.check_event_pairs(
        times(
            received_at=["2025-07-07T09:00"] * 4,
            supplement_received_at=["2025-07-09T09:00", "", "", ""],
            apology_at=["", "2025-07-09T09:00", "", ""],
            supplement_requested_at=["", "", "2025-07-08T09:00", ""],
            completed_at=["", "", "2025-07-10T09:00", "2025-07-10T09:00"],
            closed_at=["", "", "", "2025-07-10T09:00"],
        )
    )
    assert [(row, column) for row, column, _ in found] == [
        (0, "supplement_received_at"),
        (1, "apology_new_due"),
        (2, "completed_at"),
        (3, "closed_at"),
    ]


def test_supplement_request_counts():
    counts, problems = checks.parse_counts(["", "2", "0", "1", "x"], "supplement_requests")
    assert counts.tolist() == [-1, 2, 0, 1, -1]
    assert problems == [(4, "supplement_requests", "phải là số nguyên từ 0 đến 99: 'x'")]
    requested = np.array(
        ["2025-07-08T09:00", "2025-07-08T09:00", "2025-07-08T09:00", "NaT", "NaT"],
        dtype="datetime64[s]",
    )
    resolved, problems = checks.resolve_supplement_requests(np.array([-1, 2, 0, 1, -1]), requested)
    assert resolved.tolist() == [1, 2, 0, 1, 0]
    assert [row for row, _, _ in problems] == [2, 3]


def test_codes_choices_and_duplicates():
    assert checks.check_unique(["A", "B", "A", ""], "dossier_id") == [
        (2, "dossier_id", "hồ sơ 'A' xuất hiện hai lần trong tệp")
    ]
    assert checks.check_choice(["online", "fax"], "channel", ("online", "direct")) == [
        (1, "channel", "'fax' không hợp lệ (chọn: online, direct)")
    ]
    assert checks.check_known(["SO-TC", "NO"], "agency_code", {"SO-TC"}, "không có") == [
        (1, "agency_code", "không có: 'NO'")
    ]
    flags, problems = checks.parse_flags(["1", "0", "", "2"], "paid_online", blank_allowed=True)
    assert flags == [True, False, None, None] and [p[0] for p in problems] == [3]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.just(""),
            st.builds(
                lambda dt, form: dt.strftime(form),
                st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2035, 12, 31)),
                st.sampled_from(
                    [
                        "%Y-%m-%dT%H:%M:%S",
                        "%Y-%m-%d %H:%M:%S",
                        "%Y-%m-%dT%H:%M",
                        "%Y-%m-%d",
                        "%Y-%m-%dT%H:%M:%S.%f",
                        "%Y-%m-%dT%H:%M:%S+07:00",
                        "%Y-%m-%dT%H:%M:%S+00:00",
                    ]
                ),
            ),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_the_column_parser_equals_the_cell_parser(values):
    parsed, problems = checks.parse_times(values, "received_at")
    assert problems == []
    expected = [checks.local_time(v) if v else None for v in values]
    assert [None if np.isnat(p) else p.item() for p in parsed] == expected


# The vectorised column checks agree with the cell-by-cell reference on anything.

PLAIN = st.builds(
    lambda y, mo, d, h, mi, s, sep, form: (
        f"{y:04d}-{mo:02d}-{d:02d}"
        + ("" if form == 0 else f"{sep}{h:02d}:{mi:02d}" + ("" if form == 1 else f":{s:02d}"))
    ),
    st.integers(0, 2100),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
    st.sampled_from(["T", " ", "x"]),
    st.integers(0, 2),
)
OTHER = st.sampled_from(
    [
        "",
        "2025-04-25T18:00:00+07:00",
        "2025-04-25T18:00:00Z",
        "2025-04-25T11:00:00+00:00",
        "2025-04-25T18:00:00.999999",
        "2025-04-25T18+07",
        "2025-04-25T18",
        "20250425T180000",
        "2025-W17-5",
        "2025-04-25T18:00+07",
        "25/04/2025",
        "hôm nay",
        "2025-04-25 18:00:00 ",
    ]
)


def reference(cell: str, time_format: str | None = None):
    if not cell:
        return None
    try:
        return np.datetime64(checks.local_time(cell, time_format), "s")
    except ValueError:
        return "bad"


PORTAL = st.builds(
    lambda y, mo, d, h, mi, s: f"{y:04d}{mo:02d}{d:02d}{h:02d}{mi:02d}{s:02d}",
    st.integers(1990, 2040),
    st.integers(0, 13),
    st.integers(0, 32),
    st.integers(0, 25),
    st.integers(0, 61),
    st.integers(0, 61),
)


@given(st.lists(st.one_of(PORTAL, st.sampled_from(["", "2025070113300", "x"])), max_size=30))
def test_parse_times_with_a_format_reads_exactly_what_strptime_reads(cells):
    fmt = "%Y%m%d%H%M%S"
    parsed, problems = checks.parse_times(pa.array(cells, pa.string()), "received_at", fmt)
    bad = {row for row, _, _ in problems}
    for row, cell in enumerate(cells):
        expected = reference(cell, fmt)
        if expected == "bad":
            assert row in bad and np.isnat(parsed[row])
        elif expected is None:
            assert row not in bad and np.isnat(parsed[row])
        else:
            assert row not in bad and parsed[row] == expected, cell


@given(st.lists(st.one_of(PLAIN, OTHER, st.text(max_size=25)), max_size=40))
def test_parse_times_reads_exactly_what_fromisoformat_reads(cells):
    parsed, problems = checks.parse_times(pa.array(cells, pa.string()), "completed_at")
    bad = {row for row, _, _ in problems}
    for row, cell in enumerate(cells):
        expected = reference(cell)
        if expected == "bad":
            assert row in bad and np.isnat(parsed[row])
        elif expected is None:
            assert row not in bad and np.isnat(parsed[row])
        else:
            assert row not in bad and parsed[row] == expected, cell


def test_a_blank_required_time_and_messages():
    parsed, problems = checks.parse_times(
        pa.array(["", "2025-13-01T09:00:00", "2025-04-25T18:00"]), "received_at", required=True
    )
    assert problems == [
        (0, "received_at", "trống (bắt buộc)"),
        (1, "received_at", "ngày giờ không hợp lệ (cần ISO 8601): '2025-13-01T09:00:00'"),
    ]
    assert parsed[2] == np.datetime64("2025-04-25T18:00:00")


def test_unique_names_every_repeat_after_the_first():
    values = pa.array(["A", "B", "A", "", "", "B", "A"])
    assert checks.check_unique(values, "dossier_id") == [
        (2, "dossier_id", "hồ sơ 'A' xuất hiện hai lần trong tệp"),
        (5, "dossier_id", "hồ sơ 'B' xuất hiện hai lần trong tệp"),
        (6, "dossier_id", "hồ sơ 'A' xuất hiện hai lần trong tệp"),
    ]


def test_flags_and_choices():
    flags, problems = checks.flag_codes(
        pa.array(["1", "0", "", "2"]), "paid_online", blank_allowed=True
    )
    assert flags.tolist() == [1, 0, -1, -1]
    assert problems == [(3, "paid_online", "phải là 0 hoặc 1 hoặc để trống: '2'")]
    assert checks.check_choice(pa.array(["online", "fax"]), "channel", ("online", "direct")) == [
        (1, "channel", "'fax' không hợp lệ (chọn: online, direct)")
    ]
