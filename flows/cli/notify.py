"""`dunghan outbox send|list|retry` and `dunghan ics AGENCY`: the outbox from a terminal.

The same functions the flows call (`notifications.delivery.deliver_pending`); every error
a person can cause gets a Vietnamese message on stderr, never a traceback or a password.
"""

from __future__ import annotations

import signal
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import Engine

from flows.cli.calendar import fail
from flows.cli.engine import open_context, user_errors
from models.db import make_engine, migrate, session_scope
from models.store import utcnow
from notifications.compose import VIETNAM_TIME
from notifications.delivery import (
    DeliveryReport,
    StopRequested,
    deliver_pending,
    write_atomically,
)
from notifications.outbox import Status, list_messages, requeue_failed, status_counts
from notifications.queries import agency_calendar
from notifications.settings import MailSettings, SettingsError

outbox_app = typer.Typer(
    help="Hàng đợi thư (outbox): gửi thư đang chờ, xem thư lỗi, đưa thư lỗi vào gửi lại.",
    no_args_is_help=True,
)

STATUS_LABELS = {
    Status.PENDING: "chờ gửi",
    Status.SENDING: "đang gửi",
    Status.SENT: "đã gửi",
    Status.FAILED: "lỗi",
}
KIND_LABELS = {
    "digest": "tổng hợp",
    "escalation": "đôn đốc",
    "confirmation": "xác nhận",
    "dossier_reminder": "nhắc hồ sơ",
    "dossier_at_risk": "hồ sơ trễ",
    "scorecard": "đánh giá",
}


def mail_settings() -> MailSettings:
    try:
        return MailSettings.from_env()
    except SettingsError as exc:
        raise fail(str(exc)) from None


def open_database() -> Engine:
    with user_errors():
        engine = make_engine()
        migrate(engine)
        return engine


def _local(moment: datetime | None) -> str:
    return f"{moment.astimezone(VIETNAM_TIME):%d/%m/%Y %H:%M}" if moment else ""


def _print_counts(engine: Engine) -> dict[str, int]:
    counts = status_counts(engine)
    typer.echo(
        "Hàng đợi: " + ", ".join(f"{counts[s]} {STATUS_LABELS[s]}" for s in Status.ALL) + "."
    )
    return counts


def deliver(engine: Engine, settings: MailSettings, *, batch_size: int = 200) -> DeliveryReport:
    """Deliver the outbox; stopped by Ctrl-C or SIGTERM, give back the messages not yet
    tried (they go out at the next run, not after the lease) and say so."""

    def stop(_signal, _frame):
        raise StopRequested

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return deliver_pending(engine, settings=settings, batch_size=batch_size)
    except (KeyboardInterrupt, StopRequested) as stopped:
        done = getattr(stopped, "delivery_report", None) or DeliveryReport()
        typer.echo(
            f"Đã dừng theo yêu cầu: {done.sent} thư đã gửi; {done.released} thư chưa gửi "
            "được trả lại hàng đợi, sẽ gửi ở lần chạy sau.",
            err=True,
        )
        raise typer.Exit(143 if isinstance(stopped, StopRequested) else 130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)


@outbox_app.command("send")
def send(
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, help="Số thư mỗi lần kết nối máy chủ.")
    ] = 200,
) -> None:
    """Gửi các thư đang chờ: qua SMTP (DUNGHAN_SMTP_HOST…), hoặc ghi tệp .eml vào
    var/outbox nếu chưa cấu hình SMTP. Thư lỗi tạm thời được tự gửi lại sau."""
    settings = mail_settings()
    engine = open_database()
    with user_errors():
        report = deliver(engine, settings, batch_size=batch_size)
        typer.echo(report.summary())
        counts = _print_counts(engine)
    if counts[Status.FAILED]:
        typer.echo("Xem thư lỗi: dunghan outbox list --status failed")
    if report.error:
        raise typer.Exit(1)


@outbox_app.command("list")
def list_command(
    status: Annotated[
        str | None,
        typer.Option("--status", help="Chỉ thư có trạng thái: pending, sending, sent, failed."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Số thư tối đa.")] = 50,
) -> None:
    """Các thư mới nhất trong hàng đợi, kèm lỗi máy chủ trả về (nếu có)."""
    if status is not None and status not in Status.ALL:
        raise fail(f"--status không hợp lệ: {status!r} (chọn {', '.join(Status.ALL)}).")
    engine = open_database()
    with user_errors():
        entries = list_messages(engine, status=status, limit=limit)
        _print_counts(engine)
    if not entries:
        typer.echo("Không có thư nào" + (f" ở trạng thái {status}." if status else "."))
        return
    typer.echo(
        f"{'Số':>6}  {'Trạng thái':10}  {'Loại':9}  {'Lần':>3}  {'Thời điểm':16}  Người nhận"
    )
    for e in entries:
        moment = e.sent_at if e.status == Status.SENT else e.next_attempt_at
        if e.status == Status.FAILED:
            moment = None
        typer.echo(
            f"{e.id:>6}  {STATUS_LABELS.get(e.status, e.status):10}  "
            f"{KIND_LABELS.get(e.kind, e.kind):9}  {e.attempts:>3}  {_local(moment):16}  "
            f"{e.recipient}"
        )
        typer.echo(f"{'':8}{e.subject}")
        if e.last_error:
            typer.echo(f"{'':8}Lỗi: {e.last_error}")
    if status == Status.FAILED:
        typer.echo("Sau khi sửa nguyên nhân: dunghan outbox retry SỐ… (hoặc --all).")


@outbox_app.command("retry")
def retry(
    ids: Annotated[list[int] | None, typer.Argument(help="Số thư lỗi cần gửi lại.")] = None,
    all_failed: Annotated[bool, typer.Option("--all", help="Gửi lại mọi thư lỗi.")] = False,
) -> None:
    """Đưa thư lỗi trở lại hàng đợi (sau khi đã sửa địa chỉ hoặc cấu hình máy chủ)."""
    if not ids and not all_failed:
        raise fail("Cần số thư (xem `dunghan outbox list --status failed`) hoặc --all.")
    engine = open_database()
    with user_errors():
        count = requeue_failed(engine, None if all_failed else ids, now=utcnow())
    typer.echo(f"Đã đưa {count} thư lỗi trở lại hàng đợi; gửi bằng `dunghan outbox send`.")


def ics(
    agency: Annotated[str, typer.Argument(help="Mã cơ quan (xem `dunghan agencies`).")],
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", help="Tệp .ics ghi ra (mặc định MÃ.ics; '-': in ra)."),
    ] = None,
) -> None:
    """Ghi lịch (.ics) các hạn đang mở của một cơ quan, để đăng ký trong phần mềm lịch."""
    ctx = open_context()
    with user_errors():
        code = ctx.agency(agency).code
        with session_scope(ctx.db) as session:
            text, count = agency_calendar(session, code, stamp=utcnow())
    if output == "-":
        sys.stdout.write(text)
        return
    target = Path(output or f"{code}.ics")
    try:
        write_atomically(target, text.encode("utf-8"))
    except OSError as exc:
        raise fail(f"Không ghi được tệp {target}: {exc.strerror or exc}") from None
    typer.echo(f"Đã ghi {count} hạn đang mở của {ctx.agency_name(code)} vào {target}.")


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.add_typer(outbox_app, name="outbox")
    app.command("ics")(ics)
