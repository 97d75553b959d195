"""One-stop dossiers in the daily sweep, the plan's KPIs (Decision 766/QĐ-TTg), the public
list of late officials and the appointment-slip audit.

Set-based throughout: the daily alerts are a few GROUP BY statements over the open
dossiers (a partial index on `due` among open dossiers), and a month's KPIs are one
aggregate statement, so a province's million dossiers stay a matter of seconds. Both
clocks are the pure functions of `deadlines.dossier` evaluated as SQL (`SqlOps`): a
dossier waiting for the citizen's supplement is never late, never escalated and never on
the public list, here exactly as in `dunghan dossiers explain`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from sqlalchemy import and_, case, false, func, or_, select
from sqlmodel import Session

from deadlines.calendar import WorkCalendar
from deadlines.dossier import (
    ClockFacts,
    OneStopRules,
    due_at,
    late_766_in_month,
    late_at,
    late_legal_in_month,
    waiting_at,
)
from deadlines.ladder import role_address
from models.tables import Dossier
from notifications import compose
from notifications.outbox import store_messages

LISTED_PER_EMAIL = 50  # dossier ids named in one alert; the rest are counted


class SqlOps:
    """The clocks of `deadlines.dossier` evaluated as SQL expressions."""

    @staticmethod
    def where(condition, then, otherwise):
        return case((condition, then), else_=otherwise)

    @staticmethod
    def isnull(value):
        return value.is_(None)

    @staticmethod
    def notnull(value):
        return value.is_not(None)

    @staticmethod
    def coalesce(value, fallback):
        return func.coalesce(value, fallback)


FACTS = ClockFacts(
    first_due=Dossier.first_due,
    legal_due=Dossier.legal_due,
    requested=Dossier.supplement_requested_at,
    supplied=Dossier.supplement_received_at,
    requests=Dossier.supplement_requests,
    completed=Dossier.completed_at,
    closed=Dossier.closed_at,
    appointment=Dossier.appointment_at,
    due_766=Dossier.due_766,
)


@lru_cache(maxsize=1)
def shipped_rules() -> OneStopRules:
    return OneStopRules.load()


def repeated_supplements(rules: OneStopRules):
    """More supplement requests than the regime of the dossier allows (a breach of Decree
    118/2025, Art. 11(2)(c): "chỉ được yêu cầu sửa đổi, bổ sung một lần")."""
    return or_(
        false(),
        *(
            and_(Dossier.regime == r.code, Dossier.supplement_requests > r.max_supplement_requests)
            for r in rules.regimes
        ),
    )


@dataclass
class DossierAlerts:
    reminders: dict[str, int] = field(default_factory=dict)  # agency -> due next working day
    at_risk: dict[str, int] = field(default_factory=dict)  # due by then, no apology
    late_without_apology: dict[str, int] = field(default_factory=dict)  # open, past due
    awaiting_supplement: dict[str, int] = field(default_factory=dict)  # the citizen's turn
    notifications: int = 0


def _start(day: date) -> datetime:
    return datetime.combine(day, time())


def dossier_alerts(
    ctx, session: Session, today: date, agencies=None, *, notify: bool = True
) -> DossierAlerts:
    """Remind each agency of its dossiers due on the next working day; escalate those
    about to be late without an apology; list the late ones without an apology. A dossier
    waiting for the citizen's supplement is in none of these: it is counted apart."""
    rules: OneStopRules = ctx.one_stop
    alerts = DossierAlerts()
    now = _start(today)
    reminder_day = ctx.cal.add_working_days(today, rules.reminder_days_before_due)
    window = (_start(reminder_day), _start(reminder_day + timedelta(days=1)))
    open_ = and_(Dossier.completed_at.is_(None), Dossier.closed_at.is_(None))
    if agencies is not None:
        open_ = and_(open_, Dossier.agency_code.in_(list(agencies)))
    waiting = waiting_at(FACTS, now, SqlOps)
    in_force = due_at(FACTS, now, SqlOps)

    def per_agency(*conditions) -> dict[str, int]:
        return dict(
            session.execute(
                select(Dossier.agency_code, func.count())
                .where(open_, *conditions)
                .group_by(Dossier.agency_code)
            ).all()
        )

    alerts.reminders = per_agency(Dossier.due >= window[0], Dossier.due < window[1], ~waiting)
    alerts.at_risk = per_agency(
        Dossier.apology_at.is_(None), ~waiting, in_force >= now, in_force < window[1]
    )
    alerts.late_without_apology = per_agency(
        Dossier.apology_at.is_(None), late_at(FACTS, now, SqlOps)
    )
    alerts.awaiting_supplement = per_agency(waiting)
    if not notify:
        return alerts
    apology_rule = _apology_rule(rules, today)
    messages = []
    for agency_code in sorted(set(alerts.reminders) | set(alerts.at_risk)):
        ids = session.scalars(
            select(Dossier.id)
            .where(open_, Dossier.agency_code == agency_code, Dossier.due < window[1])
            .where(Dossier.due >= now, ~waiting)
            .order_by(Dossier.due)
            .limit(LISTED_PER_EMAIL)
        ).all()
        focal = _address(ctx, "focal", agency_code)
        head = _address(ctx, "head", agency_code)
        office = _address(ctx, "provincial_office", agency_code)
        name = ctx.agency_name(agency_code)
        due_soon = alerts.reminders.get(agency_code, 0)
        at_risk = alerts.at_risk.get(agency_code, 0)
        if focal:
            messages.append(
                alert_message(
                    focal,
                    name,
                    "reminder",
                    today,
                    reminder_day,
                    due_soon,
                    at_risk,
                    ids,
                    apology_rule=apology_rule,
                )
            )
        if at_risk and head:
            cc = (office,) if office and office != head else ()
            messages.append(
                alert_message(
                    head,
                    name,
                    "at_risk",
                    today,
                    reminder_day,
                    due_soon,
                    at_risk,
                    ids,
                    cc,
                    apology_rule=apology_rule,
                )
            )
    alerts.notifications = store_messages(session, messages)
    return alerts


