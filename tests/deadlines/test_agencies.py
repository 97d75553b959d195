"""The agency registry: the shipped data, succession through the 2025 mergers, validation."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest
from vietnam_provinces import ProvinceCode, VietNamDivisionType, Ward

from deadlines.agencies import AgencyKind, load_registry
from deadlines.datafile import DataFileError

NGHE_AN = ProvinceCode(40)


@pytest.fixture(scope="module")
def registry():
    return load_registry()


def codes(agencies) -> set[str]:
    return {a.code for a in agencies}


# ------------------------------------------------------------------------ shipped data


def test_130_communes_and_wards_from_1_july_2025(registry):
    communes = [a for a in registry.agencies.values() if a.kind is AgencyKind.COMMUNE]
    wards = [a for a in registry.agencies.values() if a.kind is AgencyKind.WARD]
    assert (len(communes), len(wards)) == (119, 11)
    assert len(registry.members("GRP-UBND-XA", on=date(2025, 7, 1))) == 130
    assert registry.members("GRP-UBND-XA", on=date(2025, 6, 30)) == ()


def test_communes_are_the_packages_own_list(registry):
    package = {f"XA-{int(w.code)}": w for w in Ward.iter_by_province(NGHE_AN)}
    generated = {a.code: a for a in registry.agencies.values() if a.code.startswith("XA-")}
    assert generated.keys() == package.keys()
    for code, ward in package.items():
        kind = AgencyKind.WARD if ward.division_type is VietNamDivisionType.PHUONG else "commune"
        assert generated[code].kind == kind
        assert generated[code].name.lower() == f"ubnd {ward.name.lower()}"
    assert registry.get("XA-17329").name == "UBND xã Anh Sơn"
    assert registry.get("XA-17329").email == "xa-17329@example.gov.vn"


def test_twenty_district_level_committees_until_30_june_2025(registry):
    for day in (date(2025, 1, 1), date(2025, 6, 30)):
        assert len(registry.members("GRP-UBND-HUYEN", on=day)) == 20
    assert registry.members("GRP-UBND-HUYEN", on=date(2025, 7, 1)) == ()
    assert "TX-CUA-LO" not in codes(registry.members("GRP-UBND-HUYEN", on=date(2025, 1, 1)))


def test_provincial_specialised_agencies_go_from_20_to_14_on_1_march_2025(registry):
    before = registry.members("GRP-CQCM", on=date(2025, 2, 28))
    after = registry.members("GRP-CQCM", on=date(2025, 3, 1))
    assert (len(before), len(after)) == (20, 14)
    assert codes(after) == {
        "VP-UBND", "SO-NV", "SO-TP", "SO-TC", "SO-CT", "SO-NNMT", "SO-XD", "SO-KHCN",
        "SO-VHTTDL", "SO-GDDT", "SO-YT", "THANH-TRA", "SO-NGV", "SO-DTTG",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("merged", "successor"),
    [
        ("SO-TTTT", "SO-KHCN"),
        ("SO-KHDT", "SO-TC"),
        ("SO-LDTBXH", "SO-NV"),
        ("SO-GTVT", "SO-XD"),
        ("SO-TNMT", "SO-NNMT"),
        ("SO-NNPTNT", "SO-NNMT"),
        ("BAN-DT", "SO-DTTG"),
        ("SO-VHTT", "SO-VHTTDL"),
        ("SO-DL", "SO-VHTTDL"),
    ],
)
def test_a_merged_departments_work_passes_to_its_successor_on_1_march(registry, merged, successor):
    assert codes(registry.resolve(merged, on=date(2025, 2, 28))) == {merged}
    assert codes(registry.resolve(merged, on=date(2025, 3, 1))) == {successor}
    assert registry.get(merged).successor_from == date(2025, 3, 1)


def test_an_item_of_the_information_department_on_10_march_resolves_to_science(registry):
    (agency,) = registry.resolve("SO-TTTT", on=date(2025, 3, 10))
    assert agency.code == "SO-KHCN"
    assert agency.name == "Sở Khoa học và Công nghệ tỉnh Nghệ An"


def test_successor_chain_and_multi_step_resolution(registry):
    assert [a.code for a in registry.successor_chain("TX-CUA-LO")] == ["TX-CUA-LO", "TP-VINH"]
    assert [a.code for a in registry.successor_chain("SO-KHCN")] == ["SO-KHCN"]
    assert codes(registry.resolve("TX-CUA-LO", on=date(2025, 3, 1))) == {"TP-VINH"}


def test_a_districts_work_passes_to_the_communes_on_its_territory_on_1_july(registry):
    assert registry.resolve("HUYEN-NAM-DAN", on=date(2025, 6, 30))[0].code == "HUYEN-NAM-DAN"
    nam_dan = registry.resolve("HUYEN-NAM-DAN", on=date(2025, 7, 1))
    assert {a.name for a in nam_dan} == {
        "UBND xã Nam Đàn", "UBND xã Vạn An", "UBND xã Đại Huệ", "UBND xã Thiên Nhẫn",
        "UBND xã Kim Liên",
    }  # fmt: skip
    # Cửa Lò went to Vinh on 1/12/2024, Vinh to its six wards on 1/7/2025.
    assert len(registry.resolve("TX-CUA-LO", on=date(2025, 7, 1))) == 6
    # Every commune and ward takes over from exactly one former district.
    heirs = [
        c for a in registry.members("GRP-UBND-HUYEN", on=date(2025, 6, 30)) for c in a.successors
    ]
    assert len(heirs) == len(set(heirs)) == 130


def test_nobody_answers_for_a_department_before_it_existed(registry):
    assert registry.resolve("SO-NNMT", on=date(2025, 2, 28)) == ()


def test_the_district_levels_duties_pass_to_the_communes_from_1_july(registry):
    june = registry.resolve("GRP-UBND-HUYEN", on=date(2025, 6, 30))
    july = registry.resolve("GRP-UBND-HUYEN", on=date(2025, 7, 1))
    assert len(june) == 20 and {a.kind for a in june} == {AgencyKind.DISTRICT}
    assert len(july) == 130 and {a.kind for a in july} == {AgencyKind.COMMUNE, AgencyKind.WARD}
    (succession,) = registry.group_successions
    assert succession.successors == ("GRP-UBND-XA",) and "successors" in succession.unconfirmed


@pytest.mark.parametrize(
    ("agency", "function", "day", "expected"),
    [
        ("SO-LDTBXH", "bao-tro-xa-hoi", date(2025, 3, 3), "SO-YT"),
        ("SO-LDTBXH", "giao-duc-nghe-nghiep", date(2025, 3, 3), "SO-GDDT"),
        ("SO-LDTBXH", None, date(2025, 3, 3), "SO-NV"),
        ("SO-LDTBXH", "bao-tro-xa-hoi", date(2025, 2, 26), "SO-LDTBXH"),
        ("SO-TTTT", "bao-chi-xuat-ban", date(2025, 3, 3), "SO-VHTTDL"),
        ("SO-TTTT", None, date(2025, 3, 3), "SO-KHCN"),
        # A function can leave an agency that carries on.
        ("SO-NV", "tin-nguong-ton-giao", date(2025, 3, 3), "SO-DTTG"),
        ("SO-NV", "tin-nguong-ton-giao", date(2025, 2, 28), "SO-NV"),
        ("SO-NV", "bao-tro-xa-hoi", date(2025, 3, 3), "SO-NV"),
    ],
)
def test_work_follows_its_function_not_the_building(registry, agency, function, day, expected):
    assert codes(registry.resolve(agency, on=day, function=function)) == {expected}


def test_a_groups_duty_stays_with_each_member_whatever_the_function(registry):
    members = codes(registry.resolve("GRP-SO-NGANH", date(2025, 3, 3), "tin-nguong-ton-giao"))
    assert {"SO-NV", "SO-DTTG"} <= members


def test_a_group_resolves_to_its_members_that_day(registry):
    assert registry.resolve("GRP-SO-NGANH", on=date(2025, 3, 10)) == registry.members(
        "GRP-SO-NGANH", on=date(2025, 3, 10)
    )
    assert "SO-TTTT" in codes(registry.resolve("GRP-SO-NGANH", on=date(2025, 2, 10)))
    assert "SO-TTTT" not in codes(registry.resolve("GRP-SO-NGANH", on=date(2025, 3, 10)))
    assert registry.resolve("GRP-BO-NGANH-TW", on=date(2025, 3, 10)) == ()


def test_active_on_filters_by_date(registry):
    active = codes(registry.active_on(date(2025, 3, 10)))
    assert {"SO-KHCN", "VP-UBND", "HUYEN-NAM-DAN", "UBND-TINH"} <= active
    assert not {"SO-TTTT", "XA-17329", "TX-CUA-LO"} & active


def test_every_internal_group_has_members_and_external_ones_none(registry):
    for group in registry.groups.values():
        members = registry.members(group.code)
        assert bool(members) != group.external, group.code


def test_shipped_registry_is_cited_and_uses_placeholder_emails(registry):
    for agency in registry.agencies.values():
        assert agency.source
        for email in (agency.email, agency.focal_email, agency.head_email):
            assert email is None or email.endswith("@example.gov.vn")
        if agency.unconfirmed:
            assert agency.note


def test_escalation_recipients_exist(registry):
    assert registry.get("UBND-TINH").head_email == "chu-tich.ubnd-tinh@example.gov.vn"
    assert registry.get("VP-UBND").kind is AgencyKind.PROVINCIAL_OFFICE
    assert registry.get("TT-PVHCC").kind is AgencyKind.ONE_STOP


def test_unknown_code_is_a_keyerror_naming_it(registry):
    with pytest.raises(KeyError, match="SO-KHONG-CO"):
        registry.get("SO-KHONG-CO")
    with pytest.raises(KeyError, match="GRP-KHONG-CO"):
        registry.members("GRP-KHONG-CO")


def test_registry_is_frozen(registry):
    with pytest.raises(dataclasses.FrozenInstanceError):
        registry.path = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        registry.agencies["NEW"] = registry.get("SO-TP")  # type: ignore[index]


# -------------------------------------------------------------------------- validation

GROUPS = """\
groups:
  - {code: GRP-A, label: Nhóm A, rule: mọi cơ quan, source: test}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agencies.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list:
    """The problems loading `path` raises; each must name the file and a line."""
    with pytest.raises(DataFileError) as info:
        load_registry(path)
    for problem in info.value.problems:
        assert problem.line > 0, problem
        assert str(problem).startswith(f"{path}, dòng {problem.line}: ")
    return info.value.problems


