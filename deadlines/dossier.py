"""Dossier deadlines and the two clocks (hạn giải quyết hồ sơ TTHC): pure, vectorised,
explainable.

The legal due instant (ngày hết hạn theo quy định) is computed from the procedure's limit
(thời hạn giải quyết) under the regime in force on the dossier's receipt date
(`deadlines/one_stop.yaml`): counted from receipt, or, after a request for supplements,
from the arrival of the complete dossier (the limit restarts, it does not pause). It
drives reminders, escalation and the public list of late dossiers.

The portal's on-time indicator (Decision 766/QĐ-TTg) is a second clock: it compares the
end of processing with the appointment date and does not count the citizen's waiting
time (a pause), and it scores a dossier with more than one supplement request as late.

Both clocks are written once, in `waiting_at`, `due_at`, `late_at` and `late_766`, over
an `ops` namespace: `ArrayOps` evaluates them on numpy arrays (import, explain, tests)
and the shell evaluates the very same functions as SQL (`flows.dossiers.SqlOps`), so the
sweep, the KPIs, the scorecard and `dossiers explain` cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from deadlines.calendar import WorkCalendar
from deadlines.one_stop import Indicator766, OneStopRules, Regime

UNITS = ("working_days", "working_hours", "days")
UNIT_VI = {"working_days": "ngày làm việc", "working_hours": "giờ làm việc", "days": "ngày"}
NAT = np.datetime64("NaT", "s")

# The states the law knows (Decree 118/2025, Art. 17-19), as of the export's facts.
STATES = ("received", "awaiting_supplement", "rescheduled", "closed", "completed")
STATE_VI = {
    "received": "đã tiếp nhận, đang giải quyết",
    "awaiting_supplement": "chờ tổ chức, cá nhân bổ sung hồ sơ",
    "rescheduled": "đã xin lỗi và hẹn lại ngày trả kết quả",
    "closed": "đã trả lại / đóng hồ sơ, không có kết quả",
    "completed": "đã có kết quả",
}


def when(value: datetime) -> str:
    """An instant as Vietnamese write it; the end of a day is '24:00', as the Civil Code
    says (Art. 148(6)), though it is stored as 23:59:59."""
    if value.hour == 23 and value.minute == 59 and value.second == 59:
        return f"24:00 {value:%d/%m/%Y}"
    return f"{value:%H:%M %d/%m/%Y}"


# ------------------------------------------------------------------ legal due dates


def _due_from(
    cal: WorkCalendar, regime: Regime, start: np.ndarray, value: np.ndarray, unit: np.ndarray
) -> np.ndarray:
    """Due instants under one regime, counted from `start` (local `datetime64[s]`)."""
    due = np.empty(start.shape, dtype="datetime64[s]")
    if start.size == 0:
        return due
    # Working hours are counted inside working sessions only, so their start is always
    # the next session; for day-based limits the setting decides (receipt section).
    if regime.next_session_outside_hours:
        counted, _ = cal.normalize_receipt_many(start)
    else:
        counted = start
    day = counted.astype("datetime64[D]")
    close = np.timedelta64(regime.end_of_day_seconds(cal.close_of_day_seconds()), "s")
    days = unit == UNITS.index("working_days")
    if days.any():
        n = np.rint(value[days]).astype(np.int64)
        due[days] = cal.add_working_days_many(day[days], n).astype("datetime64[s]") + close
    calendar_days = unit == UNITS.index("days")
    if calendar_days.any():
        last = day[calendar_days] + np.rint(value[calendar_days]).astype("timedelta64[D]")
        due[calendar_days] = cal.next_working_day_many(last).astype("datetime64[s]") + close
    hours = unit == UNITS.index("working_hours")
    if hours.any():
        seconds = np.rint(value[hours] * 3600).astype(np.int64)
        due[hours] = cal.add_working_hours_many(start[hours], seconds)
    return due


def legal_due_many(
    cal: WorkCalendar,
    rules: OneStopRules,
    received: np.ndarray,
    supplement_received: np.ndarray,
    limit_value: np.ndarray,
    limit_unit: np.ndarray,
    regime_index: np.ndarray | None = None,
) -> np.ndarray:
    """Legal due instants (local `datetime64[s]`) for arrays of dossiers.

    `received`, `supplement_received` (NaT when none): local `datetime64[s]`;
    `limit_value`: float array; `limit_unit`: index into `UNITS`; `regime_index`: index
    into `rules.regimes` (default: the regime in force on each receipt date). Pass NaT
    supplements for the due date counted from receipt alone.
    """
    received = np.asarray(received, dtype="datetime64[s]")
    supplement = np.asarray(supplement_received, dtype="datetime64[s]")
    value = np.asarray(limit_value, dtype=np.float64)
    unit = np.asarray(limit_unit, dtype=np.int64)
    if regime_index is None:
        regime_index = rules.regime_index_many(received)
    if (regime_index < 0).any():
        row = int(np.flatnonzero(regime_index < 0)[0])
        raise ValueError(
            f"Dòng {row}: ngày tiếp nhận {received[row]} không thuộc quy định một cửa nào "
            f"({rules.describe_coverage()})."
        )
    due = np.empty(received.shape, dtype="datetime64[s]")
    for index, regime in enumerate(rules.regimes):
        mine = regime_index == index
        if not mine.any():
            continue
        start = received[mine]
        if regime.restart_on_supplement:
            start = np.where(np.isnat(supplement[mine]), start, supplement[mine])
        due[mine] = _due_from(cal, regime, start, value[mine], unit[mine])
    return due


def legal_due(
    cal: WorkCalendar,
    rules: OneStopRules,
    received: datetime,
    supplement_received: datetime | None,
    limit_value: float,
    limit_unit: str,
) -> datetime:
    """One dossier's legal due instant (local naive), through the scalar calendar: the
    reference the vectorised `legal_due_many` is tested against."""
    regime = rules.regime_on(received.date())
    if regime is None:
        raise ValueError(
            f"Ngày tiếp nhận {received:%d/%m/%Y} không thuộc quy định một cửa nào "
            f"({rules.describe_coverage()})."
        )
    counted_from = received
    if supplement_received is not None and regime.restart_on_supplement:
        counted_from = supplement_received
    if limit_unit == "working_hours":
        seconds = round(limit_value * 3600)
        return cal.add_working_hours(counted_from, timedelta(seconds=seconds)).replace(tzinfo=None)
    start = counted_from
    if regime.next_session_outside_hours:
        start = cal.normalize_receipt(counted_from).replace(tzinfo=None)
    close = timedelta(seconds=regime.end_of_day_seconds(cal.close_of_day_seconds()))
    if limit_unit == "days":
        last = cal.next_working_day(start.date() + timedelta(days=round(limit_value)))
    else:
        last = cal.add_working_days(start.date(), round(limit_value))
    return datetime.combine(last, datetime.min.time()) + close


def due_766_many(
    indicator: Indicator766,
    appointment: np.ndarray,
    first_due: np.ndarray,
    requested: np.ndarray,
    supplement_received: np.ndarray,
    apology_new_due: np.ndarray,
) -> np.ndarray:
    """The appointment the portal's clock measures against, with the citizen's waiting
    time added back (a pause): appointment + (supplement arrival − request).

    The appointment is the one on the receipt slip (`appointment_at`), or the legal due
    date counted from receipt when the export has none; the apology's new date only when
    the indicator's settings say it counts.
    """
    base = np.where(np.isnat(appointment), first_due, appointment)
    if indicator.rescheduled_date_counts:
        base = np.where(np.isnat(apology_new_due), base, apology_new_due)
    if not indicator.supplement_wait_not_counted:
        return base
    paused = ~np.isnat(requested) & ~np.isnat(supplement_received)
    wait = np.where(paused, supplement_received - requested, np.timedelta64(0, "s"))
    return base + wait


def apology_deadline_many(
    cal: WorkCalendar, rules: OneStopRules, regime_index: np.ndarray, due: np.ndarray
) -> np.ndarray:
    """The instant before which an apology is timely: the start of the day that lies
    `working_days_before_due` − 1 working days before the due day (Decree 118/2025, Art.
    19(6): "chậm nhất 01 ngày trước ngày hết hạn" — any day before the due day)."""
    due = np.asarray(due, dtype="datetime64[s]")
    deadline = np.empty(due.shape, dtype="datetime64[s]")
    for index, regime in enumerate(rules.regimes):
        mine = regime_index == index
        if not mine.any():
            continue
        n = regime.apology_days_before_due
        if n == 0:
            deadline[mine] = due[mine]
            continue
        day = due[mine].astype("datetime64[D]")
        if n > 1:
            day = cal.add_working_days_many(day, -(n - 1))
        deadline[mine] = day.astype("datetime64[s]")
    return deadline


def states_many(
    requested: np.ndarray,
    supplement_received: np.ndarray,
    completed: np.ndarray,
    closed: np.ndarray,
    apology_at: np.ndarray,
) -> np.ndarray:
    """Each dossier's state as its export shows it (a value of `STATES`)."""
    state = np.full(np.shape(requested), "received", dtype=object)
    state[~np.isnat(apology_at)] = "rescheduled"
    state[~np.isnat(requested) & np.isnat(supplement_received)] = "awaiting_supplement"
    state[~np.isnat(closed)] = "closed"
    state[~np.isnat(completed)] = "completed"
    return state