def _apology_rule(rules: OneStopRules, today: date) -> str:
    """The apology rule of the regime in force today, in the words of an alert."""
    regime = rules.regime_on(today) or rules.regimes[-1]
    return (
        f"Phiếu xin lỗi phải được gửi chậm nhất {regime.apology_days_before_due} ngày trước "
        f"ngày hết hạn; chỉ được hẹn lại {regime.max_reschedules} lần "
        f"({regime.facts['apology'].cite()})."
    )


def alert_message(
    recipient: str,
    agency: str,
    kind: str,
    today: date,
    reminder_day: date,
    due_soon: int,
    at_risk: int,
    ids: list[str],
    cc: tuple[str, ...] = (),
    *,
    apology_rule: str = "",
) -> compose.Message:
    """The daily dossier alert of one agency: a reminder to its focal point, or (with
    dossiers about to be late and not apologised for) an escalation to its head."""
    if kind == "reminder":
        subject = (
            f"[Đúng hạn] {agency}: {due_soon} hồ sơ đến hạn ngày "
            f"{reminder_day.day}/{reminder_day.month}/{reminder_day.year}"
        )
    else:
        subject = f"[Đúng hạn] {agency}: {at_risk} hồ sơ sắp trễ hạn chưa có phiếu xin lỗi"
    text, html = compose.render(
        "dossier_alert",
        agency=agency,
        kind=kind,
        today=today,
        reminder_day=reminder_day,
        due_soon=due_soon,
        at_risk=at_risk,
        ids=ids,
        listed=LISTED_PER_EMAIL,
        subject=subject,
        apology_rule=apology_rule,
    )
    return compose.Message(
        kind=f"dossier_{kind}",
        recipient=recipient,
        recipient_name=agency,
        subject=subject,
        body_text=text,
        body_html=html,
        # Keyed by what it says: a later sweep that day with other figures sends the new
        # picture; the same figures again send nothing.
        idempotency_key=compose.idempotency_key(
            f"dossier-{kind}", recipient, ids, f"{due_soon}/{at_risk}/{reminder_day}", today
        ),
        cc=cc,
    )


def _address(ctx, role: str, agency_code: str) -> str | None:
    target = role_address(ctx.ladder, ctx.registry, role, agency_code)
    return target[0] if target else None


# ----------------------------------------------------------------------------- KPIs

# Each indicator, its column label, and the plan's KPI target it is measured against.
INDICATORS = {
    "on_time_rate": ("Đúng hạn", "on_time_rate"),
    "on_time_rate_766": ("Đúng hạn (766)", "on_time_rate"),
    "online_rate": ("Trực tuyến", "online_submission_rate"),
    "digitized_rate": ("Số hóa", "digitization_rate"),
    "e_result_rate": ("KQ điện tử", "e_result_rate"),
    "online_payment_rate": ("TT trực tuyến", "online_payment_rate"),
    "apology_rate": ("Xin lỗi/trễ", "late_apology_rate"),
}