def test_every_problem_is_reported_at_once_with_file_and_line(tmp_path):
    path = write(
        tmp_path,
        GROUPS
        + """\
agencies:
  - code: SO-A
    name: Sở A
    kind: department
    groups: [GRP-A, GRP-KHONG-CO]
    email: so-a@example.gov.vn
    source: test
  - code: SO-A
    name: Sở A lần hai
    kind: department
    email: so-a2@example.gov.vn
    source: test
  - code: SO-B
    name: Sở B
    kind: department
    active_from: 2025-03-01
    active_to: 2025-01-31
    email: không-phải-email
    source: test
  - code: SO-C
    name: Sở C
    kind: department
    active_to: 2025-02-28
    successor: SO-MA
    successor_from: 2025-03-01
    email: so-c@example.gov.vn
    source: test
""",
    )
    problems = problems_of(path)
    by_line = {p.line: p.message for p in problems}
    assert "nhóm không biết 'GRP-KHONG-CO'" in by_line[7]
    assert "mã cơ quan 'SO-A' bị trùng (đã có ở dòng 4)" in by_line[10]
    assert "active_to (2025-01-31) trước active_from (2025-03-01)" in by_line[19]
    assert "email không hợp lệ 'không-phải-email'" in by_line[20]
    assert "cơ quan kế thừa 'SO-MA' không có trong danh bạ" in by_line[26]
    assert len(problems) == 5


