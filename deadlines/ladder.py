"""The escalation ladder (thang đôn đốc): which step an item has reached on a given day.

Pure: a function of (ladder, calendar, due dates, today). The ladder itself is data
(`plans/ladder.yaml`): steps at offsets in working days from the due date, each with
recipients by role and a template name.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from deadlines.agencies import Registry
from deadlines.calendar import WorkCalendar
from deadlines.datafile import LineDict, ProblemList, load_yaml

DEFAULT_LADDER = Path(__file__).resolve().parent.parent / "plans" / "ladder.yaml"
ROLES = ("focal", "head", "provincial_office", "office_chief", "chairman")
TEMPLATES = ("reminder", "escalation")


@dataclass(frozen=True)
class RoleAddress:
    """How a role becomes an address: the responsible agency's, or a fixed agency's."""

    agency: str | None  # None: the item's responsible agency
    address: str  # email | focal | head


@dataclass(frozen=True)
class Step:
    code: str
    name: str
    offset: int  # working days from the due date (negative: before)
    to: tuple[str, ...]
    cc: tuple[str, ...]
    template: str
    rank: int  # position on the ladder, 0 = first

    @property
    def overdue(self) -> bool:
        return self.offset > 0


@dataclass(frozen=True)
class Ladder:
    steps: tuple[Step, ...]
    roles: dict[str, RoleAddress]
    source: str

    def step(self, code: str) -> Step:
        for s in self.steps:
            if s.code == code:
                return s
        raise KeyError(code)

    def step_date(self, cal: WorkCalendar, due: date, step: Step) -> date:
        """The working day on which `step` falls for an item due on `due`."""
        return due if step.offset == 0 else cal.add_working_days(due, step.offset)

    def reached(self, cal: WorkCalendar, due: date, today: date) -> list[Step]:
        """Every step reached by `today` (steps are ordered, so this is a prefix)."""
        return [s for s in self.steps if self.step_date(cal, due, s) <= today]

    def highest_reached(self, cal: WorkCalendar, dues: np.ndarray, today: date) -> np.ndarray:
        """For each due date, the rank of the highest step reached by `today`, or -1.

        Vectorised over an array of `datetime64[D]`: one calendar call per step.
        """
        dues = np.asarray(dues, dtype="datetime64[D]")
        highest = np.full(dues.shape, -1, dtype=np.int64)
        if dues.size == 0:
            return highest
        today64 = np.datetime64(today, "D")
        for step in self.steps:
            dates = dues if step.offset == 0 else cal.add_working_days_many(dues, step.offset)
            highest[dates <= today64] = step.rank
        return highest

    @property
    def earliest_offset(self) -> int:
        return min(s.offset for s in self.steps)


def _roles(raw: LineDict, key: str, problems: ProblemList) -> tuple[str, ...]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.add(raw.line_of(key), f"'{key}' phải là danh sách vai trò, ví dụ [focal, head].")
        return ()
    return tuple(value)


def load_ladder(path: str | Path | None = None) -> Ladder:
    """Read and validate a ladder file; every problem is reported with its line."""
    path = Path(path or DEFAULT_LADDER)
    data = load_yaml(path)
    problems = ProblemList(str(path))
    if not isinstance(data, LineDict):
        problems.add(0, "tệp thang đôn đốc phải là một bảng có 'steps' và 'roles'.")
        problems.raise_if_any()
    roles: dict[str, RoleAddress] = {}
    raw_roles = data.get("roles")
    if not isinstance(raw_roles, LineDict):
        problems.add(data.line_of("roles"), "thiếu bảng 'roles'.")
        raw_roles = LineDict()
        raw_roles.key_lines = {}
    for role, spec in raw_roles.items():
        if role not in ROLES:
            problems.add(raw_roles.line_of(role), f"vai trò không hợp lệ '{role}'.")
            continue
        if not isinstance(spec, dict) or spec.get("address") not in ("email", "focal", "head"):
            problems.add(
                raw_roles.line_of(role),
                f"vai trò '{role}' cần 'address' là email, focal hoặc head.",
            )
            continue
        agency = spec.get("agency")
        roles[role] = RoleAddress(str(agency) if agency else None, spec["address"])
    steps: list[Step] = []
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        problems.add(data.line_of("steps"), "'steps' phải là danh sách bậc không rỗng.")
        raw_steps = []
    seen: set[str] = set()
    for raw in raw_steps:
        if not isinstance(raw, LineDict):
            problems.add(data.line_of("steps"), f"mỗi bậc phải là một bảng: {raw!r}.")
            continue
        code, offset = raw.get("code"), raw.get("offset")
        if not isinstance(code, str) or not code:
            problems.add(raw.line, "bậc thiếu 'code'.")
        elif code in seen:
            problems.add(raw.line_of("code"), f"mã bậc '{code}' bị trùng.")
        seen.add(str(code))
        if not isinstance(offset, int) or isinstance(offset, bool):
            problems.add(raw.line_of("offset"), f"'offset' phải là số nguyên: {offset!r}.")
            offset = 0
        if steps and offset <= steps[-1].offset:
            problems.add(raw.line_of("offset"), "các bậc phải xếp theo 'offset' tăng dần.")
        to, cc = _roles(raw, "to", problems), _roles(raw, "cc", problems)
        if not to:
            problems.add(raw.line_of("to"), f"bậc '{code}' thiếu người nhận 'to'.")
        for role in to + cc:
            if role not in roles:
                problems.add(raw.line_of("to"), f"vai trò '{role}' chưa khai trong 'roles'.")
        template = raw.get("template")
        if template not in TEMPLATES:
            problems.add(
                raw.line_of("template"),
                f"'template' phải là một trong {', '.join(TEMPLATES)}: {template!r}.",
            )
        steps.append(
            Step(
                code=str(code),
                name=str(raw.get("name") or code),
                offset=offset,
                to=to,
                cc=cc,
                template=str(template),
                rank=len(steps),
            )
        )
    problems.raise_if_any()
    return Ladder(tuple(steps), roles, str(data.get("source", "")))


def role_address(
    ladder: Ladder, registry: Registry, role: str, agency_code: str
) -> tuple[str, str] | None:
    """(address, display name) of a ladder role for an item of `agency_code`."""
    spec = ladder.roles[role]
    agency = registry.agencies.get(spec.agency or agency_code)
    if agency is None:
        return None
    address = {
        "email": agency.email,
        "focal": agency.focal_email or agency.email,
        "head": agency.head_email or agency.email,
    }[spec.address]
    if not address:
        return None
    label = {
        "focal": "Cán bộ đầu mối KSTTHC",
        "head": "Thủ trưởng",
        "provincial_office": "Phòng Kiểm soát TTHC",
        "office_chief": "Chánh Văn phòng",
        "chairman": "Chủ tịch",
    }[role]
    return address, f"{label} — {agency.name}"
