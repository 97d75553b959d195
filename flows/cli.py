"""The `dunghan` command line: one Typer app, each command group in its own module."""

from __future__ import annotations

import typer

from flows import (
    cli_calendar,
    cli_dossiers,
    cli_due,
    cli_engine,
    cli_flows,
    cli_notify,
    cli_plan,
    cli_scorecard,
)

app = typer.Typer(
    name="dunghan",
    help="dunghan (đúng hạn): hạn xử lý theo ngày làm việc Việt Nam, nhắc hạn và báo cáo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(cli_calendar.app, name="calendar")
app.command("agencies")(cli_plan.agencies)
app.add_typer(cli_plan.plan_app, name="plan")
app.command("due")(cli_due.due)
cli_engine.register(app)
cli_dossiers.register(app)
cli_notify.register(app)
cli_flows.register(app)
cli_scorecard.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
