"""`dunghan procedures …`, `dossiers …`, `kpi`: one-stop dossiers from a terminal."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import select

from deadlines.dossier import explain_due
from flows.cli.calendar import fail
from flows.cli.engine import open_context, user_errors
from flows.dossiers import INDICATORS, KPI_KEYS, kpis, month_bounds
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
def dossiers_import(file: Path) -> None:
    """Nhập tệp xuất của hệ thống một cửa (CSV hoặc JSON lines); cả tệp hoặc không gì cả."""
    ctx = open_context()
    began = time.perf_counter()
    try:
        with user_errors():
            report = import_dossiers(ctx.db, file, ctx.cal, ctx.one_stop)
    except ImportRefused as exc:
        raise _refused(exc) from None
    seconds = time.perf_counter() - began
    typer.echo(
        f"Đã nhập {report.rows} hồ sơ từ {file} trong {seconds:.1f} giây: "
        f"{report.inserted} mới, {report.updated} cập nhật."
    )


@dossiers_app.command("explain")
def dossiers_explain(dossier_id: str) -> None:
    """Vì sao hồ sơ có hạn như vậy: tiếp nhận, bổ sung, ngày nghỉ, xin lỗi."""
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
    for line in explain_due(
        ctx.cal,
        ctx.one_stop,
        dossier.received_at,
        dossier.supplement_received_at,
        procedure.limit_value,
        procedure.limit_unit,
        dossier.apology_new_due,
    ):
        typer.echo(f"  {line}")
    if dossier.completed_at is not None:
        state = "đúng hạn" if dossier.completed_at <= dossier.legal_due else "trễ hạn"
        typer.echo(f"  Hoàn thành {dossier.completed_at:%H:%M %d/%m/%Y}: {state}.")


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
) -> None:
    """Chỉ số một cửa của tháng theo cơ quan (Quyết định 766/QĐ-TTg), so với chỉ tiêu.

    Một ô có dấu * là chưa đạt chỉ tiêu của kế hoạch (mục V)."""
    try:
        month_bounds(month)
    except ValueError as exc:
        raise fail(str(exc)) from None
    ctx = open_context()
    with user_errors():
        if agency is not None:
            ctx.agency(agency)
        with session_scope(ctx.db) as session:
            rows = kpis(session, month, agency)
    if as_json:
        typer.echo(json.dumps([{k: r[k] for k in KPI_KEYS} for r in rows], ensure_ascii=False))
        return
    targets = {t.code: t for t in ctx.plan.kpi_targets}
    typer.echo(f"Chỉ số một cửa tháng {month} ({len(rows)} cơ quan)")
    typer.echo(
        f"{'Cơ quan':40} {'Hồ sơ':>7}"
        + "".join(f" {label:>13}" for label, _ in INDICATORS.values())
    )
    for row in rows:
        cells = []
        for key, (_, target_code) in INDICATORS.items():
            value, target = row[key], targets.get(target_code)
            if value is None:
                cells.append(f" {'—':>13}")
                continue
            missed = "*" if target is not None and not target.is_met(value) else " "
            cells.append(f" {value:>12.1%}{missed}")
        name = ctx.agency_name(row["agency"])[:40]
        typer.echo(f"{name:40} {row['dossiers']:>7}" + "".join(cells))
    shown = [targets[code] for _, code in INDICATORS.values() if code in targets]
    typer.echo(
        "Chỉ tiêu (QĐ 384/QĐ-UBND): "
        + "; ".join(f"{t.label} {t.comparison} {t.value:.0%}" for t in shown)
    )


def register(app: typer.Typer) -> None:
    app.add_typer(procedures_app, name="procedures")
    app.add_typer(dossiers_app, name="dossiers")
    app.command("kpi")(kpi)