# ---------------------------------------------------------------------- the clocks


class ArrayOps:
    """The clocks evaluated on numpy arrays (`datetime64[s]`, NaT for none)."""

    @staticmethod
    def where(condition, then, otherwise):
        return np.where(condition, then, otherwise)

    @staticmethod
    def isnull(value):
        return np.isnat(value)

    @staticmethod
    def notnull(value):
        return ~np.isnat(value)

    @staticmethod
    def coalesce(value, fallback):
        return np.where(np.isnat(value), fallback, value)


@dataclass(frozen=True)
class ClockFacts:
    """What the two clocks read of a dossier: numpy arrays, or the table's SQL columns."""

    first_due: Any  # the legal due counted from receipt
    legal_due: Any  # the legal due after the last restart (= first_due without supplement)
    requested: Any  # the (last) supplement request
    supplied: Any  # the complete dossier's arrival after it
    requests: Any  # number of supplement requests
    completed: Any
    closed: Any  # returned / closed without a result
    appointment: Any  # the appointment on the slip given at receipt (None: not exported)
    due_766: Any  # the portal's appointment with the citizen's wait added back


def waiting_at(f: ClockFacts, t, ops) -> Any:
    """Waiting for the citizen's supplement at `t`: asked before `t`, complete dossier not
    yet back. The agency's legal clock does not run; the dossier is never late then."""
    return (
        ops.notnull(f.requested) & (f.requested < t) & (ops.isnull(f.supplied) | (f.supplied >= t))
    )


