"""The agency registry: who an obligation is assigned to, on which dates, and who takes over.

The registry is data (`plans/agencies.yaml`); this module reads and validates it and answers
the questions the engine asks:

- `Registry.active_on(d)`: the agencies that exist on day `d`;
- `Registry.members(group, on=d)`: the agencies a collective name such as "Các Sở, ban,
  ngành cấp tỉnh" stands for on day `d`;
- `Registry.resolve(code, on=d)`: who is responsible on day `d` for an item assigned to
  `code`: a dissolved agency's work passes to its successor (QĐ 384/QĐ-UBND, mục IV.1.b).

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
class Agency:
    """One body that can be assigned work. Dates are inclusive; None means open-ended."""

    code: str
    name: str
    kind: AgencyKind
    groups: tuple[str, ...]
    active_from: date | None
    active_to: date | None
    successor: str | None
    successor_from: date | None
    email: str
    source: str
    focal_email: str | None = None
    head_email: str | None = None
    unconfirmed: tuple[str, ...] = ()
    note: str | None = None

    def is_active_on(self, day: date) -> bool:
        return (self.active_from is None or self.active_from <= day) and (
            self.active_to is None or day <= self.active_to
        )


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
class Registry:
    """The validated registry. Build it with `load_registry`."""

    path: str
    agencies: Mapping[str, Agency]
    groups: Mapping[str, Group]

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

    def resolve(self, code: str, on: date) -> tuple[Agency, ...]:
        """The agencies responsible on `on` for work assigned to `code`.

        A group gives its members active that day. An agency gives itself if active,
        else its successor (followed as far as needed). Empty when nobody is: the
        agency did not exist yet, or was dissolved without a single successor (the
        district level after 30/6/2025), or the group is outside the registry.
        """
        if code in self.groups:
            return self.members(code, on=on)
        agency = self.get(code)
        while not agency.is_active_on(on):
            if agency.successor is None or agency.successor_from is None:
                return ()
            if on < agency.successor_from:
                return ()
            agency = self.agencies[agency.successor]
        return (agency,)

    def successor_chain(self, code: str) -> tuple[Agency, ...]:
        """The agency followed by its successor, that one's successor, and so on."""
        chain = [self.get(code)]
        while chain[-1].successor is not None:
            chain.append(self.agencies[chain[-1].successor])
        return tuple(chain)


def load_registry(path: str | Path | None = None) -> Registry:
    """Read and validate a registry file (default: the shipped `plans/agencies.yaml`)."""
    path = Path(path) if path is not None else DEFAULT_REGISTRY_PATH
    return _RegistryReader(str(path)).read(load_yaml(path))


# ------------------------------------------------------------------------------- reading

_TOP_KEYS = {"sources", "groups", "agencies", "divisions"}
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
        self.problems.raise_if_any()
        return Registry(self.path, MappingProxyType(agencies), MappingProxyType(groups))

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
        successor = self._text(item, "successor", what, required=False)
        successor_from = self._date(item, "successor_from", what)
        unconfirmed = self._unconfirmed(item, _AGENCY_KEYS, what)
        note = self._text(item, "note", what, required=False)

        if active_from and active_to and active_to < active_from:
            self.problems.add(
                item.line_of("active_to"),
                f"{what}: active_to ({active_to}) trước active_from ({active_from})",
            )
        if successor is not None:
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
            successor=successor,
            successor_from=successor_from,
            email=email,
            source=source,
            focal_email=focal_email,
            head_email=head_email,
            unconfirmed=unconfirmed,
            note=note,
        )

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
                    successor=None,
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
            if agency.successor is None:
                continue
            line = self.successor_lines.get(agency.code, self.agency_lines[agency.code])
            successor = agencies.get(agency.successor)
            if successor is None:
                self.problems.add(
                    line,
                    f"cơ quan {agency.code}: cơ quan kế thừa {agency.successor!r} không có "
                    "trong danh bạ",
                )
            elif agency.successor_from and not successor.is_active_on(agency.successor_from):
                self.problems.add(
                    line,
                    f"cơ quan {agency.code}: cơ quan kế thừa {successor.code} không hoạt động "
                    f"vào ngày {agency.successor_from}",
                )
        for cycle in _successor_cycles(agencies):
            self.problems.add(
                self.agency_lines[cycle[0]],
                "vòng lặp cơ quan kế thừa: " + " → ".join([*cycle, cycle[0]]),
            )


def _successor_cycles(agencies: Mapping[str, Agency]) -> list[list[str]]:
    """Each successor cycle once, starting from its agency that comes first in the file."""
    order = {code: i for i, code in enumerate(agencies)}
    cycles: list[list[str]] = []
    done: set[str] = set()
    for start in agencies:
        path: list[str] = []
        code: str | None = start
        while code in agencies and code not in done and code not in path:
            path.append(code)
            code = agencies[code].successor
        if code in path:
            cycle = path[path.index(code) :]
            first = min(range(len(cycle)), key=lambda i: order[cycle[i]])
            cycles.append(cycle[first:] + cycle[:first])
        done.update(path)
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
    "Group",
    "Registry",
    "load_registry",
]
