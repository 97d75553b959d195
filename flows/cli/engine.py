"""`dunghan run`, `simulate`, `items`, `event …`, `item …`: the engine from a terminal.

The same engine functions the Prefect flows call; every error a person can cause gets a
Vietnamese message on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from datetime import date
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from deadlines.calendar import CalendarError
from deadlines.datafile import DataFileError
from flows.cli.calendar import fail, parse_day
from flows.engine import (
    EngineContext,
    EngineError,
    SweepResult,
    complete_item,
    event_types,
    record_event,
    sweep,
    waive_item,
    working_days_left,
)
from models.db import redact, session_scope
from models.tables import DeadlineItem, ItemStatus, Obligation
from models.tables import Plan as PlanRow

DateOption = Annotated[
    str | None, typer.Option("--date", help="Ngày chạy (YYYY-MM-DD); mặc định: hôm nay.")
]


@contextmanager
def user_errors():
    """Turn the errors a user can cause into a clear message and exit code 2."""
    try:
        yield
    except (EngineError, CalendarError, DataFileError) as exc:
        raise fail(str(exc)) from None
    except OperationalError as exc:
        message = redact(str(exc.orig)) if exc.orig else "lỗi cơ sở dữ liệu"
        raise fail(f"Không truy cập được cơ sở dữ liệu: {message}", code=3) from None


def open_context() -> EngineContext:
    with user_errors():
        return EngineContext.open()


def print_sweep(ctx: EngineContext, result: SweepResult) -> None:
    day = f"{result.run_date:%d/%m/%Y}"
    if result.skipped_reason:
        typer.echo(f"Ngày {day} không quét: {result.skipped_reason}")
        typer.echo("Dùng --force để quét cả ngày nghỉ.")
        return
    typer.echo(f"Quét hạn ngày {day} — {'; '.join(p.meta.label for p in ctx.plans.values())}")
    typer.echo(f"  Việc mới tạo: {result.created}")
    if result.transferred:
        typer.echo(f"  Việc chuyển cho cơ quan kế thừa: {result.transferred}")
    typer.echo(f"  Việc đến hạn hôm nay: {result.due_today}")
    overdue = sum(result.overdue_by_step.values())
    typer.echo(f"  Việc quá hạn chưa hoàn thành: {overdue}")
    for step in ctx.ladder.steps:
        if result.overdue_by_step.get(step.code):
            typer.echo(f"    - {step.name}: {result.overdue_by_step[step.code]}")
    new = [e for e in result.escalations]
    typer.echo(f"  Bậc đôn đốc mới đạt: {len(new)} (gửi thông báo: {sum(e.notified for e in new)})")
    typer.echo(f"  Thư đưa vào hàng đợi: {result.notifications}")
    if result.overdue_by_agency:
        typer.echo("  Cơ quan có việc quá hạn nhiều nhất:")
        for _, name, count in result.overdue_by_agency[:5]:
            typer.echo(f"    - {name}: {count}")
    alerts = result.dossiers
    if alerts and (alerts.reminders or alerts.late_without_apology or alerts.awaiting_supplement):
        typer.echo(
            f"  Hồ sơ TTHC đến hạn ngày làm việc tới: {sum(alerts.reminders.values())}; "
            f"có nguy cơ trễ hạn chưa xin lỗi: {sum(alerts.at_risk.values())}; "
            f"chờ công dân bổ sung (không tính trễ hạn): "
            f"{sum(alerts.awaiting_supplement.values())}"
        )
        late = sorted(alerts.late_without_apology.items(), key=lambda kv: (-kv[1], kv[0]))
        if late:
            typer.echo("  Hồ sơ trễ hạn chưa có phiếu xin lỗi, theo cơ quan:")
            for code, count in late:
                typer.echo(f"    - {ctx.agency_name(code)}: {count}")


def run(
    date_: DateOption = None,
    force: bool = typer.Option(False, "--force"),
    deliver: bool = typer.Option(
        True,
        "--deliver/--no-deliver",
        help="Gửi thư trong hàng đợi sau khi quét (mặc định), hoặc chỉ đưa vào hàng đợi.",
    ),
) -> None:
    """Quét hạn một ngày: tạo việc, xét bậc đôn đốc, đưa thư vào hàng đợi và gửi đi (như
    luồng quét hằng ngày), in tóm tắt."""
    from flows.cli.notify import deliver as deliver_outbox
    from flows.cli.notify import mail_settings

    today = parse_day(date_) if date_ else date.today()
    settings = mail_settings() if deliver else None  # a bad mail setting stops us first
    ctx = open_context()
    with user_errors():
        result = sweep(ctx, today, force=force, actor="cli")
        print_sweep(ctx, result)
        if settings is not None and not result.skipped_reason:
            report = deliver_outbox(ctx.db, settings)
            typer.echo(f"  {report.summary()}")
            if report.error:
                raise typer.Exit(1)


def simulate(
    from_: Annotated[str, typer.Option("--from", help="Ngày bắt đầu (YYYY-MM-DD).")],
    to: Annotated[str, typer.Option("--to", help="Ngày kết thúc (YYYY-MM-DD).")],
    seed: Annotated[int, typer.Option("--seed")] = 2025,
    deliver: Annotated[
        bool, typer.Option("--deliver", help="Gửi hàng đợi thư khi mô phỏng xong.")
    ] = False,
) -> None:
    """Mô phỏng cả năm: quét hằng ngày, các cơ quan hoàn thành việc theo tỉ lệ thực tế."""
    from flows.simulate import simulate as run_simulation
    from flows.simulate import year_summary

    start, end = parse_day(from_, "--from"), parse_day(to, "--to")
    if end < start:
        raise fail("--to phải sau --from.")
    ctx = open_context()
    began = time.perf_counter()
    with user_errors():
        result = run_simulation(ctx, start, end, seed)
        summary = year_summary(ctx, end)
    elapsed = time.perf_counter() - began
    typer.echo(
        f"Mô phỏng {result.days} ngày ({result.working_days} ngày làm việc) "
        f"từ {start:%d/%m/%Y} đến {end:%d/%m/%Y} trong {elapsed:.1f} giây."
    )
    typer.echo(f"  Sự kiện phát sinh (quyết định công bố, phản ánh…): {result.events}")
    labels = {
        ItemStatus.OPEN: "Đang mở",
        ItemStatus.DONE: "Hoàn thành đúng hạn",
        ItemStatus.DONE_LATE: "Hoàn thành trễ hạn",
        ItemStatus.WAIVED: "Miễn",
        ItemStatus.CANCELLED: "Hủy",
    }
    typer.echo("  Việc theo trạng thái:")
    for status in ItemStatus.ALL:
        if summary["by_status"].get(status):
            typer.echo(f"    - {labels[status]}: {summary['by_status'][status]}")
    typer.echo(f"  Việc quá hạn chưa hoàn thành tại {end:%d/%m/%Y}: {summary['overdue']}")
    typer.echo("  Việc theo nửa năm (theo hạn) và cấp chính quyền:")
    short = {
        ItemStatus.DONE: "đúng hạn",
        ItemStatus.DONE_LATE: "trễ hạn",
        ItemStatus.OPEN: "đang mở",
        ItemStatus.WAIVED: "miễn",
        ItemStatus.CANCELLED: "hủy/chuyển giao",
    }
    for period, title in ((1, "6 tháng đầu năm"), (2, "6 tháng cuối năm")):
        parts = []
        for level, name in LEVEL_NAMES.items():
            counts = summary["by_half"][period].get(level, {})
            detail = ", ".join(f"{short[s]} {counts[s]}" for s in ItemStatus.ALL if counts.get(s))
            total = sum(counts.values())
            parts.append(f"{name} {total}" + (f" ({detail})" if detail else ""))
        typer.echo(f"    - {title}: " + "; ".join(parts))
    typer.echo("  Bậc đôn đốc đã đạt trong năm:")
    for step in ctx.ladder.steps:
        typer.echo(f"    - {step.name}: {summary['steps'].get(step.code, 0)}")
    typer.echo(f"  Thư đưa vào hàng đợi: {result.notifications}")
    if deliver:
        from flows.cli.notify import deliver as deliver_outbox
        from flows.cli.notify import mail_settings

        report = deliver_outbox(ctx.db, mail_settings())
        typer.echo(f"  {report.summary()}")


PlanOption = Annotated[
    str | None,
    typer.Option("--plan", help="Mã kế hoạch (xem `dunghan plan list`); mặc định: mọi kế hoạch."),
]

LEVEL_NAMES = {"province": "cấp tỉnh", "district": "cấp huyện", "commune": "cấp xã"}


def items(
    agency: Annotated[str | None, typer.Option("--agency", help="Mã cơ quan.")] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", help="open | overdue | done | done_late | waived | cancelled"),
    ] = None,
    date_: DateOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="In ra JSON (danh sách đối tượng) thay cho bảng.")
    ] = False,
    plan: PlanOption = None,
) -> None:
    """Danh sách việc, lọc theo cơ quan, trạng thái (overdue = mở và đã quá hạn), kế hoạch."""
    today = parse_day(date_) if date_ else date.today()
    allowed = (*ItemStatus.ALL, "overdue")
    if status is not None and status not in allowed:
        raise fail(f"--status không hợp lệ: '{status}'. Chọn một trong: {', '.join(allowed)}.")
    ctx = open_context()
    with user_errors():
        if agency is not None:
            ctx.agency(agency)
        query = (
            select(
                DeadlineItem.id,
                Obligation.number,
                Obligation.title,
                DeadlineItem.agency_code,
                DeadlineItem.due,
                DeadlineItem.status,
                DeadlineItem.period_key,
                DeadlineItem.original_agency_code,
                DeadlineItem.completed_on,
                DeadlineItem.evidence,
                PlanRow.code.label("plan"),
                PlanRow.year,
            )
            .join(Obligation, Obligation.id == DeadlineItem.obligation_id)
            .join(PlanRow, PlanRow.id == Obligation.plan_id)
        )
        if plan is not None:
            query = query.where(PlanRow.code == ctx.plan_of(plan).meta.code)
        if agency is not None:
            query = query.where(DeadlineItem.agency_code == agency)
        if status == "overdue":
            query = query.where(DeadlineItem.status == ItemStatus.OPEN, DeadlineItem.due < today)
        elif status is not None:
            query = query.where(DeadlineItem.status == status)
        with session_scope(ctx.db) as session:
            rows = session.execute(
                query.order_by(
                    DeadlineItem.due, PlanRow.year, Obligation.number, DeadlineItem.agency_code
                )
            ).all()
    if as_json:
        out = []
        for row in rows:
            is_open = row.status == ItemStatus.OPEN
            out.append(
                {
                    "id": row.id,
                    "plan": row.plan,
                    "number": row.number,
                    "title": row.title,
                    "agency": row.agency_code,
                    "agency_name": ctx.agency_name(row.agency_code),
                    "original_agency": row.original_agency_code,
                    "period": row.period_key,
                    "due": row.due.isoformat(),
                    "status": row.status,
                    "overdue": is_open and row.due < today,
                    "working_days_left": (
                        working_days_left(ctx.cal, row.due, today) if is_open else None
                    ),
                    "completed_on": row.completed_on.isoformat() if row.completed_on else None,
                    "evidence": row.evidence,
                }
            )
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"{'Số':>6}  {'KH':4}  {'Mục':8}  {'Hạn':10}  {'Trạng thái':24}  {'Cơ quan':12}  Nhiệm vụ"
    )
    for row in rows:
        state = row.status
        if row.status == ItemStatus.OPEN:
            left = working_days_left(ctx.cal, row.due, today)
            state = f"quá hạn {-left} ngày LV" if left < 0 else f"mở, còn {left} ngày LV"
        typer.echo(
            f"{row.id:>6}  {row.year:<4}  {row.number:8}  {row.due:%d/%m/%Y}  {state:24}  "
            f"{row.agency_code:12}  {row.title}"
        )
    typer.echo(f"Tổng: {len(rows)} việc.")


event_app = typer.Typer(help="Sự kiện làm phát sinh hạn (ví dụ nhận quyết định công bố TTHC).")
item_app = typer.Typer(help="Thao tác trên một việc.")


@event_app.command("types")
def event_types_command() -> None:
    """Các loại sự kiện kế hoạch đang chờ, và các nhiệm vụ mỗi loại khởi động."""
    ctx = open_context()
    for code, (description, refs) in sorted(event_types(ctx).items()):
        typer.echo(f"{code}\n    {description}\n    Nhiệm vụ: {', '.join(map(str, refs))}")


@event_app.command("record")
def event_record(
    event: Annotated[str, typer.Option("--event", help="Mã loại sự kiện (xem `event types`).")],
    agency: Annotated[str, typer.Option("--agency", help="Mã cơ quan nhận/ban hành.")],
    on: Annotated[str, typer.Option("--on", help="Ngày xảy ra (YYYY-MM-DD).")],
    document: Annotated[str, typer.Option("--document", help="Số văn bản.")] = "",
    description: Annotated[str, typer.Option("--description")] = "",
    function: Annotated[
        str | None,
        typer.Option(
            "--function",
            help="Lĩnh vực của việc (ví dụ bao-tro-xa-hoi): việc đi theo lĩnh vực khi lĩnh vực "
            "chuyển sang cơ quan khác (plans/agencies.yaml, mục functions).",
        ),
    ] = None,
) -> None:
    """Ghi nhận một sự kiện và tạo các việc có hạn tính từ ngày đó."""
    occurred = parse_day(on, "--on")
    ctx = open_context()
    with user_errors():
        result = record_event(
            ctx, event, agency, occurred, document, description, actor="cli", function=function
        )
        with session_scope(ctx.db) as session:
            rows = session.execute(
                select(DeadlineItem.id, DeadlineItem.agency_code, DeadlineItem.due).where(
                    DeadlineItem.event_id == result.event_id
                )
            ).all()
    if result.already_recorded:
        typer.echo(
            f"Sự kiện đã được ghi nhận trước đó (số {result.event_id}); không tạo thêm việc."
        )
    else:
        typer.echo(
            f"Đã ghi nhận sự kiện số {result.event_id}; "
            f"nhiệm vụ: {', '.join(map(str, result.obligations))}."
        )
    for item_id, code, due in rows:
        typer.echo(f"  Việc {item_id}: {ctx.agency_name(code)}, hạn {due:%d/%m/%Y}")


@item_app.command("complete")
def item_complete(
    item_id: Annotated[int, typer.Argument(help="Số việc (xem `dunghan items`).")],
    on: Annotated[str, typer.Option("--on", help="Ngày hoàn thành (YYYY-MM-DD).")],
    evidence: Annotated[str, typer.Option("--evidence", help="Bằng chứng, ví dụ số văn bản.")],
) -> None:
    """Đánh dấu một việc đã hoàn thành; hoàn thành sau hạn được ghi là trễ hạn."""
    done_on = parse_day(on, "--on")
    ctx = open_context()
    with user_errors():
        result = complete_item(ctx, item_id, done_on, evidence, actor="cli")
    late = "trễ hạn" if result.status == ItemStatus.DONE_LATE else "đúng hạn"
    prefix = "Đã ghi nhận" if result.changed else "Đã ghi nhận từ trước"
    typer.echo(
        f"{prefix}: việc {result.item_id} hoàn thành {late} ngày {done_on:%d/%m/%Y} "
        f"(hạn {result.due:%d/%m/%Y})."
    )


@item_app.command("waive")
def item_waive(
    item_id: Annotated[int, typer.Argument(help="Số việc (xem `dunghan items`).")],
    on: Annotated[str, typer.Option("--on", help="Ngày miễn (YYYY-MM-DD).")],
    reason: Annotated[
        str, typer.Option("--reason", help="Căn cứ miễn, ví dụ số văn bản cho phép miễn.")
    ],
) -> None:
    """Miễn thực hiện một việc (ví dụ việc của kế hoạch năm trước không còn phải làm)."""
    waived_on = parse_day(on, "--on")
    ctx = open_context()
    with user_errors():
        result = waive_item(ctx, item_id, waived_on, reason, actor="cli")
    prefix = "Đã ghi nhận" if result.changed else "Đã ghi nhận từ trước"
    typer.echo(
        f"{prefix}: việc {result.item_id} (hạn {result.due:%d/%m/%Y}) được miễn từ ngày "
        f"{waived_on:%d/%m/%Y}."
    )


def register(app: typer.Typer) -> None:
    """Add this module's commands to the main app."""
    app.command("run")(run)
    app.command("simulate")(simulate)
    app.command("items")(items)
    app.add_typer(event_app, name="event")
    app.add_typer(item_app, name="item")