def due_at(f: ClockFacts, t, ops) -> Any:
    """The legal due date in force at `t` (when not waiting): from receipt until a
    supplement request, from the complete dossier's arrival after it (restart)."""
    return ops.where(ops.isnull(f.requested) | (f.requested >= t), f.first_due, f.legal_due)


def late_at(f: ClockFacts, t, ops) -> Any:
    """Late at `t` on the legal clock (for a dossier not ended before `t`)."""
    return ~waiting_at(f, t, ops) & (due_at(f, t, ops) < t)


def _ended(f: ClockFacts, ops):
    return ops.coalesce(f.completed, f.closed)


def late_legal_in_month(f: ClockFacts, end, ops) -> Any:
    """Late in a month ending at `end` (exclusive), for a dossier processed in it: judged
    when it ended if that was in the month, else at the month's end."""
    ended = _ended(f, ops)
    in_month = ops.notnull(ended) & (ended < end)
    return ops.where(in_month, late_at(f, ended, ops), late_at(f, end, ops))


def late_766(f: ClockFacts, t, ops, indicator: Indicator766) -> Any:
    """Late at `t` on the portal's clock (Decision 766/QĐ-TTg, "Tiến độ, kết quả giải
    quyết"; details unconfirmed, see `indicator_766` in one_stop.yaml): more supplement
    requests than allowed is late; a pending supplement ends the processing at its
    request; otherwise the end is compared with the appointment, the citizen's waiting
    time added back once the complete dossier has arrived."""
    appointment = ops.coalesce(f.appointment, f.first_due)
    over = f.requests > indicator.max_requests
    resumed = ops.notnull(f.supplied) & (f.supplied < t)
    if indicator.pending_supplement_ends_at_request:
        pending = f.requested > appointment
    else:
        pending = appointment < t
    return over | ops.where(
        waiting_at(f, t, ops),
        pending,
        ops.where(resumed, f.due_766 < t, appointment < t),
    )


def late_766_in_month(f: ClockFacts, end, ops, indicator: Indicator766) -> Any:
    ended = _ended(f, ops)
    in_month = ops.notnull(ended) & (ended < end)
    return ops.where(in_month, late_766(f, ended, ops, indicator), late_766(f, end, ops, indicator))


# -------------------------------------------------------------------- explanation


