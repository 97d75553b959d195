"""The agency registry: who an obligation is assigned to, on which dates, and who takes over.

The registry is data (`plans/agencies.yaml`); this module reads and validates it and answers
the questions the engine asks:

- `Registry.active_on(d)`: the agencies that exist on day `d`;
- `Registry.members(group, on=d)`: the agencies a collective name such as "Các Sở, ban,
  ngành cấp tỉnh" stands for on day `d`;
- `Registry.resolve(code, on=d, function=f)`: who is responsible on day `d` for work
  assigned to `code`: a dissolved agency's work passes to its successor(s), the work of a
  function that moved (social protection, press and publishing…) to the function's new
  holder, and a dissolved level's group (the district level after 30/6/2025) to the group
  that took over its duties (QĐ 384/QĐ-UBND, mục IV.1.b: no interruption).

Communes and wards are not typed into the YAML: its `divisions:` section tells the loader to
generate them from the `vietnam-provinces` package.

Pure: no database, no clock. A bad file raises `DataFileError` listing every problem, each
with file and line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

from deadlines.datafile import DataFileError, FieldReader, LineDict, load_yaml
from plans import PLANS_DIR

DEFAULT_REGISTRY_PATH = PLANS_DIR / "agencies.yaml"

_CODE_RE = re.compile(r"^[A-Z0-9]+(?:-[A-Z0-9]+)*$")
_GROUP_CODE_RE = re.compile(r"^GRP(?:-[A-Z0-9]+)+$")
FUNCTION_CODE_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
EMAIL_RE = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}$")


class AgencyKind(StrEnum):
    PROVINCIAL_OFFICE = "provincial_office"
    DEPARTMENT = "department"
    BOARD = "board"
    DISTRICT = "district"
    COMMUNE = "commune"
    WARD = "ward"
    ONE_STOP = "one_stop"
    OTHER = "other"


@dataclass(frozen=True)
class FunctionTransfer:
    """A function (lĩnh vực) of an agency whose work went to other agencies from a date,
    whether the agency was dissolved (the labour department's social protection went to
    Health) or carried on (Home Affairs' religious affairs went to Ethnic and Religious
    Affairs). Work of that function follows it, not the building."""

    code: str
    label: str
    successors: tuple[str, ...]
    effective: date
    source: str
    unconfirmed: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class Agency:
    """One body that can be assigned work. Dates are inclusive; None means open-ended.

    `successors`: who takes over its work from `successor_from` (one agency after a
    merger, the communes on its territory for a district); `functions`: the functions
    whose work went elsewhere.
    """

    code: str
    name: str
    kind: AgencyKind
    groups: tuple[str, ...]
    active_from: date | None
    active_to: date | None
    successors: tuple[str, ...]
    successor_from: date | None
    email: str
    source: str
    focal_email: str | None = None
    head_email: str | None = None
    unconfirmed: tuple[str, ...] = ()
    note: str | None = None
    functions: tuple[FunctionTransfer, ...] = ()

    @property
    def successor(self) -> str | None:
        """The single successor, or None (none, or several)."""
        return self.successors[0] if len(self.successors) == 1 else None

    def is_active_on(self, day: date) -> bool:
        return (self.active_from is None or self.active_from <= day) and (
            self.active_to is None or day <= self.active_to
        )

    def function(self, code: str | None, on: date) -> FunctionTransfer | None:
        """The transfer of function `code` in effect on `on`, if any."""
        if code is None:
            return None
        return next((f for f in self.functions if f.code == code and f.effective <= on), None)


@dataclass(frozen=True)
class Group:
    """A collective name used in a plan; its members are the agencies that list its code."""

    code: str
    label: str
    rule: str
    source: str
    external: bool = False
    unconfirmed: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class GroupSuccession:
    """From `effective`, the duties a plan gives to `group` pass to the members of
    `successors` (the district level's duties to the communes from 1/7/2025)."""

    group: str
    successors: tuple[str, ...]
    effective: date
    source: str
    unconfirmed: tuple[str, ...] = ()
    note: str | None = None


@dataclass(frozen=True)
class Registry:
    """The validated registry. Build it with `load_registry`."""

    path: str
    agencies: Mapping[str, Agency]
    groups: Mapping[str, Group]
    group_successions: tuple[GroupSuccession, ...] = ()

    def get(self, code: str) -> Agency:
        """The agency with this code; `KeyError` (with a Vietnamese message) if unknown."""
        try:
            return self.agencies[code]
        except KeyError:
            raise KeyError(f"không có cơ quan mã {code!r} trong danh bạ {self.path}") from None

    def group(self, code: str) -> Group:
        try:
            return self.groups[code]
        except KeyError:
            raise KeyError(f"không có nhóm mã {code!r} trong danh bạ {self.path}") from None

    def knows(self, code: str) -> bool:
        """True if `code` names an agency or a group of this registry."""
        return code in self.agencies or code in self.groups

    def is_group(self, code: str) -> bool:
        return code in self.groups

    def active_on(self, day: date) -> tuple[Agency, ...]:
        """Agencies that exist on `day`, in registry order."""
        return tuple(a for a in self.agencies.values() if a.is_active_on(day))

    def members(self, group_code: str, on: date | None = None) -> tuple[Agency, ...]:
        """Agencies of the group (active on `on`, or all of them when `on` is None)."""
        self.group(group_code)
        return tuple(
            a
            for a in self.agencies.values()
            if group_code in a.groups and (on is None or a.is_active_on(on))
        )

    def resolve(self, code: str, on: date, function: str | None = None) -> tuple[Agency, ...]:
        """The agencies responsible on `on` for work assigned to `code`.

        A group gives its members active that day, and, once a group succession is in
        effect, the members of the groups that took over its duties. An agency gives
        itself if active, else its successors (followed as far as needed). Work of a
        `function` that moved goes to that function's new holders instead. Empty when
        nobody is: the agency did not exist yet, or ended with no successor, or the group
        is outside the registry.
        """
        out: dict[str, Agency] = {}
        self._resolve(code, on, function, out, set())
        return tuple(out.values())

    def _resolve(
        self, code: str, on: date, function: str | None, out: dict, seen: set[str]
    ) -> None:
        if code in seen:  # the loader refuses cycles; this only guards the recursion
            return
        seen.add(code)
        if code in self.groups:
            # Each member owes a group's duty as itself: a function moved out of a
            # member does not take the member's share of a plan-wide duty with it.
            for agency in self.members(code, on=on):
                out.setdefault(agency.code, agency)
            for succession in self.group_successions:
                if succession.group == code and succession.effective <= on:
                    for successor in succession.successors:
                        self._resolve(successor, on, function, out, seen)
            return
        agency = self.get(code)
        moved = agency.function(function, on)
        if moved is not None:
            for successor in moved.successors:
                self._resolve(successor, on, function, out, seen)
            return
        if agency.is_active_on(on):
            out.setdefault(agency.code, agency)
            return
        if agency.successor_from is None or on < agency.successor_from:
            return
        for successor in agency.successors:
            self._resolve(successor, on, function, out, seen)

    def successor_chain(self, code: str) -> tuple[Agency, ...]:
        """The agency followed by its single successor, that one's, and so on (it stops
        at an agency with no successor or with several)."""
        chain = [self.get(code)]
        while chain[-1].successor is not None:
            chain.append(self.agencies[chain[-1].successor])
        return tuple(chain)

    def function_codes(self) -> dict[str, FunctionTransfer]:
        """Every function named in the registry, by code (the first entry of each)."""
        out: dict[str, FunctionTransfer] = {}
        for agency in self.agencies.values():
            for moved in agency.functions:
                out.setdefault(moved.code, moved)
        return out

    def change_dates(self, start: date, end: date) -> tuple[date, ...]:
        """The days between `start` and `end` (inclusive) on which who-answers-for-what
        can change: an agency starts or ends, a function or a group's duties move."""
        days = {start}
        for agency in self.agencies.values():
            if agency.active_from is not None:
                days.add(agency.active_from)
            if agency.active_to is not None:
                days.add(agency.active_to + timedelta(days=1))
            days.update(moved.effective for moved in agency.functions)
        days.update(s.effective for s in self.group_successions)
        return tuple(sorted(d for d in days if start <= d <= end))


def load_registry(path: str | Path | None = None) -> Registry:
    """Read and validate a registry file (default: the shipped `plans/agencies.yaml`)."""
    path = Path(path) if path is not None else DEFAULT_REGISTRY_PATH
    return _RegistryReader(str(path)).read(load_yaml(path))


# ------------------------------------------------------------------------------- reading

_TOP_KEYS = {"sources", "groups", "group_successions", "agencies", "divisions"}
_GROUP_SUCCESSION_KEYS = {"group", "successors", "effective", "source", "unconfirmed", "note"}
_FUNCTION_KEYS = {"code", "label", "successor", "effective", "source", "unconfirmed", "note"}
_GROUP_KEYS = {"code", "label", "rule", "source", "external", "unconfirmed", "note"}
_AGENCY_REQUIRED = ("code", "name", "kind", "email", "source")
_AGENCY_KEYS = {
    *_AGENCY_REQUIRED,
    "groups",
    "active_from",
    "active_to",
    "successor",
    "successor_from",
    "focal_email",
    "head_email",
    "unconfirmed",
    "note",
    "functions",
}
_DIVISION_REQUIRED = (
    "package",
    "province_code",
    "code_prefix",
    "name_template",
    "kinds",
    "email_template",
    "source",
)
_DIVISION_KEYS = {
    *_DIVISION_REQUIRED,
    "expected_count",
    "groups",
    "active_from",
    "active_to",
    "unconfirmed",
    "note",
}
_SUPPORTED_DIVISION_PACKAGES = ("vietnam-provinces",)


class _RegistryReader(FieldReader):
    """Validates the parsed YAML, collecting every problem before raising."""

    def __init__(self, path: str):
        super().__init__(path)
        self.agency_lines: dict[str, int] = {}
        self.successor_lines: dict[str, int] = {}
        self.function_lines: dict[tuple[str | None, str], int] = {}

    def read(self, data: Any) -> Registry:
        data = self._top_level(data, _TOP_KEYS, "agencies")

        groups = self._groups(data)
        agencies: dict[str, Agency] = {}
        for item in self._list(data, "agencies", required=True):
            agency = self._agency(item, groups)
            if agency is not None:
                self._add(agencies, agency, item.line)
        for block in self._list(data, "divisions", required=False):
            for agency in self._divisions(block, groups):
                self._add(agencies, agency, block.line)

        self._check_successors(agencies)
        successions = self._group_successions(data, groups)
        self.problems.raise_if_any()
        return Registry(
            self.path, MappingProxyType(agencies), MappingProxyType(groups), successions
        )

    # -- helpers ---------------------------------------------------------------------

    def _email(self, item: LineDict, key: str, what: str, *, required: bool) -> str | None:
        value = self._text(item, key, what, required=required)
        if value is not None and not EMAIL_RE.match(value):
            self.problems.add(item.line_of(key), f"{what}: địa chỉ email không hợp lệ {value!r}")
        return value

    def _code_list(self, item: LineDict, key: str, what: str) -> tuple[str, ...]:
        value = item.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.add(item.line_of(key), f"{what}: {key!r} phải là danh sách mã")
            return ()
        return tuple(value)

    def _one_or_more_codes(self, item: LineDict, key: str, what: str) -> tuple[str, ...]:
        """A field holding one code or a list of codes (`successor: SO-NV` or
        `successor: [XA-17329, XA-17380]`)."""
        value = item.get(key)
        if isinstance(value, str):
            return (value.strip(),) if value.strip() else ()
        codes = self._code_list(item, key, what)
        if item.get(key) == []:
            self.problems.add(item.line_of(key), f"{what}: {key!r} không được là danh sách rỗng")
        if len(set(codes)) != len(codes):
            self.problems.add(item.line_of(key), f"{what}: {key!r} có mã lặp lại")
        return codes

    def _unconfirmed(self, item: LineDict, allowed: set[str], what: str) -> tuple[str, ...]:
        fields = self._code_list(item, "unconfirmed", what)
        for name in fields:
            if name not in allowed:
                self.problems.add(
                    item.line_of("unconfirmed"),
                    f"{what}: 'unconfirmed' nêu trường không có {name!r}",
                )
        if fields and not item.get("note"):
            self.problems.add(
                item.line_of("unconfirmed"),
                f"{what}: có 'unconfirmed' thì phải có 'note' nói điều gì chưa xác nhận",
            )
        return fields

    def _group_refs(self, item: LineDict, groups: Mapping[str, Group], what: str) -> tuple:
        codes = self._code_list(item, "groups", what)
        for code in codes:
            if code not in groups:
                self.problems.add(item.line_of("groups"), f"{what}: nhóm không biết {code!r}")
        return codes

    def _add(self, agencies: dict[str, Agency], agency: Agency, line: int) -> None:
        if agency.code in agencies:
            self.problems.add(
                line,
                f"mã cơ quan {agency.code!r} bị trùng (đã có ở dòng "
                f"{self.agency_lines[agency.code]})",
            )
            return
        agencies[agency.code] = agency
        self.agency_lines[agency.code] = line

    # -- sections --------------------------------------------------------------------

    def _groups(self, data: LineDict) -> dict[str, Group]:
        groups: dict[str, Group] = {}
        lines: dict[str, int] = {}
        for item in self._list(data, "groups", required=False):
            code = self._text(item, "code", "nhóm", required=True)
            what = f"nhóm {code}" if code else "nhóm"
            self._unknown_keys(item, _GROUP_KEYS, what)
            label = self._text(item, "label", what, required=True)
            rule = self._text(item, "rule", what, required=True)
            source = self._text(item, "source", what, required=True)
            external = item.get("external", False)
            if not isinstance(external, bool):
                self.problems.add(
                    item.line_of("external"), f"{what}: 'external' phải là true/false"
                )
            unconfirmed = self._unconfirmed(item, _GROUP_KEYS, what)
            note = self._text(item, "note", what, required=False)
            if code is None:
                continue
            if not _GROUP_CODE_RE.match(code):
                self.problems.add(
                    item.line_of("code"),
                    f"mã nhóm {code!r} không hợp lệ: phải bắt đầu bằng 'GRP-', "
                    "chỉ gồm chữ in hoa không dấu, số và dấu '-'",
                )
            if code in groups:
                self.problems.add(
                    item.line, f"mã nhóm {code!r} bị trùng (đã có ở dòng {lines[code]})"
                )
                continue
            if label and rule and source:
                groups[code] = Group(
                    code=code,
                    label=label,
                    rule=rule,
                    source=source,
                    external=external is True,
                    unconfirmed=unconfirmed,
                    note=note,
                )
                lines[code] = item.line
        return groups

    def _agency(self, item: LineDict, groups: Mapping[str, Group]) -> Agency | None:
        code = self._text(item, "code", "cơ quan", required=True)
        what = f"cơ quan {code}" if code else "cơ quan"
        self._unknown_keys(item, _AGENCY_KEYS, what)
        if code is not None:
            if not _CODE_RE.match(code):
                self.problems.add(
                    item.line_of("code"),
                    f"mã cơ quan {code!r} không hợp lệ: chỉ gồm chữ in hoa không dấu, số và '-'",
                )
            if code in groups or _GROUP_CODE_RE.match(code):
                self.problems.add(
                    item.line_of("code"), f"mã cơ quan {code!r} trùng với mã (tiền tố) của nhóm"
                )
        name = self._text(item, "name", what, required=True)
        kind = self._kind(item, what)
        email = self._email(item, "email", what, required=True)
        focal_email = self._email(item, "focal_email", what, required=False)
        head_email = self._email(item, "head_email", what, required=False)
        source = self._text(item, "source", what, required=True)
        group_codes = self._group_refs(item, groups, what)
        active_from = self._date(item, "active_from", what)
        active_to = self._date(item, "active_to", what)
        successors = self._one_or_more_codes(item, "successor", what)
        successor_from = self._date(item, "successor_from", what)
        unconfirmed = self._unconfirmed(item, _AGENCY_KEYS, what)
        note = self._text(item, "note", what, required=False)
        functions = self._functions(item, code, what, successor_from)

        if active_from and active_to and active_to < active_from:
            self.problems.add(
                item.line_of("active_to"),
                f"{what}: active_to ({active_to}) trước active_from ({active_from})",
            )
        if successors:
            if active_to is None:
                self.problems.add(
                    item.line_of("successor"),
                    f"{what}: có cơ quan kế thừa thì phải có ngày kết thúc 'active_to'",
                )
            if successor_from is None:
                self.problems.add(
                    item.line_of("successor"),
                    f"{what}: có cơ quan kế thừa thì phải có ngày 'successor_from'",
                )
            elif active_to is not None and successor_from != active_to + timedelta(days=1):
                self.problems.add(
                    item.line_of("successor_from"),
                    f"{what}: successor_from ({successor_from}) phải là ngày ngay sau "
                    f"active_to ({active_to})",
                )
        elif successor_from is not None:
            self.problems.add(
                item.line_of("successor_from"),
                f"{what}: có 'successor_from' mà không có 'successor'",
            )

        if None in (code, name, kind, email, source):
            return None
        self.successor_lines[code] = item.line_of("successor")
        return Agency(
            code=code,
            name=name,
            kind=kind,
            groups=group_codes,
            active_from=active_from,
            active_to=active_to,
            successors=successors,
            successor_from=successor_from,
            email=email,
            source=source,
            focal_email=focal_email,
            head_email=head_email,
            unconfirmed=unconfirmed,
            note=note,
            functions=functions,
        )

    def _functions(
        self, item: LineDict, agency: str | None, what: str, successor_from: date | None
    ) -> tuple[FunctionTransfer, ...]:
        out: list[FunctionTransfer] = []
        for entry in self._list(item, "functions", required=False):
            code = self._text(entry, "code", f"{what}, chức năng", required=True)
            where = f"{what}, chức năng {code}" if code else f"{what}, chức năng"
            self._unknown_keys(entry, _FUNCTION_KEYS, where)
            if code is not None and not FUNCTION_CODE_RE.match(code):
                self.problems.add(
                    entry.line_of("code"),
                    f"{where}: mã chức năng chỉ gồm chữ thường không dấu, số và '-'",
                )
            if code is not None and any(f.code == code for f in out):
                self.problems.add(entry.line_of("code"), f"{where}: mã chức năng bị trùng")
            label = self._text(entry, "label", where, required=True)
            source = self._text(entry, "source", where, required=True)
            successors = self._one_or_more_codes(entry, "successor", where)
            if entry.get("successor") is None:
                self.problems.add(entry.line, f"{where}: thiếu trường 'successor'")
            effective = self._date(entry, "effective", where) or successor_from
            if effective is None:
                self.problems.add(
                    entry.line,
                    f"{where}: cần ngày 'effective' (hoặc 'successor_from' của cơ quan)",
                )
            unconfirmed = self._unconfirmed(entry, _FUNCTION_KEYS, where)
            note = self._text(entry, "note", where, required=False)
            if None in (code, label, source, effective) or not successors:
                continue
            self.function_lines[(agency, code)] = entry.line_of("successor")
            out.append(
                FunctionTransfer(code, label, successors, effective, source, unconfirmed, note)
            )
        return tuple(out)

    def _group_successions(
        self, data: LineDict, groups: Mapping[str, Group]
    ) -> tuple[GroupSuccession, ...]:
        out: list[GroupSuccession] = []
        lines: dict[str, int] = {}
        for item in self._list(data, "group_successions", required=False):
            code = self._text(item, "group", "kế thừa nhóm", required=True)
            what = f"kế thừa nhóm {code}" if code else "kế thừa nhóm"
            self._unknown_keys(item, _GROUP_SUCCESSION_KEYS, what)
            successors = self._one_or_more_codes(item, "successors", what)
            if item.get("successors") is None:
                self.problems.add(item.line, f"{what}: thiếu trường 'successors'")
            for ref in (code, *successors):
                if ref is None:
                    continue
                if ref not in groups:
                    self.problems.add(item.line, f"{what}: nhóm không biết {ref!r}")
                elif groups[ref].external:
                    self.problems.add(
                        item.line, f"{what}: nhóm {ref} ở ngoài danh bạ (external), không kế thừa"
                    )
            if code is not None and code in successors:
                self.problems.add(item.line_of("successors"), f"{what}: nhóm tự kế thừa chính nó")
            effective = self._date(item, "effective", what)
            if item.get("effective") is None:
                self.problems.add(item.line, f"{what}: thiếu ngày 'effective'")
            source = self._text(item, "source", what, required=True)
            unconfirmed = self._unconfirmed(item, _GROUP_SUCCESSION_KEYS, what)
            note = self._text(item, "note", what, required=False)
            if None in (code, effective, source) or not successors:
                continue
            out.append(GroupSuccession(code, successors, effective, source, unconfirmed, note))
            lines.setdefault(code, item.line)
        graph: dict[str, tuple[str, ...]] = {}
        for succession in out:
            graph[succession.group] = graph.get(succession.group, ()) + succession.successors
        for cycle in _cycles(graph):
            self.problems.add(
                lines[cycle[0]], "vòng lặp kế thừa nhóm: " + " → ".join([*cycle, cycle[0]])
            )
        return tuple(out)

    def _kind(self, item: LineDict, what: str) -> AgencyKind | None:
        value = item.get("kind")
        if value is None:
            self.problems.add(item.line, f"{what}: thiếu trường 'kind'")
            return None
        try:
            return AgencyKind(value)
        except ValueError:
            self.problems.add(
                item.line_of("kind"),
                f"{what}: loại {value!r} không hợp lệ (chỉ dùng: "
                f"{', '.join(k.value for k in AgencyKind)})",
            )
            return None

    def _divisions(self, block: LineDict, groups: Mapping[str, Group]) -> list[Agency]:
        what = "divisions"
        self._unknown_keys(block, _DIVISION_KEYS, what)
        missing = [k for k in _DIVISION_REQUIRED if block.get(k) is None]
        for key in missing:
            self.problems.add(block.line, f"{what}: thiếu trường {key!r}")
        group_codes = self._group_refs(block, groups, what)
        active_from = self._date(block, "active_from", what)
        active_to = self._date(block, "active_to", what)
        unconfirmed = self._unconfirmed(block, _DIVISION_KEYS, what)
        note = self._text(block, "note", what, required=False)
        if missing:
            return []
        if block["package"] not in _SUPPORTED_DIVISION_PACKAGES:
            self.problems.add(
                block.line_of("package"),
                f"{what}: gói {block['package']!r} không được hỗ trợ "
                f"(chỉ: {', '.join(_SUPPORTED_DIVISION_PACKAGES)})",
            )
            return []
        if not isinstance(block["kinds"], dict):
            self.problems.add(
                block.line_of("kinds"), f"{what}: 'kinds' phải là bảng kiểu đơn vị → loại"
            )
            return []
        kinds: dict[str, AgencyKind] = {}
        for type_name, kind in block["kinds"].items():
            try:
                kinds[type_name] = AgencyKind(kind)
            except ValueError:
                self.problems.add(block.line_of("kinds"), f"{what}: loại {kind!r} không hợp lệ")

        wards = _package_wards(block["province_code"])
        if not wards:
            self.problems.add(
                block.line_of("province_code"),
                f"{what}: gói vietnam-provinces không có đơn vị nào của tỉnh mã "
                f"{block['province_code']!r}",
            )
            return []
        expected = block.get("expected_count")
        if expected is not None and expected != len(wards):
            self.problems.add(
                block.line_of("expected_count"),
                f"{what}: gói vietnam-provinces cho {len(wards)} đơn vị, tệp chờ {expected}",
            )

        agencies = []
        for ward in wards:
            kind = kinds.get(ward.type_name)
            if kind is None:
                self.problems.add(
                    block.line_of("kinds"),
                    f"{what}: chưa khai báo loại cho đơn vị kiểu {ward.type_name!r} ({ward.name})",
                )
                continue
            code = f"{block['code_prefix']}{ward.code}"
            if not _CODE_RE.match(code):
                self.problems.add(
                    block.line_of("code_prefix"), f"{what}: mã sinh ra không hợp lệ {code!r}"
                )
                return []
            fields = {"name": ward.name, "type": ward.type_name, "short": ward.short_name}
            try:
                name = block["name_template"].format(**fields)
                email = block["email_template"].format(code=code.lower())
            except (KeyError, IndexError, ValueError) as exc:
                self.problems.add(block.line, f"{what}: mẫu tên hoặc email hỏng: {exc}")
                return []
            if not EMAIL_RE.match(email):
                self.problems.add(
                    block.line_of("email_template"), f"{what}: email sinh ra không hợp lệ {email!r}"
                )
                return []
            agencies.append(
                Agency(
                    code=code,
                    name=name,
                    kind=kind,
                    groups=group_codes,
                    active_from=active_from,
                    active_to=active_to,
                    successors=(),
                    successor_from=None,
                    email=email,
                    source=str(block["source"]).strip(),
                    unconfirmed=unconfirmed,
                    note=note,
                )
            )
        return agencies

    def _check_successors(self, agencies: Mapping[str, Agency]) -> None:
        for agency in agencies.values():
            line = self.successor_lines.get(agency.code, self.agency_lines[agency.code])
            self._check_targets(
                agencies,
                agency.code,
                agency.successors,
                agency.successor_from,
                line,
                "cơ quan kế thừa",
            )
            for moved in agency.functions:
                self._check_targets(
                    agencies,
                    agency.code,
                    moved.successors,
                    moved.effective,
                    self.function_lines.get((agency.code, moved.code), line),
                    f"cơ quan nhận chức năng {moved.code}",
                )
        graph = {code: a.successors for code, a in agencies.items()}
        for cycle in _cycles(graph):
            self.problems.add(
                self.agency_lines[cycle[0]],
                "vòng lặp cơ quan kế thừa: " + " → ".join([*cycle, cycle[0]]),
            )

    def _check_targets(self, agencies, code, targets, day, line, role) -> None:
        for target in targets:
            successor = agencies.get(target)
            if successor is None:
                self.problems.add(line, f"cơ quan {code}: {role} {target!r} không có trong danh bạ")
            elif day and not successor.is_active_on(day):
                self.problems.add(
                    line,
                    f"cơ quan {code}: {role} {successor.code} không hoạt động vào ngày {day}",
                )


def _cycles(graph: Mapping[str, tuple[str, ...]]) -> list[list[str]]:
    """Each cycle of a successor graph once, starting from its node that comes first."""
    order = {code: i for i, code in enumerate(graph)}
    cycles: list[list[str]] = []
    seen_cycles: set[frozenset[str]] = set()
    done: set[str] = set()

    def visit(code: str, path: list[str]) -> None:
        if code in path:
            cycle = path[path.index(code) :]
            if frozenset(cycle) not in seen_cycles:
                seen_cycles.add(frozenset(cycle))
                first = min(range(len(cycle)), key=lambda i: order.get(cycle[i], 0))
                cycles.append(cycle[first:] + cycle[:first])
            return
        if code in done or code not in graph:
            return
        path.append(code)
        for nxt in graph[code]:
            visit(nxt, path)
        path.pop()
        done.add(code)

    for start in graph:
        visit(start, [])
    return cycles


@dataclass(frozen=True)
class _PackageWard:
    code: int
    name: str
    type_name: str

    @property
    def short_name(self) -> str:
        prefix = self.type_name + " "
        return self.name[len(prefix) :] if self.name.lower().startswith(prefix) else self.name


def _package_wards(province_code: Any) -> list[_PackageWard]:
    """The province's communes and wards from `vietnam-provinces`, ordered by code."""
    from vietnam_provinces import ProvinceCode, Ward

    try:
        code = ProvinceCode(int(province_code))
    except (TypeError, ValueError):
        return []
    return sorted(
        (
            _PackageWard(int(w.code), w.name, w.division_type.value)
            for w in Ward.iter_by_province(code)
        ),
        key=lambda w: w.code,
    )


__all__ = [
    "DEFAULT_REGISTRY_PATH",
    "Agency",
    "AgencyKind",
    "DataFileError",
    "FunctionTransfer",
    "Group",
    "GroupSuccession",
    "Registry",
    "load_registry",
]
