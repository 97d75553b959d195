"""`dunghan due "<cụm thời hạn>"`: what a timing phrase means and when it is due, as JSON."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from deadlines.calendar import CalendarError
from deadlines.datafile import DataFileError
from deadlines.phrases import PhraseError, parse_timing
from deadlines.rules import RuleDataError, RuleSettings, due_dates_for
from flows.cli.calendar import OverridesOption, fail, load_calendar, parse_day


def due(
    phrase: Annotated[
        str, typer.Argument(help='Cụm thời hạn, ví dụ "Quý III/2025" hoặc "Hàng tháng".')
    ],
    event: Annotated[
        str | None,
        typer.Option(
            "--event",
            help="Ngày xảy ra sự kiện mốc (YYYY-MM-DD), cho cụm dạng 'Sau N ngày làm việc kể "
            "từ ngày …' hoặc 'Ngay sau khi …'.",
        ),
    ] = None,
    year: Annotated[
        int | None,
        typer.Option(
            "--year",
            help="Năm cần liệt kê hạn của cụm lặp lại, cũng là năm kế hoạch cho cụm không nêu "
            "năm ('Trong năm'). Mặc định: năm hiện tại. Cụm có năm riêng dùng năm của nó.",
        ),
    ] = None,
    settings: Annotated[
        Path | None,
        typer.Option(
            "--settings", help="Tệp YAML thiết lập hạn (monthly_due, immediately_working_days…)."
        ),
    ] = None,
    overrides: OverridesOption = None,
) -> None:
    """Quy tắc thời hạn của một cụm và các ngày hạn của nó, in dạng JSON."""
    year = date.today().year if year is None else year
    if not 1 <= year <= 9999:
        raise fail(f"Năm không hợp lệ: {year} (--year).")
    event_date = parse_day(event, "Ngày sự kiện (--event)") if event is not None else None
    try:
        rule_settings = RuleSettings.from_yaml(settings) if settings else None
    except (DataFileError, RuleDataError) as exc:
        raise fail(f"Tệp thiết lập không hợp lệ:\n{exc}") from None
    try:
        rule = parse_timing(phrase, plan_year=year, settings=rule_settings)
    except PhraseError as exc:
        raise fail(str(exc)) from None
    cal = load_calendar(overrides)
    try:
        dues = due_dates_for(rule, cal, year=year, event_date=event_date)
    except CalendarError as exc:
        raise fail(str(exc)) from None
    output = {"rule": rule.to_dict(), "due": [d.isoformat() for d in dues]}
    typer.echo(json.dumps(output, ensure_ascii=False))