@dataclass(frozen=True)
class DossierRecord:
    """One stored dossier with its procedure's limit, as `dossiers explain` reads it."""

    id: str
    regime: str
    received: datetime
    limit_value: float
    limit_unit: str
    first_due: datetime
    legal_due: datetime
    due_766: datetime
    requested: datetime | None = None
    supplied: datetime | None = None
    requests: int = 0
    completed: datetime | None = None
    closed: datetime | None = None
    apology_at: datetime | None = None
    apology_new_due: datetime | None = None
    apology_timely: bool | None = None
    appointment: datetime | None = None

    def facts(self) -> ClockFacts:
        def d(value):
            return np.array([value if value is not None else NAT], dtype="datetime64[s]")

        return ClockFacts(
            first_due=d(self.first_due),
            legal_due=d(self.legal_due),
            requested=d(self.requested),
            supplied=d(self.supplied),
            requests=np.array([self.requests]),
            completed=d(self.completed),
            closed=d(self.closed),
            appointment=d(self.appointment),
            due_766=d(self.due_766),
        )


def _t(value: datetime) -> np.ndarray:
    return np.array([value], dtype="datetime64[s]")


def verdicts(record: DossierRecord, rules: OneStopRules, now: datetime) -> tuple[bool, bool, bool]:
    """(waiting for the citizen, late on the legal clock, late on the portal's clock) as
    of `now`, or as of the end of processing when it ended before `now`."""
    f, ops = record.facts(), ArrayOps
    ended = record.completed or record.closed
    t = _t(ended if ended is not None and ended <= now else now)
    return (
        bool(waiting_at(f, t, ops)[0]),
        bool(late_at(f, t, ops)[0]),
        bool(late_766(f, t, ops, rules.indicator)[0]),
    )


def explain_dossier(
    cal: WorkCalendar, rules: OneStopRules, record: DossierRecord, now: datetime
) -> list[str]:
    """Why a dossier stands where it does, step by step, each step with its decree and
    article, in Vietnamese: regime, receipt, supplement (and its breaches), restart, due,
    apology, appointment slip, and both clocks."""
    regime = rules.regime(record.regime)
    facts = regime.facts
    lines = [
        f"Quy định áp dụng: {regime.name} — theo ngày tiếp nhận {record.received:%d/%m/%Y} "
        f"({regime.source}).",
        f"Tiếp nhận: {record.received:%H:%M %d/%m/%Y}.",
    ]
    start = record.received
    if regime.next_session_outside_hours and record.limit_unit != "working_hours":
        start = cal.normalize_receipt(record.received).replace(tzinfo=None)
        if start != record.received:
            lines.append(
                f"Ngoài giờ làm việc hoặc ngày nghỉ: tính từ {start:%H:%M %d/%m/%Y} "
                f"({facts['receipt'].cite()}; {cal.explain(record.received.date())})"
            )
    amount = f"{record.limit_value:g} {UNIT_VI[record.limit_unit]}"
    lines.append(
        f"Thời hạn {amount}, tính từ khi tiếp nhận đủ hồ sơ ({facts['counting'].cite()}): "
        f"hạn {when(record.first_due)}."
    )
    if record.limit_unit != "working_hours":
        lines += _skipped_days(cal, start.date(), record.first_due.date())
    if record.requested is not None:
        lines += _supplement_lines(cal, regime, record, now)
    elif record.requests:
        lines.append(f"Số lần yêu cầu bổ sung: {record.requests}.")
    if record.apology_at is not None:
        lines += _apology_lines(regime, record)
    if record.appointment is not None:
        if record.appointment > record.first_due:
            lines.append(
                f"Giấy tiếp nhận hẹn trả {when(record.appointment)}, MUỘN HƠN hạn theo quy định "
                f"tính từ khi tiếp nhận {when(record.first_due)} ({facts['counting'].cite()})."
            )
        else:
            lines.append(
                f"Giấy tiếp nhận hẹn trả {when(record.appointment)}: không muộn hơn hạn theo "
                "quy định."
            )
    waiting, late, late_portal = verdicts(record, rules, now)
    lines += _verdict_lines(rules, record, now, waiting, late, late_portal)
    return lines


def _skipped_days(cal: WorkCalendar, start: date, due: date) -> list[str]:
    return [
        f"  Bỏ qua {cal.explain(start + timedelta(days=k))}"
        for k in range(1, (due - start).days)
        if not cal.is_working_day(start + timedelta(days=k))
    ]


