"""The one-stop rules file: one rule set per regime with its validity dates and articles;
a broken file is refused with every problem and its line."""

from __future__ import annotations

import pytest

from deadlines.datafile import DataFileError
from deadlines.one_stop import RULES_FILE, OneStopRules


def rules_from(tmp_path, text: str) -> OneStopRules:
    path = tmp_path / "one_stop.yaml"
    path.write_text(text, encoding="utf-8")
    return OneStopRules.load(path)


def test_the_shipped_rules_cite_their_articles():
    rules = OneStopRules.load()
    nd61, nd118 = rules.regimes
    assert (nd61.code, str(nd61.valid_to), nd118.code, str(nd118.valid_from)) == (
        "ND61",
        "2025-06-30",
        "ND118",
        "2025-07-01",
    )
    # Read in the text of Decree 118/2025 itself.
    assert nd118.facts["supplement_once"].source.endswith("Điều 11 khoản 2 điểm c")
    assert nd118.facts["supplement"].source.endswith("Điều 19 khoản 5")
    assert "Điều 19 khoản 6; Điều 12 khoản 5" in nd118.facts["apology"].source
    assert all(nd118.facts[k].confirmed for k in ("supplement", "supplement_once", "apology"))
    assert (nd118.close_after_days, nd118.supplement_return_working_days) == (15, 3)
    assert (nd118.max_supplement_requests, nd118.max_reschedules) == (1, 1)
    # Not read in a text: data marked unconfirmed, with what is missing.
    assert not nd118.facts["receipt"].confirmed and nd118.facts["receipt"].note
    assert not nd61.facts["supplement"].confirmed and nd61.close_after_days is None
    assert not rules.indicator.fact.confirmed
    assert nd118.facts["receipt"].cite().endswith("(chưa xác nhận)")
    # The end of a day is a cited setting: 24:00, Civil Code Art. 148.
    assert nd118.end_of_day == "24:00" and "Điều 148" in nd118.facts["counting"].source


def test_overlapping_regimes_and_bad_settings_are_refused_with_their_lines(tmp_path):
    text = RULES_FILE.read_text(encoding="utf-8")
    text = text.replace("valid_from: 2025-07-01", "valid_from: 2025-06-01")
    text = text.replace('end_of_day: "24:00"', 'end_of_day: "17:30"', 1)
    text = text.replace(
        "max_requests: 1\n      source: Nghị định 118",
        "max_requests: 0\n      source: Nghị định 118",
    )
    note_61 = "Số điểm, khoản của quy định"
    text = text.replace(f"      note: {note_61}", f"      nota: {note_61}")
    with pytest.raises(DataFileError) as refused:
        rules_from(tmp_path, text)
    message = str(refused.value)
    assert "ND61 và ND118 có hiệu lực chồng nhau" in message
    lines = text.splitlines()
    bad_end = next(i for i, line in enumerate(lines, 1) if '"17:30"' in line)
    assert (
        f"dòng {bad_end}: quy định ND61: end_of_day phải là 24:00 hoặc close_of_business" in message
    )
    assert "'max_requests' phải là số nguyên ≥ 1 (không phải 0)" in message
    assert "trường không biết 'nota'" in message
    assert "điều chưa xác nhận cần 'note'" in message


def test_a_missing_section_is_named(tmp_path):
    text = RULES_FILE.read_text(encoding="utf-8")
    start = text.index("indicator_766:")
    with pytest.raises(DataFileError, match="thiếu bảng 'indicator_766'"):
        rules_from(tmp_path, text[:start])
