"""The `dunghan` command line: one Typer app, each command group in its own module."""

from __future__ import annotations

import typer

from flows import cli_calendar

app = typer.Typer(
    name="dunghan",
    help="dunghan (đúng hạn): hạn xử lý theo ngày làm việc Việt Nam, nhắc hạn và báo cáo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(cli_calendar.app, name="calendar")


def main() -> None:
    app()