def _supplement_lines(
    cal: WorkCalendar, regime: Regime, record: DossierRecord, now: datetime
) -> list[str]:
    facts = regime.facts
    assert record.requested is not None
    lines = [f"Yêu cầu bổ sung hồ sơ: {record.requested:%H:%M %d/%m/%Y}."]
    if record.requests > regime.max_supplement_requests:
        lines.append(
            f"VI PHẠM: hồ sơ bị yêu cầu bổ sung {record.requests} lần; chỉ được yêu cầu bổ sung "
            f"{regime.max_supplement_requests} lần ({facts['supplement_once'].cite()})."
        )
    limit = regime.supplement_return_working_days
    if limit is not None:
        latest = cal.add_working_days(record.received.date(), limit)
        if record.requested.date() > latest:
            lines.append(
                f"Yêu cầu bổ sung sau {limit} ngày làm việc kể từ ngày tiếp nhận (hạn "
                f"{latest:%d/%m/%Y}; {facts['supplement'].cite()})."
            )
    if record.supplied is not None:
        how = "tính lại từ đầu" if regime.restart_on_supplement else "không tính lại"
        lines.append(
            f"Nhận đủ hồ sơ bổ sung {record.supplied:%H:%M %d/%m/%Y}: thời hạn {how} "
            f"({facts['supplement'].cite()}): hạn {when(record.legal_due)}."
        )
        if regime.restart_on_supplement and record.limit_unit != "working_hours":
            start = record.supplied
            if regime.next_session_outside_hours:
                start = cal.normalize_receipt(record.supplied).replace(tzinfo=None)
            lines += _skipped_days(cal, start.date(), record.legal_due.date())
        return lines
    lines.append(
        "Đang chờ tổ chức, cá nhân bổ sung: thời hạn của cơ quan chưa chạy lại; hồ sơ không "
        "bị tính trễ hạn, không bị đôn đốc và không vào danh sách chậm muộn."
    )
    if record.closed is None and regime.close_after_days is not None:
        close_on = record.requested.date() + timedelta(days=regime.close_after_days)
        if now.date() > close_on:
            lines.append(
                f"Đã quá {regime.close_after_days} ngày kể từ khi yêu cầu bổ sung "
                f"({close_on:%d/%m/%Y}): Bộ phận Một cửa đóng hồ sơ "
                f"({facts['supplement'].cite()})."
            )
        else:
            lines.append(
                f"Nếu không bổ sung trước hết ngày {close_on:%d/%m/%Y}, hồ sơ được đóng "
                f"({facts['supplement'].cite()})."
            )
    return lines


def _apology_lines(regime: Regime, record: DossierRecord) -> list[str]:
    facts = regime.facts
    assert record.apology_at is not None
    new_due = f"; hẹn lại {when(record.apology_new_due)}" if record.apology_new_due else ""
    timing = (
        "kịp thời"
        if record.apology_timely
        else "MUỘN (gửi không sớm hơn ngày hết hạn; vẫn được ghi nhận, tính riêng)"
    )
    before = regime.apology_days_before_due
    return [
        f"Phiếu xin lỗi {record.apology_at:%H:%M %d/%m/%Y}{new_due}: {timing} — phải gửi chậm "
        f"nhất {before} ngày trước ngày hết hạn, chỉ được hẹn lại {regime.max_reschedules} lần "
        f"({facts['apology'].cite()}). Tỉ lệ đúng hạn vẫn so với hạn theo quy định."
    ]


def _verdict_lines(
    rules: OneStopRules,
    record: DossierRecord,
    now: datetime,
    waiting: bool,
    late: bool,
    late_portal: bool,
) -> list[str]:
    ended = record.completed or record.closed
    if record.completed is not None and record.completed <= now:
        head = f"Hoàn thành {record.completed:%H:%M %d/%m/%Y}"
    elif record.closed is not None and record.closed <= now:
        head = f"Trả lại / đóng hồ sơ {record.closed:%H:%M %d/%m/%Y}, không có kết quả"
    else:
        head = f"Đến {now:%H:%M %d/%m/%Y} chưa có kết quả"
        ended = None
    if waiting:
        legal = "đang chờ bổ sung, không tính trễ hạn"
    elif late:
        legal = "trễ hạn"
    else:
        legal = "đúng hạn" if ended is not None else "chưa quá hạn"
    portal = "trễ hạn" if late_portal else "đúng hạn"
    indicator = rules.indicator
    return [
        f"{head}: theo hạn luật định — {legal}.",
        f"Theo chỉ số của Cổng Dịch vụ công quốc gia ({indicator.fact.cite()}): {portal}; "
        f"hạn tính theo chỉ số {when(record.due_766)}"
        + (
            f", bị yêu cầu bổ sung {record.requests} lần"
            if record.requests > indicator.max_requests
            else ""
        )
        + ".",
    ]
