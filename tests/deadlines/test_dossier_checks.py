"""The vectorised column checks agree with the cell-by-cell reference on anything."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from deadlines import dossier_checks as checks

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


def reference(cell: str):
    if not cell:
        return None
    try:
        return np.datetime64(checks.local_time(cell), "s")
    except ValueError:
        return "bad"


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
        (1, "received_at", "ngày giờ không hợp lệ (cần ISO 8601): '2025-13-01T09:00:00'"),
        (0, "received_at", "trống (bắt buộc)"),
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
    flags, problems = checks.parse_flags(
        pa.array(["1", "0", "", "2"]), "paid_online", blank_allowed=True
    )
    assert flags.tolist() == [1, 0, -1, -1]
    assert problems == [(3, "paid_online", "phải là 0 hoặc 1 hoặc để trống: '2'")]
    assert checks.check_choice(pa.array(["online", "fax"]), "channel", ("online", "direct")) == [
        (1, "channel", "'fax' không hợp lệ (chọn: online, direct)")
    ]
