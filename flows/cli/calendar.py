"""`dunghan calendar …`: look at the working-day calendar from a terminal."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from deadlines.calendar import WEEKDAY_VI, CalendarError, WorkCalendar
from deadlines.datafile import DataFileError

app = typer.Typer(help="Lịch ngày làm việc Việt Nam: ngày nghỉ, ngày làm bù, cộng ngày làm việc.")

OverridesOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--overrides",
        help="Tệp YAML ngày nghỉ/ngày làm việc riêng của tỉnh (có thể dùng nhiều lần). "
        "Mặc định: biến môi trường DUNGHAN_CALENDAR_OVERRIDES.",
    ),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print a user-facing error on stderr and return the exit to raise."""
    typer.echo(message, err=True)
    return typer.Exit(code)


def load_calendar(overrides: list[Path] | None) -> WorkCalendar:
    try:
        if overrides:
            return WorkCalendar.vietnam(overrides)
        return WorkCalendar.from_settings()
    except DataFileError as exc:
        raise fail(f"Tệp lịch không hợp lệ:\n{exc}") from None


def parse_day(text: str, what: str = "ngày") -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise fail(f"{what} không hợp lệ: {text!r} (cần dạng YYYY-MM-DD).") from None


def guarded(func, *args):
    try:
        return func(*args)
    except CalendarError as exc:
        raise fail(str(exc)) from None


@app.command("show")
def show(year: int, overrides: OverridesOption = None) -> None:
    """Các ngày nghỉ rơi vào ngày thường và các ngày cuối tuần phải đi làm của một năm."""
    cal = load_calendar(overrides)
    notes = guarded(cal.exceptions, year)
    rows = [
        (
            f"{n.day:%d/%m/%Y}",
            WEEKDAY_VI[n.day.weekday()],
            "Làm việc" if n.working else "Nghỉ",
            n.name + ("" if n.confirmed else " (chưa xác nhận)"),
            n.source,
        )
        for n in notes
    ]
    header = ("Ngày", "Thứ", "Loại", "Tên", "Nguồn")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    typer.echo(f"Lịch ngày làm việc năm {year} — ngày khác với tuần làm việc thứ Hai–thứ Sáu")
    typer.echo("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=False)) + "  Nguồn")
    typer.echo("  ".join("-" * w for w in widths) + "  " + "-" * 5)
    for row in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[4])
    total = cal.count_working_days(date(year, 1, 1), date(year, 12, 31))
    days_off = sum(1 for n in notes if not n.working)
    worked = sum(1 for n in notes if n.working)
    typer.echo(
        f"Tổng cộng: {total} ngày làm việc; {days_off} ngày nghỉ rơi vào ngày thường; "
        f"{worked} ngày cuối tuần đi làm."
    )


@app.command("add")
def add(start: str, n: int, overrides: OverridesOption = None) -> None:
    """Ngày làm việc thứ N sau START (không tính ngày START; N âm: trước START)."""
    cal = load_calendar(overrides)
    typer.echo(guarded(cal.add_working_days, parse_day(start), n).isoformat())


@app.command("count")
def count(start: str, end: str, overrides: OverridesOption = None) -> None:
    """Số ngày làm việc từ START đến END, tính cả hai đầu."""
    cal = load_calendar(overrides)
    typer.echo(guarded(cal.count_working_days, parse_day(start), parse_day(end)))


@app.command("explain")
def explain(day: str, overrides: OverridesOption = None) -> None:
    """Vì sao một ngày là ngày làm việc hay ngày nghỉ, kèm văn bản căn cứ."""
    cal = load_calendar(overrides)
    typer.echo(guarded(cal.explain, parse_day(day)))
