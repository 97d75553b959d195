"""`dunghan procedures …`, `dossiers …`, `kpi`: one-stop dossiers from a terminal."""

from __future__ import annotations

import json
import time
from datetime import datetime
from datetime import time as clock
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from deadlines.datafile import DataFileError
from deadlines.dossier import STATE_VI, DossierRecord, explain_dossier, when
from deadlines.export_columns import ColumnMapping
from flows.cli.calendar import fail, parse_day
from flows.cli.engine import open_context, user_errors
from flows.dossiers import (
    COUNTS,
    INDICATORS,
    KPI_KEYS,
    appointments_beyond_law,
    kpis,
    month_bounds,
    month_so_far,
)
from flows.parameters import today_in_vietnam
from models.db import session_scope
from models.dossier_import import ImportRefused, import_dossiers, import_procedures
from models.tables import Dossier, Procedure
from plans import PLANS_DIR

procedures_app = typer.Typer(help="Danh mục thủ tục hành chính và thời hạn giải quyết.")
dossiers_app = typer.Typer(help="Hồ sơ TTHC từ hệ thống một cửa: nhập, giải thích hạn.")

SAMPLE_PROCEDURES = PLANS_DIR / "sample-procedures.csv"


def _refused(exc: ImportRefused) -> typer.Exit:
    return fail(str(exc), code=1)


@procedures_app.command("import")
def procedures_import(file: Path) -> None:
    """Nhập danh mục thủ tục (CSV: procedure_code, name, limit_value, limit_unit, level)."""
    ctx = open_context()
    try:
        report = import_procedures(ctx.db, file)
    except ImportRefused as exc:
        raise _refused(exc) from None
    typer.echo(
        f"Đã nhập {report.rows} thủ tục từ {file}: {report.inserted} mới, "
        f"{report.updated} cập nhật."
    )


@dossiers_app.command("import")
def dossiers_import(
    file: Path,
    columns: Annotated[
        Path | None,
        typer.Option(
            "--columns",
            help="Tệp ánh xạ tên cột (YAML), ví dụ plans/columns-dvcqg.yaml cho dữ liệu "
            "đồng bộ của Cổng Dịch vụ công quốc gia.",
        ),
    ] = None,
) -> None:
    """Nhập tệp xuất của hệ thống một cửa (CSV hoặc JSON lines); cả tệp hoặc không gì cả."""
    mapping = None
    if columns is not None:
        try:
            mapping = ColumnMapping.load(columns)
        except DataFileError as exc:
            raise fail(f"Tệp ánh xạ cột không hợp lệ; không nhập hồ sơ nào:\n{exc}") from None
    ctx = open_context()
    began = time.perf_counter()
    try:
        with user_errors():
            report = import_dossiers(ctx.db, file, ctx.cal, ctx.one_stop, columns=mapping)
    except ImportRefused as exc:
        raise _refused(exc) from None
    seconds = time.perf_counter() - began
    typer.echo(
        f"Đã nhập {report.rows} hồ sơ từ {file} trong {seconds:.1f} giây: "
        f"{report.inserted} mới, {report.updated} cập nhật."
    )


def dossier_record(dossier: Dossier, procedure: Procedure) -> DossierRecord:
    """A stored dossier as the explanation reads it."""
    return DossierRecord(
        id=dossier.id,
        regime=dossier.regime,
        received=dossier.received_at,
        limit_value=procedure.limit_value,
        limit_unit=procedure.limit_unit,
        first_due=dossier.first_due or dossier.legal_due,
        legal_due=dossier.legal_due,
        due_766=dossier.due_766 or dossier.legal_due,
        requested=dossier.supplement_requested_at,
        supplied=dossier.supplement_received_at,
        requests=dossier.supplement_requests,
        completed=dossier.completed_at,
        closed=dossier.closed_at,
        apology_at=dossier.apology_at,
        apology_new_due=dossier.apology_new_due,
        apology_timely=dossier.apology_timely,
        appointment=dossier.appointment_at,
    )


