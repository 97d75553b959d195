"""One-stop dossiers in the daily sweep, and the plan's KPIs (Decision 766/QĐ-TTg).

Set-based throughout: the daily alerts are a few GROUP BY statements over the open
dossiers (a partial index on `due` among open dossiers), and a month's KPIs are one
aggregate statement, so a province's million dossiers stay a matter of seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import Integer, and_, case, func, or_, select
from sqlmodel import Session

from deadlines.dossier import OneStopRules
from deadlines.ladder import role_address
from models.tables import Dossier
from notifications import compose
from notifications.outbox import store_messages

LISTED_PER_EMAIL = 50  # dossier ids named in one alert; the rest are counted


@dataclass
class DossierAlerts:
    reminders: dict[str, int] = field(default_factory=dict)  # agency -> due next working day
    at_risk: dict[str, int] = field(default_factory=dict)  # due by then, no apology
    late_without_apology: dict[str, int] = field(default_factory=dict)  # open, past due
    notifications: int = 0


def _start(day: date) -> datetime:
    return datetime.combine(day, time())


def dossier_alerts(
    ctx, session: Session, today: date, agencies=None, *, notify: bool = True
) -> DossierAlerts:
    """Remind each agency of its dossiers due on the next working day; escalate those
    about to be late without an apology; list the late ones without an apology."""
    rules: OneStopRules = ctx.one_stop
    alerts = DossierAlerts()
    reminder_day = ctx.cal.add_working_days(today, rules.reminder_days_before_due)
    window = (_start(reminder_day), _start(reminder_day + timedelta(days=1)))
    open_ = Dossier.completed_at.is_(None)
    if agencies is not None:
        open_ = and_(open_, Dossier.agency_code.in_(list(agencies)))
    alerts.reminders = dict(
        session.execute(
            select(Dossier.agency_code, func.count())
            .where(open_, Dossier.due >= window[0], Dossier.due < window[1])
            .group_by(Dossier.agency_code)
        ).all()
    )
    alerts.at_risk = dict(
        session.execute(
            select(Dossier.agency_code, func.count())
            .where(
                open_,
                Dossier.apology_at.is_(None),
                Dossier.legal_due >= _start(today),
                Dossier.legal_due < window[1],
            )
            .group_by(Dossier.agency_code)
        ).all()
    )
    alerts.late_without_apology = dict(
        session.execute(
            select(Dossier.agency_code, func.count())
            .where(open_, Dossier.apology_at.is_(None), Dossier.legal_due < _start(today))
            .group_by(Dossier.agency_code)
        ).all()
    )
    if not notify:
        return alerts
    messages = []
    for agency_code in sorted(set(alerts.reminders) | set(alerts.at_risk)):
        ids = session.scalars(
            select(Dossier.id)
            .where(open_, Dossier.agency_code == agency_code, Dossier.due < window[1])
            .where(Dossier.due >= _start(today))
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
                alert_message(focal, name, "reminder", today, reminder_day, due_soon, at_risk, ids)
            )
        if at_risk and head:
            cc = (office,) if office and office != head else ()
            messages.append(
                alert_message(
                    head, name, "at_risk", today, reminder_day, due_soon, at_risk, ids, cc
                )
            )
    alerts.notifications = store_messages(session, messages)
    return alerts


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
    "online_rate": ("Trực tuyến", "online_submission_rate"),
    "digitized_rate": ("Số hóa", "digitization_rate"),
    "e_result_rate": ("KQ điện tử", "e_result_rate"),
    "online_payment_rate": ("TT trực tuyến", "online_payment_rate"),
    "apology_rate": ("Xin lỗi/trễ", "late_apology_rate"),
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
)


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """'2025-05' -> (1/5/2025 00:00, 1/6/2025 00:00)."""
    try:
        first = datetime.strptime(month, "%Y-%m")
    except ValueError:
        raise ValueError(f"Tháng không hợp lệ: '{month}' (cần dạng YYYY-MM).") from None
    nxt = datetime(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, nxt


def kpis(session: Session, month: str, agency: str | None = None) -> list[dict]:
    """The month's indicators per agency, over the dossiers processed in the month.

    Processed in the month: completed in it, or received by its end and still open then
    (so a dossier can count in two months). On time (Decision 766): completed on or
    before the legal due date, or still open at the month's end and not yet past it.
    The legal due date already restarts at a supplement's arrival, so the citizen's
    supplement wait is not held against the agency; an apology's new date does not
    make a late dossier on time. `apology_rate` is the share of late dossiers with an
    apology (None when none was late); `online_payment_rate` counts the dossiers that
    had a fee to pay (None when none had).
    """
    start, end = month_bounds(month)
    completed_in_month = and_(Dossier.completed_at >= start, Dossier.completed_at < end)
    open_at_end = and_(
        Dossier.received_at < end,
        or_(Dossier.completed_at.is_(None), Dossier.completed_at >= end),
    )
    on_time = case(
        (completed_in_month, Dossier.completed_at <= Dossier.legal_due),
        else_=Dossier.legal_due >= end,
    )
    late = ~on_time

    def share(condition):
        return func.sum(case((condition, 1), else_=0))

    query = (
        select(
            Dossier.agency_code,
            func.count(),
            share(on_time),
            share(Dossier.channel == "online"),
            share(Dossier.digitized.is_(True)),
            share(Dossier.e_result.is_(True)),
            share(Dossier.paid_online.is_(True)),
            share(Dossier.paid_online.is_not(None)),
            share(late),
            share(and_(late, Dossier.apology_at.is_not(None))),
        )
        .where(or_(completed_in_month, open_at_end))
        .group_by(Dossier.agency_code)
        .order_by(Dossier.agency_code)
    )
    if agency is not None:
        query = query.where(Dossier.agency_code == agency)
    rows = []
    for (
        code,
        n,
        ok,
        online,
        digitized,
        e_result,
        paid,
        payable,
        late_n,
        apologised,
    ) in session.execute(query).all():
        rows.append(
            {
                "agency": code,
                "month": month,
                "dossiers": int(n),
                "on_time_rate": _rate(ok, n),
                "online_rate": _rate(online, n),
                "digitized_rate": _rate(digitized, n),
                "e_result_rate": _rate(e_result, n),
                "online_payment_rate": _rate(paid, payable),
                "apology_rate": _rate(apologised, late_n),
            }
        )
    return rows


def _rate(part, whole) -> float | None:
    whole = int(whole or 0)
    return None if whole == 0 else round(int(part or 0) / whole, 4)


def late_officials(session: Session, month: str) -> list[tuple[str, str, int, int]]:
    """(agency, handler, late dossiers, of which without apology) for the month's public
    list of agencies and officials who were late (plan item V.7)."""
    start, end = month_bounds(month)
    completed_late = and_(
        Dossier.completed_at >= start,
        Dossier.completed_at < end,
        Dossier.completed_at > Dossier.legal_due,
    )
    open_late = and_(
        Dossier.received_at < end,
        or_(Dossier.completed_at.is_(None), Dossier.completed_at >= end),
        Dossier.legal_due < end,
    )
    handler = func.coalesce(Dossier.handler, "")
    rows = session.execute(
        select(
            Dossier.agency_code,
            handler,
            func.count(),
            func.sum(func.cast(Dossier.apology_at.is_(None), Integer)),
        )
        .where(or_(completed_late, open_late))
        .group_by(Dossier.agency_code, handler)
        .order_by(func.count().desc(), Dossier.agency_code, handler)
    ).all()
    return [(code, name, int(n), int(no_apology or 0)) for code, name, n, no_apology in rows]