def test_a_successor_cycle_is_reported(tmp_path):
    path = write(
        tmp_path,
        """\
agencies:
  - {code: SO-A, name: A, kind: department, email: a@example.gov.vn, source: t,
     active_to: 2025-02-28, successor: SO-B, successor_from: 2025-03-01}
  - {code: SO-B, name: B, kind: department, email: b@example.gov.vn, source: t,
     active_to: 2025-02-28, successor: SO-A, successor_from: 2025-03-01}
""",
    )
    messages = [p.message for p in problems_of(path)]
    assert "vòng lặp cơ quan kế thừa: SO-A → SO-B → SO-A" in messages
    assert sum("vòng lặp" in m for m in messages) == 1


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("{code: so-a, name: A, kind: department, email: a@example.gov.vn, source: t}",
         "mã cơ quan 'so-a' không hợp lệ"),
        ("{code: SO-A, name: A, kind: ministry, email: a@example.gov.vn, source: t}",
         "loại 'ministry' không hợp lệ"),
        ("{code: SO-A, name: A, kind: department, source: t}", "thiếu trường 'email'"),
        ("{code: SO-A, name: A, kind: department, email: a@example.gov.vn}",
         "thiếu trường 'source'"),
        ("{code: SO-A, name: A, kind: department, email: a@example.gov.vn, source: t,"
         " active_from: 2025-3-1}", "'active_from' phải là ngày dạng YYYY-MM-DD"),
        ("{code: SO-A, name: A, kind: department, email: a@example.gov.vn, source: t,"
         " sucessor: SO-B}", "trường không biết 'sucessor'"),
        ("{code: SO-A, name: A, kind: department, email: a@example.gov.vn, source: t,"
         " head_email: giam-doc}", "email không hợp lệ 'giam-doc'"),
        ("{code: SO-A, name: A, kind: department, email: a@example.gov.vn, source: t,"
         " active_to: 2025-02-28, successor: SO-A, successor_from: 2025-03-05}",
         "phải là ngày ngay sau active_to"),
        ("{code: SO-A, name: A, kind: department, email: a@example.gov.vn, source: t,"
         " unconfirmed: [source]}", "có 'unconfirmed' thì phải có 'note'"),
    ],
)  # fmt: skip
def test_one_bad_field(tmp_path, entry, expected):
    path = write(tmp_path, f"agencies:\n  - {entry}\n")
    problems = problems_of(path)
    assert any(expected in p.message and p.line == 2 for p in problems), problems