# The counts beside the rates: each with its column label.
COUNTS = {
    "late": "Trễ hạn",
    "late_apologies": "Xin lỗi muộn",
    "repeated_supplements": "Bổ sung >1 lần",
    "awaiting_supplement": "Chờ bổ sung",
}

KPI_KEYS = (
    "agency",
    "month",
    "dossiers",
    "on_time_rate",
    "online_rate",
    "digitized_rate",
    "e_result_rate",
    "online_payment_rate",
    "apology_rate",
    "on_time_rate_766",
    "received",
    *COUNTS,
)


def month_bounds(month: str, until: date | None = None) -> tuple[datetime, datetime]:
    """'2025-05' -> (1/5/2025 00:00, 1/6/2025 00:00). With `until` inside the month, the
    month so far: (1/5/2025 00:00, the end of `until`)."""
    try:
        first = datetime.strptime(month, "%Y-%m")
    except ValueError:
        raise ValueError(f"Tháng không hợp lệ: '{month}' (cần dạng YYYY-MM).") from None
    nxt = datetime(first.year + first.month // 12, first.month % 12 + 1, 1)
    if until is not None:
        nxt = max(first, min(nxt, datetime.combine(until + timedelta(days=1), time())))
    return first, nxt


def month_so_far(month: str, until: date | None) -> date | None:
    """`until` when it falls inside `month` before its last day (the month is measured so
    far), else None (the whole month)."""
    if until is None:
        return None
    first, end = month_bounds(month)
    return until if first.date() <= until and month_bounds(month, until)[1] < end else None


def processed_in(start: datetime, end: datetime):
    """The dossiers a month's figures are about: ended (completed, or returned / closed
    without a result) in the month, or received by its end and still open then."""
    ended = func.coalesce(Dossier.completed_at, Dossier.closed_at)
    return or_(
        and_(ended >= start, ended < end),
        and_(Dossier.received_at < end, or_(ended.is_(None), ended >= end)),
    )


def kpis(
    session: Session,
    month: str,
    agency: str | None = None,
    rules: OneStopRules | None = None,
    until: date | None = None,
) -> list[dict]:
    """The month's indicators per agency, over the dossiers processed in the month (with
    `until` inside the month, in the month so far: a dossier still open at the end of
    `until` is late only if its due date has passed by then, not by the month's end).

    Processed in the month: ended in it, or received by its end and still open then (so
    a dossier can count in two months). Two clocks:
    - `on_time_rate`, the legal clock: ended on or before the legal due date in force, or
      open at the month's end and not yet past it; a dossier waiting for the citizen's
      supplement is never late (the limit restarts when the complete dossier arrives);
      an apology's new date does not make a late dossier on time.
    - `on_time_rate_766`, the portal's clock (Decision 766/QĐ-TTg): the appointment with
      the citizen's wait added back; more supplement requests than allowed is late.
    `online_rate` is over the dossiers received in the month (`received`), as the
    indicator defines it. `apology_rate` = late dossiers with a timely apology ÷ late
    dossiers (None when none was late); `late_apologies` counts the apologies sent too
    late, `repeated_supplements` the dossiers asked for a supplement more than once,
    `awaiting_supplement` those waiting for the citizen at the month's end.
    `online_payment_rate` counts the dossiers that had a fee to pay (None when none had).
    """
    rules = rules or shipped_rules()
    start, end = month_bounds(month, until)
    late = late_legal_in_month(FACTS, end, SqlOps)
    late_portal = late_766_in_month(FACTS, end, SqlOps, rules.indicator)
    received = and_(Dossier.received_at >= start, Dossier.received_at < end)
    ended = func.coalesce(Dossier.completed_at, Dossier.closed_at)
    open_at_end = or_(ended.is_(None), ended >= end)

    def share(condition):
        return func.sum(case((condition, 1), else_=0))

    query = (
        select(
            Dossier.agency_code,
            func.count(),
            share(late),
            share(late_portal),
            share(received),
            share(and_(received, Dossier.channel == "online")),
            share(Dossier.digitized.is_(True)),
            share(Dossier.e_result.is_(True)),
            share(Dossier.paid_online.is_(True)),
            share(Dossier.paid_online.is_not(None)),
            share(and_(late, Dossier.apology_timely.is_(True))),
            share(Dossier.apology_timely.is_(False)),
            share(repeated_supplements(rules)),
            share(and_(open_at_end, waiting_at(FACTS, end, SqlOps))),
        )
        .where(processed_in(start, end))
        .group_by(Dossier.agency_code)
        .order_by(Dossier.agency_code)
    )
    if agency is not None:
        query = query.where(Dossier.agency_code == agency)
    rows = []
    for (
        code,
        n,
        late_n,
        late_766_n,
        received_n,
        online,
        digitized,
        e_result,
        paid,
        payable,
        apologised,
        late_apologies,
        repeated,
        awaiting,
    ) in session.execute(query).all():
        n, late_n = int(n), int(late_n or 0)
        rows.append(
            {
                "agency": code,
                "month": month,
                "dossiers": n,
                "on_time_rate": _rate(n - late_n, n),
                "online_rate": _rate(online, received_n),
                "digitized_rate": _rate(digitized, n),
                "e_result_rate": _rate(e_result, n),
                "online_payment_rate": _rate(paid, payable),
                "apology_rate": _rate(apologised, late_n),
                "on_time_rate_766": _rate(n - int(late_766_n or 0), n),
                "received": int(received_n or 0),
                "late": late_n,
                "late_apologies": int(late_apologies or 0),
                "repeated_supplements": int(repeated or 0),
                "awaiting_supplement": int(awaiting or 0),
            }
        )
    return rows


def _rate(part, whole) -> float | None:
    whole = int(whole or 0)
    return None if whole == 0 else round(int(part or 0) / whole, 4)


def late_officials(
    session: Session, month: str, until: date | None = None
) -> list[tuple[str, str, int, int]]:
    """(agency, handler, late dossiers, of which without a timely apology) for the month's
    public list of agencies and officials who were late (plan item V.7). The same legal
    clock as `kpis`: a dossier waiting for the citizen is never on it."""
    start, end = month_bounds(month, until)
    late = late_legal_in_month(FACTS, end, SqlOps)
    handler = func.coalesce(Dossier.handler, "")
    rows = session.execute(
        select(
            Dossier.agency_code,
            handler,
            func.count(),
            func.sum(case((Dossier.apology_timely.is_(True), 0), else_=1)),
        )
        .where(processed_in(start, end), late)
        .group_by(Dossier.agency_code, handler)
        .order_by(func.count().desc(), Dossier.agency_code, handler)
    ).all()
    return [(code, name, int(n), int(no_apology or 0)) for code, name, n, no_apology in rows]


# ------------------------------------------------------------ appointment-slip audit


@dataclass(frozen=True)
class AppointmentBeyondLaw:
    """A receipt slip whose appointment is later than the law allows."""

    dossier_id: str
    agency_code: str
    procedure_code: str
    handler: str | None
    received_at: datetime
    appointment_at: datetime
    legal_due: datetime  # counted from receipt, as the slip's date must be
    working_days_late: int  # working days after the legal due day, up to the appointment's

    def as_json(self) -> dict:
        return {
            "dossier_id": self.dossier_id,
            "agency": self.agency_code,
            "procedure_code": self.procedure_code,
            "handler": self.handler,
            "received_at": self.received_at.isoformat(),
            "appointment_at": self.appointment_at.isoformat(),
            "legal_due": self.legal_due.isoformat(),
            "working_days_late": self.working_days_late,
        }


def appointments_beyond_law(
    session: Session, cal: WorkCalendar, month: str, agency: str | None = None
) -> list[AppointmentBeyondLaw]:
    """The dossiers received in `month` whose receipt slip gives an appointment later than
    the legal due date counted from receipt (Decree 118/2025, Art. 17(3)): what a
    provincial controller looks for. Only exports that carry `appointment_at` (the date
    on the slip given at receipt) can be audited."""
    start, end = month_bounds(month)
    query = (
        select(
            Dossier.id,
            Dossier.agency_code,
            Dossier.procedure_code,
            Dossier.handler,
            Dossier.received_at,
            Dossier.appointment_at,
            Dossier.first_due.label("legal_due"),
        )
        .where(
            Dossier.received_at >= start,
            Dossier.received_at < end,
            Dossier.appointment_at > Dossier.first_due,
        )
        .order_by(Dossier.agency_code, Dossier.received_at, Dossier.id)
    )
    if agency is not None:
        query = query.where(Dossier.agency_code == agency)
    found = []
    for row in session.execute(query).all():
        legal_day, appointment_day = row.legal_due.date(), row.appointment_at.date()
        days = (
            cal.count_working_days(legal_day + timedelta(days=1), appointment_day)
            if appointment_day > legal_day
            else 0
        )
        found.append(AppointmentBeyondLaw(*row, working_days_late=days))
    return found
