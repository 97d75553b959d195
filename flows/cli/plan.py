"""`dunghan agencies` and `dunghan plan check`: look at the registry and check a plan file."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from deadlines.agencies import Agency, AgencyKind, Registry, load_registry
from deadlines.calendar import CalendarError, WorkCalendar
from deadlines.datafile import DataFileError
from deadlines.plan import Obligation, Plan, load_plan
from flows.cli.calendar import OverridesOption, fail, load_calendar, parse_day
from flows.cli.draft import draft

plan_app = typer.Typer(
    help="Kế hoạch (danh mục nhiệm vụ có thời hạn): soạn nháp từ quyết định, kiểm tra tệp."
)

RegistryOption = Annotated[
    Path | None,
    typer.Option(
        "--registry",
        help="Tệp danh bạ cơ quan (YAML). Mặc định: danh bạ đi kèm (plans/agencies.yaml).",
    ),
]

# Due dates shown in full for an obligation; a monthly one lists twelve.
MAX_DATES_SHOWN = 12


def _registry(path: Path | None) -> Registry:
    try:
        return load_registry(path)
    except DataFileError as exc:
        raise fail(f"Tệp danh bạ cơ quan không hợp lệ:\n{exc}", code=1) from None


def _vn(d: date | None) -> str:
    return f"{d:%d/%m/%Y}" if d else "—"


def _active(agency: Agency) -> str:
    if agency.active_from is None and agency.active_to is None:
        return ""
    start = _vn(agency.active_from) if agency.active_from else "…"
    end = _vn(agency.active_to) if agency.active_to else "…"
    return f"{start} – {end}"


def _agency_row(agency: Agency) -> dict:
    return {
        "code": agency.code,
        "name": agency.name,
        "kind": agency.kind.value,
        "groups": list(agency.groups),
        "active_from": agency.active_from.isoformat() if agency.active_from else None,
        "active_to": agency.active_to.isoformat() if agency.active_to else None,
        "successor": agency.successor,
        "successor_from": agency.successor_from.isoformat() if agency.successor_from else None,
        "email": agency.email,
    }


def agencies(
    as_json: Annotated[
        bool, typer.Option("--json", help="In ra JSON (danh sách đối tượng) thay cho bảng.")
    ] = False,
    on: Annotated[
        str | None,
        typer.Option("--on", metavar="YYYY-MM-DD", help="Chỉ các cơ quan hoạt động vào ngày này."),
    ] = None,
    kind: Annotated[
        AgencyKind | None, typer.Option("--kind", help="Chỉ các cơ quan thuộc loại này.")
    ] = None,
    registry_path: RegistryOption = None,
) -> None:
    """Danh bạ cơ quan: mã, tên, loại, nhóm, thời gian hoạt động, cơ quan kế thừa."""
    day = parse_day(on, "Ngày --on") if on is not None else None
    registry = _registry(registry_path)
    rows = registry.active_on(day) if day else tuple(registry.agencies.values())
    if kind is not None:
        rows = tuple(a for a in rows if a.kind is kind)

    if as_json:
        typer.echo(json.dumps([_agency_row(a) for a in rows], ensure_ascii=False, indent=2))
        return

    table = [
        (
            a.code,
            a.name,
            a.kind.value,
            _active(a),
            f"{a.successor} (từ {_vn(a.successor_from)})" if a.successor else "",
            ", ".join(a.groups),
        )
        for a in rows
    ]
    header = ("Mã", "Tên", "Loại", "Hoạt động", "Kế thừa bởi", "Nhóm")
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header) - 1)]
    where = f" hoạt động ngày {_vn(day)}" if day else ""
    typer.echo(f"Danh bạ cơ quan ({registry.path}): {len(table)} cơ quan{where}")
    rule = tuple("-" * w for w in [*widths, len(header[-1])])
    for row in [header, rule, *table]:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)]
        typer.echo("  ".join([*cells, row[-1]]).rstrip())


def _due_text(obligation: Obligation, plan: Plan, cal: WorkCalendar) -> str:
    try:
        dates = obligation.rule.due_dates(cal, year=plan.meta.year)
    except CalendarError as exc:
        raise fail(f"Nhiệm vụ {obligation.number}: {exc}", code=1) from None
    if not dates:
        return obligation.rule.describe(cal)
    shown = ", ".join(_vn(d) for d in dates[:MAX_DATES_SHOWN])
    more = len(dates) - MAX_DATES_SHOWN
    return shown + (f" và {more} ngày khác" if more > 0 else "")


@plan_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Tệp kế hoạch (YAML).")],
    registry_path: RegistryOption = None,
    overrides: OverridesOption = None,
) -> None:
    """Kiểm tra một tệp kế hoạch và in từng nhiệm vụ với loại hạn và các ngày hạn trong năm."""
    registry = _registry(registry_path)
    try:
        plan = load_plan(file, registry)
    except DataFileError as exc:
        count = len(exc.problems)
        raise fail(f"Tệp kế hoạch không hợp lệ ({count} lỗi):\n{exc}", code=1) from None
    cal = load_calendar(overrides)

    meta = plan.meta
    typer.echo(
        f"Kế hoạch {meta.code}: Quyết định số {meta.decision} ngày {_vn(meta.signed)} "
        f"({meta.province}, năm {meta.year})"
    )
    typer.echo(
        f"Tệp {plan.path} hợp lệ: {len(plan.obligations)} nhiệm vụ, "
        f"{len(plan.kpi_targets)} chỉ tiêu."
    )
    number_width = max(len(o.number) for o in plan.obligations)
    title_width = max(len(o.title) for o in plan.obligations)
    kind_width = max(len(o.rule.kind) for o in plan.obligations)
    for o in plan.obligations:
        typer.echo(
            f"{o.number.ljust(number_width)}  {o.title.ljust(title_width)}  "
            f"{o.rule.kind.ljust(kind_width)}  {_due_text(o, plan, cal)}"
        )


plan_app.command("draft")(draft)