def test_successions_by_list_function_and_group_are_checked(tmp_path):
    path = write(
        tmp_path,
        GROUPS
        + """\
  - {code: GRP-B, label: Nhóm B, rule: r, source: t}
  - {code: GRP-NGOAI, label: Ngoài, rule: r, source: t, external: true}
group_successions:
  - {group: GRP-A, successors: [GRP-B], effective: 2025-07-01, source: t}
  - {group: GRP-B, successors: [GRP-A], effective: 2025-07-01, source: t}
  - {group: GRP-A, successors: [GRP-KHONG-CO, GRP-NGOAI], source: t}
agencies:
  - code: HUYEN-A
    name: A
    kind: district
    email: a@example.gov.vn
    source: t
    active_to: 2025-06-30
    successor: [XA-1, XA-KHONG-CO, XA-1]
    successor_from: 2025-07-01
  - code: SO-C
    name: C
    kind: department
    email: c@example.gov.vn
    source: t
    active_to: 2025-02-28
    successor: XA-1
    successor_from: 2025-03-01
    functions:
      - {code: Bao Tro, label: x, successor: SO-MA, source: t}
      - {code: y-te, label: Y tế, source: t}
  - code: SO-D
    name: D
    kind: department
    email: d@example.gov.vn
    source: t
    functions:
      - {code: ton-giao, label: Tôn giáo, successor: XA-1, source: t}
  - {code: XA-1, name: X, kind: commune, email: x@example.gov.vn, source: t,
     active_from: 2025-07-01}
""",
    )
    messages = {(p.line, p.message) for p in problems_of(path)}
    expected = [
        (6, "vòng lặp kế thừa nhóm: GRP-A → GRP-B → GRP-A"),
        (8, "kế thừa nhóm GRP-A: nhóm không biết 'GRP-KHONG-CO'"),
        (8, "kế thừa nhóm GRP-A: nhóm GRP-NGOAI ở ngoài danh bạ (external), không kế thừa"),
        (8, "kế thừa nhóm GRP-A: thiếu ngày 'effective'"),
        (16, "cơ quan HUYEN-A: 'successor' có mã lặp lại"),
        (16, "cơ quan HUYEN-A: cơ quan kế thừa 'XA-KHONG-CO' không có trong danh bạ"),
        (24, "cơ quan SO-C: cơ quan kế thừa XA-1 không hoạt động vào ngày 2025-03-01"),
        (
            27,
            "cơ quan SO-C, chức năng Bao Tro: mã chức năng chỉ gồm chữ thường không dấu, số và '-'",
        ),
        (28, "cơ quan SO-C, chức năng y-te: thiếu trường 'successor'"),
        (
            35,
            "cơ quan SO-D, chức năng ton-giao: cần ngày 'effective' "
            "(hoặc 'successor_from' của cơ quan)",
        ),
        (27, "cơ quan SO-C: cơ quan nhận chức năng Bao Tro 'SO-MA' không có trong danh bạ"),
    ]
    for problem in expected:
        assert problem in messages, (problem, sorted(messages))
    assert len(messages) == len(expected), sorted(messages)


def test_divisions_must_match_the_expected_count(tmp_path):
    shipped = (Path(__file__).parents[2] / "plans" / "agencies.yaml").read_text(encoding="utf-8")
    path = write(tmp_path, shipped.replace("expected_count: 130", "expected_count: 131"))
    (problem,) = problems_of(path)
    assert "gói vietnam-provinces cho 130 đơn vị, tệp chờ 131" in problem.message
    assert shipped.splitlines()[problem.line - 1].strip().startswith("expected_count:")


def test_a_missing_or_broken_file_is_a_data_error(tmp_path):
    with pytest.raises(DataFileError, match=r"khong-co\.yaml: không tìm thấy tệp"):
        load_registry(tmp_path / "khong-co.yaml")
    path = write(tmp_path, "agencies: [\n")
    assert "YAML không hợp lệ" in problems_of(path)[0].message
