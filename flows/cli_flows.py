"""`dunghan serve`, `deployments write`, `inspect`, `recompute`: the Prefect side from a
terminal, and the two review actions (the same functions the flows call) without Prefect.

Prefect is imported only by the commands that need it (`serve`, `deployments write`), so
the others start as fast as the rest of the CLI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from flows.artifacts import (
    inspection_lines,
    recompute_lines,
    reports_dir,
    write_inspection_html,
)
from flows.cli_calendar import fail, parse_day
from flows.cli_engine import DateOption, open_context, user_errors
from flows.parameters import today_in_vietnam
from flows.review import compliance_report
from flows.review import recompute as recompute_dues

deployments_app = typer.Typer(help="Các deployment Prefect sinh từ kế hoạch đang nạp.")


def quiet_prefect(*, logs: bool) -> None:
    """No telemetry calls from this process; with `logs=False`, none of Prefect's INFO
    chatter either. `serve` keeps its logs: they are the flow runs' logs in the UI."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not logs:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def serve(
    limit: Annotated[int, typer.Option("--limit", help="Số lần chạy đồng thời tối đa.", min=1)] = 4,
    keep_stale: Annotated[
        bool,
        typer.Option(
            "--keep-stale",
            help="Giữ các deployment nhiệm vụ không còn trong kế hoạch (mặc định: xóa).",
        ),
    ] = False,
) -> None:
    """Phục vụ mọi deployment (từng nhiệm vụ, quét hằng ngày, quản trị) trên Prefect API."""
    quiet_prefect(logs=True)
    from prefect import serve as prefect_serve
    from prefect.settings import Settings

    from flows.deployments import build_deployments, load_reference, prune_stale

    if not Settings().api.url:
        # A temporary server would vanish with this process, UI and run history included.
        raise fail(
            "Chưa cấu hình Prefect API. Chạy máy chủ Prefect (ví dụ `prefect server start`) "
            "rồi đặt PREFECT_API_URL, ví dụ: export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    with user_errors():
        deployments = build_deployments(load_reference())
    if not keep_stale:
        for name in prune_stale(deployments):
            typer.echo(f"Đã xóa deployment không còn trong kế hoạch: {name}")
    typer.echo(f"Phục vụ {len(deployments)} deployment. Dừng bằng Ctrl+C.")
    prefect_serve(*deployments, limit=limit)


@deployments_app.command("write")
def deployments_write(
    output: Annotated[Path, typer.Option("--output", help="Tệp prefect.yaml cần ghi.")] = Path(
        "prefect.yaml"
    ),
) -> None:
    """Ghi prefect.yaml: đúng các deployment mà `dunghan serve` phục vụ."""
    quiet_prefect(logs=False)
    from flows.deployments import build_deployments, load_reference, write_prefect_yaml

    with user_errors():
        deployments = build_deployments(load_reference())
    write_prefect_yaml(output, deployments)
    scheduled = sum(1 for d in deployments if d.schedules)
    triggered = sum(1 for d in deployments if d.triggers)
    typer.echo(
        f"Đã ghi {output}: {len(deployments)} deployment ({scheduled} có lịch chạy, "
        f"{triggered} chạy khi ghi nhận sự kiện)."
    )


def inspect(
    agency: Annotated[str, typer.Option("--agency", help="Mã cơ quan được kiểm tra.")],
    from_: Annotated[str, typer.Option("--from", help="Hạn từ ngày (YYYY-MM-DD).")],
    to: Annotated[str, typer.Option("--to", help="Hạn đến ngày (YYYY-MM-DD).")],
    section: Annotated[
        str | None, typer.Option("--section", help="Mục của kế hoạch, ví dụ X hoặc B.III.")
    ] = None,
    date_: DateOption = None,
    output_dir: Annotated[
        Path | None,
        typer.Option("--output-dir", help="Thư mục ghi báo cáo HTML (mặc định var/reports)."),
    ] = None,
) -> None:
    """Kiểm tra một cơ quan: đúng hạn, trễ hạn, đang mở, quá hạn, bậc đôn đốc; ghi HTML."""
    start, end = parse_day(from_, "--from"), parse_day(to, "--to")
    as_of = parse_day(date_) if date_ else today_in_vietnam()
    ctx = open_context()
    with user_errors():
        report = compliance_report(ctx, agency, start, end, as_of, section)
    path = write_inspection_html(report, output_dir or reports_dir())
    for line in inspection_lines(report):
        typer.echo(line)
    typer.echo(f"Báo cáo HTML: {path}")


def recompute(
    date_: DateOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Chỉ báo cáo, không ghi thay đổi.")
    ] = False,
) -> None:
    """Tính lại hạn việc đang mở theo lịch, quy tắc hiện hành; in hạn cũ → hạn mới, lý do."""
    today = parse_day(date_) if date_ else today_in_vietnam()
    ctx = open_context()
    with user_errors():
        ctx.cal.is_working_day(today)
        result = recompute_dues(ctx, today, dry_run=dry_run, actor="cli")
    for line in recompute_lines(result):
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("serve")(serve)
    app.add_typer(deployments_app, name="deployments")
    app.command("inspect")(inspect)
    app.command("recompute")(recompute)
