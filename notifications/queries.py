"""What the notifications read from the store: the open deadlines of agencies and people.

The calendar attached to every email and the file `dunghan ics AGENCY` writes come from
here, so a department sees the same deadlines in both.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache

from sqlalchemy import select
from sqlmodel import Session

from deadlines.agencies import load_registry
from deadlines.plan import plan_label
from models.tables import Agency, Assignment, DeadlineItem, ItemStatus, Obligation, Plan
from notifications import ics

CHUNK = 500


@dataclass(frozen=True)
class OpenItem:
    """An open deadline item with what a calendar entry says about it."""

    item_id: int
    agency_code: str
    agency: str
    number: str
    title: str
    content: str
    due: date
    lead: str
    coordinating: str
    uid: str
    updated: datetime | None
    plan: str = ""  # the plan it belongs to, as officials name it

    def deadline(self, *, with_agency: bool) -> ics.Deadline:
        summary = f"[{self.number}] {self.title}"
        if with_agency:
            summary = f"[{self.number}] {self.agency}: {self.title}"
        lines = [
            f"Hạn: {self.due.day}/{self.due.month}/{self.due.year}",
            f"Cơ quan thực hiện: {self.agency}",
            f"Chủ trì: {self.lead}" if self.lead else "",
            f"Phối hợp: {self.coordinating}" if self.coordinating else "",
            f"Nội dung: {self.content}",
            f"Thuộc: {self.plan}" if self.plan else "",
            f"Mã việc trong hệ thống Đúng hạn: {self.item_id}",
        ]
        return ics.Deadline(
            uid=self.uid,
            due=self.due,
            summary=summary,
            description="\n".join(line for line in lines if line),
            updated=self.updated,
        )


@cache
def _group_labels() -> dict[str, str]:
    return {code: group.label for code, group in load_registry().groups.items()}


def agencies_by_address(session: Session) -> dict[str, list[str]]:
    """Lower-cased address -> the agencies whose general, focal or head address it is."""
    out: dict[str, list[str]] = defaultdict(list)
    for code, *addresses in session.execute(
        select(Agency.code, Agency.email, Agency.focal_email, Agency.head_email)
    ):
        for address in {a.lower() for a in addresses if a}:
            out[address].append(code)
    return dict(out)


def _chunks(values: Sequence, size: int = CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def open_items(
    session: Session, *, agency_codes: Iterable[str] = (), item_ids: Iterable[int] = ()
) -> dict[int, OpenItem]:
    """The open items of the agencies `agency_codes` and, among `item_ids`, those still
    open; by item id."""
    codes, ids = sorted(set(agency_codes)), sorted(set(item_ids))
    rows = []
    for selector, values in ((DeadlineItem.agency_code, codes), (DeadlineItem.id, ids)):
        for chunk in _chunks(values):
            rows += session.execute(
                select(
                    DeadlineItem.id,
                    DeadlineItem.agency_code,
                    DeadlineItem.period_key,
                    DeadlineItem.due,
                    DeadlineItem.updated_at,
                    DeadlineItem.obligation_id,
                    Obligation.number,
                    Obligation.title,
                    Obligation.content,
                    Plan.code,
                    Plan.year,
                    Plan.decision,
                    Agency.name,
                )
                .join(Obligation, Obligation.id == DeadlineItem.obligation_id)
                .join(Plan, Plan.id == Obligation.plan_id)
                .join(Agency, Agency.code == DeadlineItem.agency_code)
                .where(DeadlineItem.status == ItemStatus.OPEN, selector.in_(list(chunk)))
            ).all()
    if not rows:
        return {}
    obligation_ids = sorted({row[5] for row in rows})
    names = dict(session.execute(select(Agency.code, Agency.name)).all())
    roles: dict[tuple[int, str], list[str]] = defaultdict(list)
    for chunk in _chunks(obligation_ids):
        for obligation_id, target, role in session.execute(
            select(Assignment.obligation_id, Assignment.target, Assignment.role)
            .where(Assignment.obligation_id.in_(list(chunk)))
            .order_by(Assignment.id)
        ):
            label = names.get(target) or _group_labels().get(target, target)
            roles[(obligation_id, role)].append(label)
    out: dict[int, OpenItem] = {}
    for (
        item_id,
        agency_code,
        period_key,
        due,
        updated,
        obligation_id,
        number,
        title,
        content,
        plan_code,
        plan_year,
        plan_decision,
        agency_name,
    ) in rows:
        out[item_id] = OpenItem(
            item_id=item_id,
            agency_code=agency_code,
            agency=agency_name,
            number=number,
            title=title,
            content=content,
            due=due,
            lead="; ".join(roles[(obligation_id, "lead")]),
            coordinating="; ".join(roles[(obligation_id, "coordinating")]),
            uid=ics.deadline_uid(plan_code, number, agency_code, period_key),
            updated=updated,
            plan=plan_label(plan_year, plan_decision),
        )
    return out


def calendar_of(items: Iterable[OpenItem], *, name: str, stamp: datetime) -> str:
    """The .ics text of these items (the agency shown in each entry when there are several)."""
    items = list(items)
    with_agency = len({i.agency_code for i in items}) > 1
    return ics.calendar(
        (i.deadline(with_agency=with_agency) for i in items), name=name, stamp=stamp
    )


def agency_calendar(session: Session, agency_code: str, *, stamp: datetime) -> tuple[str, int]:
    """The calendar `dunghan ics AGENCY` writes, and how many deadlines it holds."""
    name = session.scalar(select(Agency.name).where(Agency.code == agency_code)) or agency_code
    items = open_items(session, agency_codes=[agency_code])
    return calendar_of(items.values(), name=f"Đúng hạn — {name}", stamp=stamp), len(items)