@dossiers_app.command("explain")
def dossiers_explain(
    dossier_id: str,
    on: Annotated[
        str | None,
        typer.Option("--on", help="Xét đến đầu ngày này (YYYY-MM-DD); mặc định: bây giờ."),
    ] = None,
) -> None:
    """Vì sao hồ sơ có hạn như vậy: quy định áp dụng, tiếp nhận, bổ sung, xin lỗi, hai đồng hồ."""
    now = datetime.combine(parse_day(on), clock()) if on else datetime.now().replace(microsecond=0)
    ctx = open_context()
    with session_scope(ctx.db) as session:
        row = session.execute(
            select(Dossier, Procedure)
            .join(Procedure, Procedure.code == Dossier.procedure_code)
            .where(Dossier.id == dossier_id)
        ).first()
    if row is None:
        raise fail(f"Không có hồ sơ '{dossier_id}'.")
    dossier, procedure = row
    typer.echo(f"Hồ sơ {dossier.id}: {procedure.name} — {ctx.agency_name(dossier.agency_code)}")
    typer.echo(f"  Trạng thái theo tệp nhập: {STATE_VI.get(dossier.state, dossier.state)}.")
    with user_errors():
        lines = explain_dossier(ctx.cal, ctx.one_stop, dossier_record(dossier, procedure), now)
    for line in lines:
        typer.echo(f"  {line}")


def _for_month(month: str, agency: str | None, read):
    """Check the month and the agency a person asked for, then `read(ctx, session)`."""
    try:
        month_bounds(month)
    except ValueError as exc:
        raise fail(str(exc)) from None
    ctx = open_context()
    with user_errors():
        if agency is not None:
            ctx.agency(agency)
        with session_scope(ctx.db) as session:
            return ctx, read(ctx, session)


