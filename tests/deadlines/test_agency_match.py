"""Matching the bodies a plan names to registry codes, with the match's confidence."""

from __future__ import annotations

from datetime import date

import pytest

from deadlines.agencies import load_registry
from deadlines.agency_match import EXACT, AgencyMatcher, load_other_names
from deadlines.datafile import DataFileError


@pytest.fixture(scope="module")
def matcher():
    registry = load_registry()
    names = load_other_names(registry=registry)
    return AgencyMatcher(registry, names, province="Nghệ An", on=date(2025, 2, 24))


def codes(matcher, cell):
    return [m.code for m in matcher.match_cell(cell)]


@pytest.mark.parametrize(
    ("text", "code", "how"),
    [
        ("Văn phòng UBND tỉnh", "VP-UBND", "name"),  # abbreviation, province dropped
        ("VĂN PHÒNG ỦY BAN NHÂN DÂN TỈNH NGHỆ AN", "VP-UBND", "name"),
        ("Sở Tư pháp", "SO-TP", "name"),
        ("Báo Nghệ An", "BAO-NGHE-AN", "name"),  # the province is the name itself
        ("Các Sở, ban, ngành cấp tỉnh", "GRP-SO-NGANH", "name"),
        ("Sở, ban, ngành cấp tỉnh", "GRP-SO-NGANH", "name"),  # without "Các"
        ("Các Sở, ban, ngành thuộc UBND tỉnh", "GRP-SO-NGANH", "other_name"),
        ("UBND các huyện, thành phố, thị xã", "GRP-UBND-HUYEN", "other_name"),
    ],
)
def test_exact_names_labels_and_declared_other_names(matcher, text, code, how):
    match = matcher.match_one(text)
    assert (match.code, match.how, match.confidence) == (code, how, EXACT)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("- Các Sở, ban, ngành cấp tỉnh;\n- UBND cấp huyện.", ["GRP-SO-NGANH", "GRP-UBND-HUYEN"]),
        ("UBND cấp huyện; UBND cấp xã.", ["GRP-UBND-HUYEN", "GRP-UBND-XA"]),
        ("UBND cấp huyện, UBND cấp xã.", ["GRP-UBND-HUYEN", "GRP-UBND-XA"]),
        ("Báo Nghệ An, Đài Phát thanh và Truyền hình tỉnh", ["BAO-NGHE-AN", "DAI-PTTH"]),
        ("Các Sở: Nội vụ, Thông tin và Truyền thông", ["SO-NV", "SO-TTTT"]),
        ("Sở Nội vụ và Sở Tài chính", ["SO-NV", "SO-TC"]),
        (
            "Cơ quan, đơn vị được chuyển xử lý phản ánh, kiến nghị",  # commas inside one label
            ["GRP-CQ-XU-LY-PAKN"],
        ),
    ],
)
def test_a_cell_naming_several_bodies_is_split_where_the_names_end(matcher, cell, expected):
    matches = matcher.match_cell(cell)
    assert [m.code for m in matches] == expected
    assert all(m.exact for m in matches)


def test_a_close_name_is_a_guess_with_its_confidence_and_runner_up(matcher):
    match = matcher.match_one("Các sở liên quan")
    assert (match.code, match.how) == ("GRP-LIEN-QUAN", "guess")
    assert 0.55 <= match.confidence < 1.0
    assert not match.exact


def test_a_name_nothing_resembles_matches_nothing(matcher):
    match = matcher.match_one("Hội Nông dân tỉnh")
    assert (match.code, match.how) == (None, "none")
    assert match.confidence < 0.55


def test_a_renamed_agency_is_the_one_active_on_the_decision_date():
    registry = load_registry()
    names = load_other_names(registry=registry)
    before = AgencyMatcher(registry, names, province="Nghệ An", on=date(2025, 2, 24))
    assert before.match_one("Sở Thông tin và Truyền thông").code == "SO-TTTT"


def test_other_names_file_errors_say_where(tmp_path):
    path = tmp_path / "names.yaml"
    path.write_text(
        "names:\n"
        "  - code: GRP-KHONG-CO\n"
        "    names: [Các cơ quan nào đó]\n"
        "    source: thử\n"
        "  - code: SO-TP\n"
        "    names: []\n"
        "    source: thử\n",
        encoding="utf-8",
    )
    with pytest.raises(DataFileError) as err:
        load_other_names(path, load_registry())
    message = str(err.value)
    assert "dòng 2" in message and "GRP-KHONG-CO" in message
    assert "dòng 6" in message and "danh sách tên" in message
