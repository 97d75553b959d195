"""Dossier deadlines (hạn giải quyết hồ sơ TTHC): pure, vectorised, explainable.

A dossier's legal due instant (ngày hẹn trả kết quả) is computed from its procedure's
limit (thời hạn giải quyết) and unit, counted from its receipt — or, after a request for
supplements, from the arrival of the complete dossier (the limit restarts, it does not
pause). The rules and their sources are data: `one_stop.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from deadlines.calendar import WorkCalendar
from deadlines.datafile import load_yaml

RULES_FILE = Path(__file__).with_name("one_stop.yaml")
UNITS = ("working_days", "working_hours", "days")
UNIT_VI = {"working_days": "ngày làm việc", "working_hours": "giờ làm việc", "days": "ngày"}
NAT = np.datetime64("NaT", "s")


@dataclass(frozen=True)
class OneStopRules:
    restart_on_supplement: bool
    max_reschedules: int
    apology_days_before_due: int
    reminder_days_before_due: int
    sources: dict[str, str]

    @classmethod
    def load(cls, path: str | Path | None = None) -> OneStopRules:
        data = load_yaml(path or RULES_FILE)
        return cls(
            restart_on_supplement=bool(data["supplement"]["restarts"]),
            max_reschedules=int(data["apology"]["max_reschedules"]),
            apology_days_before_due=int(data["apology"]["working_days_before_due"]),
            reminder_days_before_due=int(data["reminder"]["working_days_before_due"]),
            sources={key: str(value.get("source", "")) for key, value in data.items()},
        )


def legal_due_many(
    cal: WorkCalendar,
    rules: OneStopRules,
    received: np.ndarray,
    supplement_received: np.ndarray,
    limit_value: np.ndarray,
    limit_unit: np.ndarray,
) -> np.ndarray:
    """Legal due instants (local `datetime64[s]`) for arrays of dossiers.

    `received`, `supplement_received` (NaT when none): local `datetime64[s]`;
    `limit_value`: float array; `limit_unit`: index into `UNITS`.
    """
    received = np.asarray(received, dtype="datetime64[s]")
    supplement = np.asarray(supplement_received, dtype="datetime64[s]")
    counted_from = received
    if rules.restart_on_supplement:
        counted_from = np.where(np.isnat(supplement), received, supplement)
    start, _ = cal.normalize_receipt_many(counted_from)
    start_day = start.astype("datetime64[D]")
    value = np.asarray(limit_value, dtype=np.float64)
    unit = np.asarray(limit_unit, dtype=np.int64)
    close = np.timedelta64(cal.close_of_day_seconds(), "s")
    due = np.empty(received.shape, dtype="datetime64[s]")

    days = unit == UNITS.index("working_days")
    if days.any():
        n = np.rint(value[days]).astype(np.int64)
        due[days] = cal.add_working_days_many(start_day[days], n).astype("datetime64[s]") + close
    calendar_days = unit == UNITS.index("days")
    if calendar_days.any():
        last = start_day[calendar_days] + np.rint(value[calendar_days]).astype("timedelta64[D]")
        due[calendar_days] = cal.next_working_day_many(last).astype("datetime64[s]") + close
    hours = unit == UNITS.index("working_hours")
    if hours.any():
        seconds = np.rint(value[hours] * 3600).astype(np.int64)
        due[hours] = cal.add_working_hours_many(start[hours], seconds)
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
    counted_from = received
    if supplement_received is not None and rules.restart_on_supplement:
        counted_from = supplement_received
    start = cal.normalize_receipt(counted_from).replace(tzinfo=None)
    close = timedelta(seconds=cal.close_of_day_seconds())
    if limit_unit == "working_hours":
        seconds = round(limit_value * 3600)
        return cal.add_working_hours(start, timedelta(seconds=seconds)).replace(tzinfo=None)
    if limit_unit == "days":
        last = cal.next_working_day(start.date() + timedelta(days=round(limit_value)))
    else:
        last = cal.add_working_days(start.date(), round(limit_value))
    return datetime.combine(last, datetime.min.time()) + close


def explain_due(
    cal: WorkCalendar,
    rules: OneStopRules,
    received: datetime,
    supplement_received: datetime | None,
    limit_value: float,
    limit_unit: str,
    apology_new_due: datetime | None = None,
) -> list[str]:
    """Why a dossier is due when it is, step by step, in Vietnamese."""
    lines = [f"Tiếp nhận: {received:%H:%M %d/%m/%Y}."]
    counted_from = received
    if supplement_received is not None and rules.restart_on_supplement:
        counted_from = supplement_received
        lines.append(
            f"Nhận đủ hồ sơ bổ sung {supplement_received:%H:%M %d/%m/%Y}: thời hạn tính lại "
            f"từ đầu ({rules.sources.get('supplement', '')})."
        )
    start = cal.normalize_receipt(counted_from).replace(tzinfo=None)
    if start != counted_from:
        lines.append(
            f"Ngoài giờ làm việc hoặc ngày nghỉ: tính từ {start:%H:%M %d/%m/%Y} "
            f"({cal.explain(counted_from.date())})"
        )
    due = legal_due(cal, rules, received, supplement_received, limit_value, limit_unit)
    amount = f"{limit_value:g} {UNIT_VI[limit_unit]}"
    if limit_unit == "working_days":
        lines.append(
            f"{amount}, không tính ngày tiếp nhận ({rules.sources.get('counting', '')}): "
            f"hạn {due:%H:%M %d/%m/%Y}."
        )
        skipped = [
            start.date() + timedelta(days=k)
            for k in range(1, (due.date() - start.date()).days)
            if not cal.is_working_day(start.date() + timedelta(days=k))
        ]
        for day in skipped:
            lines.append(f"  Bỏ qua {cal.explain(day)}")
    else:
        lines.append(f"{amount}: hạn {due:%H:%M %d/%m/%Y}.")
    if apology_new_due is not None:
        lines.append(
            f"Đã xin lỗi và hẹn lại: {apology_new_due:%H:%M %d/%m/%Y} (chỉ được hẹn lại một lần; "
            f"{rules.sources.get('apology', '')}). Tỉ lệ đúng hạn vẫn so với hạn theo luật."
        )
    return lines
