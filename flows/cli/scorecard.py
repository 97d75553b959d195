"""`dunghan scorecard`: the monthly scorecard from a terminal.

The same steps as the `monthly-scorecard` flow (measure, write the HTML report, queue its
email to the provincial office) without the Prefect artifact; every error a person can
cause gets a Vietnamese message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.calendar import fail
from flows.cli.engine import open_context, user_errors
from flows.parameters import ParameterError, today_in_vietnam


def scorecard(
    month: Annotated[
        str | None,
        typer.Option("--month", help="Tháng (YYYY-MM); mặc định: tháng trước."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="Thư mục ghi báo cáo HTML; mặc định: var/reports (DUNGHAN_REPORTS_DIR).",
        ),
    ] = None,
    no_email: Annotated[
        bool, typer.Option("--no-email", help="Chỉ ghi báo cáo, không gửi thư.")
    ] = False,
    plan: Annotated[
        str | None,
        typer.Option(
            "--plan", help="Mã kế hoạch có chỉ tiêu dùng để so; mặc định: kế hoạch của tháng đó."
        ),
    ] = None,
) -> None:
    """Bảng đánh giá tháng: báo cáo HTML, danh sách chậm muộn (V.7), thư gửi VP UBND tỉnh.

    Báo cáo gồm biểu đồ tỷ lệ đúng hạn theo cơ quan và qua các tháng, các chỉ số một cửa
    so với chỉ tiêu của kế hoạch. Chạy lại không gửi thư lần thứ hai."""
    # Imported on use: the flow module imports Prefect, which other commands do not need.
    from flows.reports.artifacts import reports_dir
    from flows.reports.scorecard import check_month, make_scorecard, month_label, summary

    today = today_in_vietnam()
    try:
        wanted = check_month(month, today)
    except ParameterError as exc:
        raise fail(str(exc)) from None
    directory = output or reports_dir()
    ctx = open_context()
    with user_errors():
        try:
            card, run = make_scorecard(ctx, wanted, directory, today, email=not no_email, plan=plan)
        except OSError as exc:
            raise fail(f"Không ghi được báo cáo vào {directory}: {exc.strerror or exc}") from None
    typer.echo(f"Bảng đánh giá tháng {month_label(wanted)}: {run.path}")
    typer.echo(summary(card))
    if no_email:
        return
    if run.recipient is None:
        typer.echo("Danh bạ không có địa chỉ email của Văn phòng UBND tỉnh: chưa gửi thư.")
    elif run.emailed:
        typer.echo(f"Đã đưa thư gửi {run.recipient} vào hàng đợi (gửi bằng `dunghan outbox send`).")
    else:
        typer.echo(f"Thư báo cáo tháng {card.label} đã có trong hàng đợi; không gửi lại.")


def register(app: typer.Typer) -> None:
    app.command("scorecard")(scorecard)