@dossiers_app.command("audit")
def dossiers_audit(
    month: Annotated[str, typer.Option("--month", help="Tháng tiếp nhận (YYYY-MM).")],
    agency: Annotated[str | None, typer.Option("--agency", help="Mã cơ quan.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="In JSON.")] = False,
) -> None:
    """Kiểm tra phiếu hẹn: hồ sơ tiếp nhận trong tháng có ngày hẹn trả muộn hơn hạn luật định."""
    ctx, found = _for_month(
        month, agency, lambda ctx, session: appointments_beyond_law(session, ctx.cal, month, agency)
    )
    if as_json:
        typer.echo(json.dumps([f.as_json() for f in found], ensure_ascii=False))
        return
    scope = f" — {ctx.agency_name(agency)}" if agency else ""
    typer.echo(
        f"Phiếu hẹn muộn hơn hạn luật định, hồ sơ tiếp nhận tháng {month}{scope}: {len(found)}"
    )
    for f in found:
        typer.echo(
            f"  {f.dossier_id} ({ctx.agency_name(f.agency_code)}, thủ tục {f.procedure_code}): "
            f"tiếp nhận {f.received_at:%H:%M %d/%m/%Y}, hẹn {when(f.appointment_at)}, "
            f"hạn luật định {when(f.legal_due)} (muộn {f.working_days_late} ngày làm việc)"
            + (f"; cán bộ {f.handler}" if f.handler else "")
        )
    if not found:
        typer.echo(
            "  Không có phiếu hẹn nào muộn hơn hạn luật định (chỉ xét hồ sơ có appointment_at)."
        )


@dossiers_app.command("sample")
def dossiers_sample(
    count: Annotated[int, typer.Option("--count", min=1)] = 20_000,
    output: Annotated[Path, typer.Option("--output")] = Path("var/sample-dossiers.csv"),
    seed: Annotated[int, typer.Option("--seed")] = 2025,
) -> None:
    """Sinh một tệp hồ sơ mẫu giống thật (có hạt giống) để thử nghiệm."""
    from deadlines.agencies import load_registry
    from deadlines.calendar import WorkCalendar
    from deadlines.dossier import OneStopRules
    from flows.samples import generate_dossiers, read_procedures, write_csv

    columns = generate_dossiers(
        count,
        read_procedures(SAMPLE_PROCEDURES),
        load_registry(),
        WorkCalendar.from_settings(),
        OneStopRules.load(),
        seed=seed,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    typer.echo(f"Đã ghi {write_csv(columns, output)} hồ sơ mẫu vào {output}.")


def kpi(
    month: Annotated[str, typer.Option("--month", help="Tháng (YYYY-MM).")],
    agency: Annotated[str | None, typer.Option("--agency", help="Mã cơ quan.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="In JSON.")] = False,
    plan: Annotated[
        str | None,
        typer.Option(
            "--plan", help="Mã kế hoạch có chỉ tiêu dùng để so; mặc định: kế hoạch của tháng đó."
        ),
    ] = None,
) -> None:
    """Chỉ số một cửa của tháng theo cơ quan (Quyết định 766/QĐ-TTg), so với chỉ tiêu.

    Một ô có dấu * là chưa đạt chỉ tiêu của kế hoạch (mục V)."""
    # A month not over yet is measured so far: an open dossier is late once its due date
    # has passed, not because the month will end after it.
    today = today_in_vietnam()
    ctx, rows = _for_month(
        month,
        agency,
        lambda ctx, session: kpis(session, month, agency, rules=ctx.one_stop, until=today),
    )
    with user_errors():
        chosen = ctx.plan_of(plan, on=month_bounds(month)[0].date())
    if as_json:
        typer.echo(json.dumps([{k: r[k] for k in KPI_KEYS} for r in rows], ensure_ascii=False))
        return
    targets = {t.code: t for t in chosen.kpi_targets}
    typer.echo(
        f"Chỉ số một cửa tháng {month}"
        + (f" tính đến hết ngày {today:%d/%m/%Y}" if month_so_far(month, today) else "")
        + f" ({len(rows)} cơ quan)"
    )
    typer.echo(
        f"{'Cơ quan':40} {'Hồ sơ':>7}"
        + "".join(f" {label:>14}" for label, _ in INDICATORS.values())
        + "".join(f" {label:>14}" for label in COUNTS.values())
    )
    for row in rows:
        cells = []
        for key, (_, target_code) in INDICATORS.items():
            value, target = row[key], targets.get(target_code)
            if value is None:
                cells.append(f" {'—':>14}")
                continue
            missed = "*" if target is not None and not target.is_met(value) else " "
            cells.append(f" {value:>13.1%}{missed}")
        cells += [f" {row[key]:>14}" for key in COUNTS]
        name = ctx.agency_name(row["agency"])[:40]
        typer.echo(f"{name:40} {row['dossiers']:>7}" + "".join(cells))
    shown = {code: targets[code] for _, code in INDICATORS.values() if code in targets}
    typer.echo(
        f"Chỉ tiêu ({chosen.meta.label}): "
        + (
            "; ".join(f"{t.label} {t.comparison} {t.value:.0%}" for t in shown.values())
            or "không có"
        )
    )
    typer.echo(
        "Đúng hạn: theo hạn luật định (tính lại từ đầu khi nhận đủ bổ sung). Đúng hạn (766): "
        f"theo cách chấm của Cổng Dịch vụ công quốc gia ({ctx.one_stop.indicator.fact.cite()}). "
        "Trực tuyến: trên số hồ sơ tiếp nhận trong tháng. Xin lỗi/trễ: hồ sơ trễ hạn có "
        "phiếu xin lỗi kịp thời."
    )


def register(app: typer.Typer) -> None:
    app.add_typer(procedures_app, name="procedures")
    app.add_typer(dossiers_app, name="dossiers")
    app.command("kpi")(kpi)
