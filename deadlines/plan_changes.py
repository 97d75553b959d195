"""What a new version of a plan changes: the duties it adds, changes (and how) and drops.

A province reissues or amends a plan (a decision "sửa đổi, bổ sung" the appendix); loading
the new version must say what changed before anyone wonders why reminders moved. Pure:
two sets of duty snapshots in, the changes out; the shell (`flows/plan_loading.py`) takes the old
snapshots from the store and works out what the changes do to open items.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from deadlines.plan import Obligation

# What is compared, in the order a report lists it, with its Vietnamese name.
FIELDS = {
    "section": "mục",
    "title": "tiêu đề",
    "content": "nội dung",
    "timing": "thời hạn",
    "rule": "quy tắc tính hạn",
    "lead": "cơ quan chủ trì",
    "coordinating": "cơ quan phối hợp",
}
# The fields whose change moves or cancels items (the others only reword them).
TIMING_FIELDS = ("timing", "rule")
LEAD_FIELDS = ("lead",)


@dataclass(frozen=True)
class Duty:
    """One duty (nhiệm vụ) as far as its items are concerned."""

    number: str
    section: str
    title: str
    content: str
    timing: str
    rule: dict[str, Any]
    lead: tuple[str, ...]
    coordinating: tuple[str, ...]

    @classmethod
    def of(cls, ob: Obligation) -> Duty:
        return cls(
            number=ob.number,
            section=ob.section,
            title=ob.title,
            content=ob.content,
            timing=ob.timing,
            rule=ob.rule.to_dict(),
            lead=tuple(ob.lead),
            coordinating=tuple(ob.coordinating),
        )


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: str
    new: str

    @property
    def label(self) -> str:
        return FIELDS[self.field]


@dataclass(frozen=True)
class DutyChange:
    number: str
    title: str
    fields: tuple[FieldChange, ...]

    def changed(self, *names: str) -> bool:
        return any(f.field in names for f in self.fields)


@dataclass(frozen=True)
class PlanChanges:
    added: tuple[Duty, ...]
    changed: tuple[DutyChange, ...]
    removed: tuple[Duty, ...]
    unchanged: int

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def compare(old: Iterable[Duty], new: Iterable[Duty]) -> PlanChanges:
    """The changes from the duties `old` to the duties `new`, matched by number (the
    plan's own numbering: a renumbered row is a removed duty and an added one)."""
    before = {d.number: d for d in old}
    after = {d.number: d for d in new}
    changed, unchanged = [], 0
    for number, duty in after.items():
        previous = before.get(number)
        if previous is None:
            continue
        fields = tuple(
            FieldChange(name, _shown(getattr(previous, name)), _shown(getattr(duty, name)))
            for name in FIELDS
            if getattr(previous, name) != getattr(duty, name)
        )
        if fields:
            changed.append(DutyChange(number, duty.title, fields))
        else:
            unchanged += 1
    return PlanChanges(
        added=tuple(d for n, d in after.items() if n not in before),
        changed=tuple(changed),
        removed=tuple(d for n, d in before.items() if n not in after),
        unchanged=unchanged,
    )


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return " ".join(str(value).split())
