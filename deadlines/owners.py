"""Who owes each obligation of a plan, and when that changes.

A plan names its leads by agency or group ("Các Sở, ban, ngành cấp tỉnh", "UBND cấp
huyện"); the registry says who that is on a given day, through mergers, split functions
and the end of the district level. This module answers, for `dunghan plan check` and
`dunghan agencies --on`:

- `owners_on(plan, registry, ob, day)`: the agencies that owe `ob` on `day`;
- `owner_changes(plan, registry, ob)`: the owners from the plan's start, and again on
  every day of the plan year on which they change;
- `obligations_owed(plan, registry, code, day)`: what an agency owes on `day`;
- `unconfirmed_facts(plan, registry, ob)`: the facts marked `unconfirmed` that an
  obligation's owners or due dates rest on, so an admin sees what to confirm.

Pure: no database, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from deadlines.agencies import Agency, Registry
from deadlines.plan import Obligation, Plan, rule_parts
from deadlines.rules import FREQ_VI, Recurring


def owners_on(
    plan: Plan, registry: Registry, ob: Obligation, day: date, role: str = "lead"
) -> tuple[Agency, ...]:
    """The agencies that owe `ob` on `day` (as lead, or as coordinators with
    role="coordinating"), each once, in registry order."""
    found: dict[str, Agency] = {}
    for code in _codes(ob, role):
        for agency in registry.resolve(code, on=day, function=ob.function):
            found.setdefault(agency.code, agency)
    order = {code: i for i, code in enumerate(registry.agencies)}
    return tuple(sorted(found.values(), key=lambda a: order[a.code]))


@dataclass(frozen=True)
class OwnerShare:
    """The part of an obligation's owners that one lead code stands for on a day."""

    code: str  # the lead code as the plan writes it
    label: str  # the group's label or the agency's name
    agencies: tuple[Agency, ...]  # who answers for it that day
    through: tuple[str, ...] = ()  # labels of the successors it passed to, if any


def _codes(ob: Obligation, role: str) -> tuple[str, ...]:
    return ob.lead if role == "lead" else ob.coordinating


def owner_shares(
    plan: Plan, registry: Registry, ob: Obligation, day: date, role: str = "lead"
) -> list[OwnerShare]:
    """`owners_on`, code by code, with the successions each went through."""
    shares = []
    for code in _codes(ob, role):
        agencies = registry.resolve(code, on=day, function=ob.function)
        if registry.is_group(code):
            group = registry.group(code)
            own = {a.code for a in registry.members(code, on=day)}
            through = tuple(
                registry.group(s).label
                for succession in registry.group_successions
                if succession.group == code and succession.effective <= day
                for s in succession.successors
            )
            if not through and own != {a.code for a in agencies}:
                through = ("cơ quan kế thừa",)
            shares.append(OwnerShare(code, group.label, agencies, through))
        else:
            agency = registry.get(code)
            moved = tuple(a.name for a in agencies if a.code != code)
            shares.append(OwnerShare(code, agency.name, agencies, moved))
    return shares


def owner_changes(
    plan: Plan, registry: Registry, ob: Obligation, role: str = "lead"
) -> list[tuple[date, list[OwnerShare]]]:
    """The owners of `ob` from the plan's start, then on each day of the plan year when
    they change (a merger, a function moving, the end of the district level)."""
    end = date(plan.meta.year, 12, 31)
    out: list[tuple[date, list[OwnerShare]]] = []
    previous: tuple[str, ...] | None = None
    for day in registry.change_dates(plan.start, end):
        codes = tuple(a.code for a in owners_on(plan, registry, ob, day, role))
        if codes != previous:
            out.append((day, owner_shares(plan, registry, ob, day, role)))
            previous = codes
    return out


def obligations_owed(
    plan: Plan, registry: Registry, agency_code: str, day: date
) -> list[Obligation]:
    """The obligations `agency_code` owes as lead on `day` (a duty written twice, once)."""
    return [
        ob
        for ob in plan.obligations
        if plan.owes_items(ob)
        and agency_code in {a.code for a in owners_on(plan, registry, ob, day)}
    ]


def unconfirmed_facts(plan: Plan, registry: Registry, ob: Obligation) -> list[str]:
    """The unconfirmed facts (with the fields concerned) that `ob` rests on, in Vietnamese."""
    facts: list[str] = []

    def add(text: str, fields: tuple[str, ...]) -> None:
        if fields:
            line = f"{text}: {', '.join(fields)}"
            if line not in facts:
                facts.append(line)

    end = date(plan.meta.year, 12, 31)
    for code in ob.lead:
        if registry.is_group(code):
            group = registry.group(code)
            add(f"nhóm {group.label} ({code})", group.unconfirmed)
            for succession in registry.group_successions:
                if succession.group == code and plan.start <= succession.effective <= end:
                    targets = ", ".join(succession.successors)
                    add(f"kế thừa nhóm {code} → {targets}", succession.unconfirmed)
                    for target in succession.successors:
                        group = registry.group(target)
                        add(f"nhóm {group.label} ({target})", group.unconfirmed)
        else:
            agency = registry.get(code)
            add(f"{agency.name} ({code})", agency.unconfirmed)
    if ob.function is not None:
        for code in (*ob.lead, *ob.coordinating):
            if registry.is_group(code):
                continue
            moved = registry.get(code).function(ob.function, end)
            if moved is not None:
                add(f"chức năng {moved.label} của {code}", moved.unconfirmed)
        if ob.note:
            facts.append(f"cách đọc của nhiệm vụ: {ob.note}")
    for part in rule_parts(ob.rule):
        if isinstance(part, Recurring):
            period = plan.reporting.get(part.freq)
            if period is not None:
                add(f"chế độ báo cáo {FREQ_VI[part.freq]} ({period.source})", period.unconfirmed)
    return facts


def default_due_rows(plan: Plan) -> list[tuple[Obligation, list[str]]]:
    """The obligations falling due on the last working day of their period because the
    reporting regime's sending day is not in the plan data, with the frequencies."""
    return [(ob, freqs) for ob in plan.obligations if (freqs := plan.default_due_days(ob))]
