"""`dunghan serve`, `deployments write`, `inspect`, `recompute`: the Prefect side from a
terminal, and the two review actions (the same functions the flows call) without Prefect.

Prefect is imported only by the commands that need it (`serve`, `deployments write`), so
the others start as fast as the rest of the CLI.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.calendar import fail, parse_day
from flows.cli.engine import DateOption, PlanOption, open_context, user_errors
from flows.local_server import (
    DEFAULT_PORT,
    WAIT_ENV,
    LocalServer,
    LocalServerError,
    first_to_exit,
    local_server,
    prefect_home,
    served,
    wait_for_api,
    wait_until_healthy,
)
from flows.parameters import today_in_vietnam
from flows.reports.artifacts import (
    inspection_lines,
    recompute_lines,
    reports_dir,
    write_inspection_html,
)
from flows.reports.review import compliance_report
from flows.reports.review import recompute as recompute_dues

deployments_app = typer.Typer(help="Các deployment Prefect sinh từ kế hoạch đang nạp.")


def quiet_prefect(*, logs: bool) -> None:
    """No telemetry calls from this process or those it starts (the server's setting, and
    the SDK's, which otherwise prints a notice in a terminal); with `logs=False`, none of
    Prefect's INFO chatter either. `serve` keeps its logs: they are the flow runs' logs in
    the UI. Before Prefect is imported: it reads them once."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
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
    local: Annotated[
        bool,
        typer.Option(
            "--local",
            help="Tự chạy máy chủ Prefect cục bộ kèm giao diện (dữ liệu trong var/prefect); "
            "Ctrl+C dừng cả hai.",
        ),
    ] = False,
    port: Annotated[
        int,
        typer.Option("--port", help="Cổng của máy chủ cục bộ (với --local).", min=1, max=65535),
    ] = DEFAULT_PORT,
) -> None:
    """Phục vụ mọi deployment (từng nhiệm vụ, quét hằng ngày, quản trị) trên Prefect API."""
    quiet_prefect(logs=True)
    if local:
        serve_with_local_server(port, limit, keep_stale)
        return
    from prefect.settings import Settings

    if not Settings().api.url:
        # A temporary server would vanish with this process, UI and run history included.
        raise fail(
            "Chưa cấu hình Prefect API. Dùng `dunghan serve --local` (hoặc `make serve`) để "
            "chạy kèm máy chủ cục bộ, hoặc chạy máy chủ Prefect (`prefect server start`) "
            "rồi đặt PREFECT_API_URL, ví dụ: export PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    serve_deployments(limit, keep_stale)


def serve_deployments(limit: int, keep_stale: bool) -> None:
    """Register every deployment with the configured API (only what changed since the
    last start), queue a run of the plan's status, then run what is due until stopped
    (SIGTERM: Prefect's runner cancels the runs in progress and pauses the deployments'
    schedules)."""
    import asyncio

    from prefect.settings import Settings

    from flows.deployments import STATUS_NAME, build_deployments, load_reference, prune_stale
    from flows.serving import Registration
    from flows.serving import serve as serve_all

    with user_errors():
        deployments = build_deployments(load_reference())
    if wait := os.environ.get(WAIT_ENV):
        api_url = Settings().api.url
        if not wait_for_api(api_url, float(wait)):
            raise fail(f"Prefect API {api_url} không trả lời sau {wait} giây.", code=3)
    if not keep_stale:
        for name in prune_stale(deployments):
            typer.echo(f"Đã xóa deployment không còn trong kế hoạch: {name}")
    ui_url = Settings().ui_url

    def ready(registration: Registration) -> None:
        typer.echo(
            f"Sẵn sàng: {len(deployments)} deployment đã đăng ký trong "
            f"{registration.seconds:.1f} giây ({registration.written} mới hoặc thay đổi, "
            f"{registration.kept} giữ nguyên); mỗi deployment chạy khi đến lịch. "
            "Dừng bằng Ctrl+C."
        )
        if ui_url:
            typer.echo(
                f"Tình hình kế hoạch: {ui_url}/artifacts/key/plan-status · "
                f"deployment: {ui_url}/deployments"
            )

    asyncio.run(serve_all(deployments, limit=limit, first_run=STATUS_NAME, announce=ready))


def serve_with_local_server(port: int, limit: int, keep_stale: bool) -> None:
    """`serve --local`: a Prefect server on 127.0.0.1:`port` and `dunghan serve` against
    it, as children; Ctrl-C (or SIGTERM, SIGHUP) stops the serving, then the server."""
    home = prefect_home()
    for sig in STOP_SIGNALS:
        signal.signal(sig, stop_requested)
    typer.echo(f"Khởi động máy chủ Prefect cục bộ (dữ liệu: {home})…")
    code = 0
    try:
        with local_server(port, home, wait=False) as server:
            options = ["--limit", str(limit), *(["--keep-stale"] if keep_stale else [])]
            # Serving loads the plan and builds the deployments while the server starts.
            with served(server, options) as serving:
                wait_until_healthy(server)
                typer.echo(f"Giao diện Prefect: {server.url}  (nhật ký máy chủ: {server.log})")
                code = wait_until_stopped(serving, server)
    except LocalServerError as exc:
        raise fail(str(exc), code=3) from None
    except KeyboardInterrupt:
        pass
    typer.echo("Đã dừng.")
    if code:
        raise typer.Exit(code)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def stop_requested(_signum: int, _frame: object) -> None:
    """The first request interrupts the wait; later ones cannot interrupt the stopping."""
    ignore_stop_signals()
    raise KeyboardInterrupt


def ignore_stop_signals() -> None:
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def wait_until_stopped(serving: subprocess.Popen, server: LocalServer) -> int:
    """Wait for a stop request, or for either child to end on its own; the exit code."""
    try:
        ended = first_to_exit(serving, server.process)
    except KeyboardInterrupt:
        typer.echo("\nĐang dừng: hủy các lần chạy dở, tạm dừng lịch chạy, dừng máy chủ…")
        return 0
    ignore_stop_signals()
    if ended is server.process:
        typer.echo(server.failure(), err=True)
        return 3
    # A child killed by a signal: the shell's convention, 128 + the signal's number.
    return serving.returncode if serving.returncode >= 0 else 128 - serving.returncode


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
    plan: PlanOption = None,
) -> None:
    """Kiểm tra một cơ quan: đúng hạn, trễ hạn, đang mở, quá hạn, bậc đôn đốc; ghi HTML.

    Việc của mọi kế hoạch đã nạp, hoặc của kế hoạch --plan (--section cần --plan khi có
    nhiều kế hoạch)."""
    start, end = parse_day(from_, "--from"), parse_day(to, "--to")
    as_of = parse_day(date_) if date_ else today_in_vietnam()
    ctx = open_context()
    with user_errors():
        report = compliance_report(ctx, agency, start, end, as_of, section, plan)
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
