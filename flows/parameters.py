"""Checking what a person asked for (flow parameters, command options) before acting on it.

Every refusal is a `ParameterError` (an `EngineError`) whose Vietnamese message names the
parameter, what was wrong and what to give instead. No Prefect here: the terminal commands
use the same checks without paying for Prefect's import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from deadlines.calendar import CalendarError
from deadlines.plan import Plan
from flows.engine import EngineContext, EngineError

TIMEZONE = "Asia/Ho_Chi_Minh"

# SweepRun.partition holds at most this many characters.
PARTITION_LENGTH = 64


class ParameterError(EngineError):
    """A parameter a person got wrong; the message says which and what to give."""


def today_in_vietnam() -> date:
    """The date in the province: the one clock read of a run."""
    return datetime.now(ZoneInfo(TIMEZONE)).date()


def parse_day(text: str | None, what: str) -> date:
    """A YYYY-MM-DD parameter; None or empty means today (in Vietnam)."""
    if text is None or not str(text).strip():
        return today_in_vietnam()
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        raise ParameterError(
            f"Tham số {what} không hợp lệ: {text!r}. Cần ngày dạng YYYY-MM-DD, ví dụ 2025-03-24."
        ) from None


def check_day(ctx: EngineContext, day: date, what: str) -> date:
    """`day`, if the working-day calendar covers it."""
    try:
        ctx.cal.is_working_day(day)
    except CalendarError as exc:
        raise ParameterError(f"Tham số {what}: {exc}") from None
    return day


def check_range(start: date, end: date) -> None:
    if end < start:
        raise ParameterError(
            f"Khoảng ngày không hợp lệ: ngày kết thúc {end:%d/%m/%Y} trước ngày bắt đầu "
            f"{start:%d/%m/%Y}."
        )


def check_agencies(ctx: EngineContext, codes: Sequence[str] | str | None) -> list[str] | None:
    """The agency codes, each known to the registry (None: every agency)."""
    if codes is None:
        return None
    if isinstance(codes, str):
        codes = [codes]
    if not codes:
        raise ParameterError(
            "Tham số agencies rỗng: bỏ trống để quét mọi cơ quan, hoặc nêu ít nhất một mã."
        )
    return [ctx.agency(code).code for code in codes]


def section_code(part: str, number: str) -> str:
    """How an operator names a plan section: appendix sections by their Roman numeral
    ("III"), sections of the plan's body prefixed like their obligations ("B.III")."""
    return number if part == "appendix" else f"B.{number}"


def check_section(plan: Plan, code: str | None) -> str | None:
    """A known plan section code, or None for the whole plan."""
    if code is None or not code.strip():
        return None
    known = [section_code(s.part, s.number) for s in plan.sections]
    wanted = code.strip()
    for candidate in known:
        if candidate.upper() == wanted.upper():
            return candidate
    raise ParameterError(
        f"Không có mục '{code}' trong kế hoạch. Các mục hợp lệ: {', '.join(known)} "
        "(B.… là các mục của phần nội dung Kế hoạch)."
    )


def partition_label(
    numbers: Sequence[str] | None, agencies: Sequence[str] | None, plan: str | None = None
) -> str:
    """A short label saying which part of the work a sweep covered ('' for all of it)."""
    parts = []
    if plan is not None:
        parts.append(f"plan:{plan}")
    if numbers is not None:
        parts.append("obligations:" + ",".join(numbers))
    if agencies is not None:
        parts.append("agencies:" + ",".join(sorted(agencies)))
    label = ";".join(parts)
    if len(label) <= PARTITION_LENGTH:
        return label
    digest = hashlib.sha1(label.encode()).hexdigest()[:12]
    return f"{label[: PARTITION_LENGTH - len(digest) - 1]}~{digest}"
