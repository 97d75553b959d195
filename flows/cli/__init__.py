"""The `dunghan` command line: one Typer app, each command group in its own module."""

from __future__ import annotations

import typer

from flows.cli import calendar as cli_calendar
from flows.cli import dossiers as cli_dossiers
from flows.cli import due as cli_due
from flows.cli import engine as cli_engine
from flows.cli import notify as cli_notify
from flows.cli import plan as cli_plan
from flows.cli import scorecard as cli_scorecard
from flows.cli import serve as cli_flows

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
