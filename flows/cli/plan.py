"""`dunghan agencies` and `dunghan plan check`: look at the registry and check a plan file."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from deadlines.agencies import Agency, AgencyKind, Registry, load_registry
from deadlines.calendar import CalendarError, WorkCalendar
from deadlines.datafile import DataFileError
from deadlines.plan import Obligation, Plan, load_plan
from flows.cli.calendar import OverridesOption, fail, load_calendar, parse_day

plan_app = typer.Typer(
    help="Kế hoạch (danh mục nhiệm vụ có thời hạn): kiểm tra, nạp, liệt kê, thôi thực hiện."
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


# ----------------------------------------------------------- several plans at once

MAX_AGENCIES_NAMED = 3


@plan_app.command("load")
def load(
    file: Annotated[Path, typer.Argument(help="Tệp kế hoạch (YAML).")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Chỉ báo cáo thay đổi, không ghi gì.")
    ] = False,
    date_: Annotated[
        str | None,
        typer.Option("--date", help="Ngày nạp (YYYY-MM-DD) dùng cho nhật ký; mặc định: hôm nay."),
    ] = None,
) -> None:
    """Nạp một kế hoạch (hoặc phiên bản mới của kế hoạch đã nạp, cùng mã) và báo cáo thay đổi.

    Nạp lại cùng tệp không thay đổi gì; phiên bản mới được cập nhật tại chỗ, không bao giờ
    thành hai kế hoạch: in các nhiệm vụ mới, thay đổi, bị bỏ và ảnh hưởng đến việc đang mở
    (đổi hạn, hủy, tạo mới)."""
    from flows.cli.engine import open_context, user_errors
    from flows.parameters import today_in_vietnam
    from flows.plan_loading import load_plan_file

    today = parse_day(date_, "--date") if date_ else today_in_vietnam()
    ctx = open_context()
    with user_errors():
        try:
            report = load_plan_file(ctx, file, today, dry_run=dry_run, actor="cli")
        except DataFileError as exc:
            count = len(exc.problems)
            raise fail(f"Tệp kế hoạch không hợp lệ ({count} lỗi):\n{exc}", code=1) from None
    for line in load_lines(report):
        typer.echo(line)


def load_lines(report) -> list[str]:
    """What a plan load did, as an admin reads it."""
    from flows.plan_loading import NEW, UNCHANGED

    head = f"Kế hoạch {report.code} — {report.label}"
    if report.status == UNCHANGED:
        return [f"{head}: tệp {report.path} giống hệt bản đã nạp; không thay đổi gì."]
    changes = report.changes
    lines = []
    if report.status == NEW:
        lines.append(f"{head}: nạp lần đầu từ {report.path}.")
        lines.append(f"  {len(changes.added)} nhiệm vụ; {report.created_total} việc được tạo.")
    else:
        lines.append(f"{head}: phiên bản mới từ {report.path}, so với bản đã nạp:")
        lines += _change_lines(report)
        lines += _effect_lines(report)
    if report.retired_on is not None:
        lines.append(
            f"  Kế hoạch đã thôi thực hiện sau ngày {_vn(report.retired_on)}: "
            "không tạo việc có hạn sau ngày đó."
        )
    if report.dry_run:
        lines.append("Chạy thử: chưa ghi thay đổi nào.")
    else:
        lines.append(
            "Sinh lại deployment: `dunghan deployments write` (prefect.yaml), hoặc khởi động "
            "lại `dunghan serve`."
        )
    return lines


def _change_lines(report) -> list[str]:
    changes = report.changes
    lines = []
    if not changes.any:
        lines.append(
            "  Các nhiệm vụ không đổi (thay đổi ở thông tin kế hoạch, chỉ tiêu hoặc chú thích)."
        )
    if changes.added:
        lines.append(f"  Nhiệm vụ mới ({len(changes.added)}):")
        for duty in changes.added:
            created = report.created.get(duty.number, 0)
            lines.append(f"    + {duty.number} {duty.title} — {created} việc được tạo")
    if changes.changed:
        lines.append(f"  Nhiệm vụ thay đổi ({len(changes.changed)}):")
        for change in changes.changed:
            lines.append(f"    ~ {change.number} {change.title}")
            shown = [f for f in change.fields if f.field != "rule" or not change.changed("timing")]
            for f in shown:
                lines.append(f"        {f.label}: «{_short(f.old)}» → «{_short(f.new)}»")
    if changes.removed:
        lines.append(f"  Nhiệm vụ bị bỏ ({len(changes.removed)}):")
        lines += [f"    - {duty.number} {duty.title}" for duty in changes.removed]
    if changes.unchanged:
        lines.append(f"  Nhiệm vụ không đổi: {changes.unchanged}")
    return lines


def _effect_lines(report) -> list[str]:
    if not (report.moved or report.cancelled or report.created):
        return ["  Không việc đang mở nào bị ảnh hưởng."]
    lines = ["  Ảnh hưởng đến các việc:"]
    moved = defaultdict(list)
    for c in report.moved:
        moved[(c.number, c.old_due, c.new_due)].append(c.agency_name)
    if moved:
        lines.append(f"    Đổi hạn: {len(report.moved)} việc đang mở")
        for (number, old, new), names in sorted(moved.items(), key=lambda kv: (kv[0][1], kv[0])):
            lines.append(
                f"      {number}: {_vn(old)} → {_vn(new)}, {len(names)} việc ({_names(names)})"
            )
    cancelled = defaultdict(list)
    for c in report.cancelled:
        cancelled[(c.number, c.reason)].append(c.agency_name)
    if cancelled:
        lines.append(f"    Hủy: {len(report.cancelled)} việc đang mở")
        for (number, reason), names in sorted(cancelled.items()):
            lines.append(f"      {number}: {len(names)} việc ({_names(names)}) — {reason}")
    if report.created:
        detail = ", ".join(f"{n}: {count}" for n, count in report.created.items())
        lines.append(f"    Tạo mới: {report.created_total} việc ({detail})")
    return lines


def _names(names: list[str]) -> str:
    unique = list(dict.fromkeys(names))
    shown = ", ".join(unique[:MAX_AGENCIES_NAMED])
    more = len(unique) - MAX_AGENCIES_NAMED
    return shown + (f" và {more} cơ quan khác" if more > 0 else "")


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@plan_app.command("list")
def list_plans(
    as_json: Annotated[bool, typer.Option("--json", help="In ra JSON thay cho bảng.")] = False,
    date_: Annotated[
        str | None,
        typer.Option("--date", help="Tình trạng tại ngày (YYYY-MM-DD); mặc định: hôm nay."),
    ] = None,
) -> None:
    """Các kế hoạch đã nạp: mã, quyết định, thời gian thực hiện, tình trạng, số việc."""
    from flows.cli.engine import open_context, user_errors
    from flows.parameters import today_in_vietnam
    from flows.plan_loading import local_time, plan_listing

    today = parse_day(date_, "--date") if date_ else today_in_vietnam()
    ctx = open_context()
    with user_errors():
        rows = plan_listing(ctx, today)
    if as_json:
        typer.echo(json.dumps([r.as_json() for r in rows], ensure_ascii=False, indent=2))
        return
    typer.echo(f"{len(rows)} kế hoạch đã nạp (tình trạng ngày {_vn(today)}):")
    for r in rows:
        open_items = r.items.get("open", 0)
        typer.echo(f"{r.code}  {r.label}")
        typer.echo(f"    {r.title}")
        typer.echo(
            f"    Thực hiện {_vn(r.starts)} – {_vn(r.ends)}: {r.state}; {r.obligations} nhiệm vụ; "
            f"{sum(r.items.values())} việc, {open_items} đang mở ({r.overdue} quá hạn)"
        )
        typer.echo(f"    Nạp lúc {local_time(r.loaded_at)} từ {r.source_file or '—'}")


@plan_app.command("retire")
def retire(
    code: Annotated[str, typer.Argument(help="Mã kế hoạch (xem `dunghan plan list`).")],
    on: Annotated[
        str, typer.Option("--on", help="Ngày cuối cùng kế hoạch còn thực hiện (YYYY-MM-DD).")
    ],
) -> None:
    """Thôi thực hiện một kế hoạch từ sau ngày --on: hủy việc có hạn sau ngày đó.

    Việc đến hạn trước đó còn mở vẫn được nhắc (quá hạn) cho đến khi hoàn thành hoặc được
    miễn; kế hoạch không còn deployment nhiệm vụ."""
    from flows.cli.engine import open_context, user_errors
    from flows.plan_loading import retire_plan

    last_day = parse_day(on, "--on")
    ctx = open_context()
    with user_errors():
        report = retire_plan(ctx, code, last_day, actor="cli")
    head = f"Kế hoạch {report.code} — {report.label}"
    if report.already:
        typer.echo(f"{head} đã thôi thực hiện sau ngày {_vn(report.on)} từ trước; không đổi gì.")
        return
    typer.echo(f"{head}: thôi thực hiện sau ngày {_vn(report.on)}.")
    typer.echo(f"  Việc đang mở có hạn sau ngày đó đã hủy: {len(report.cancelled)}")
    typer.echo(
        f"  Việc đến hạn đến ngày đó còn mở: {report.still_open} (vẫn được nhắc cho đến khi "
        "hoàn thành hoặc được miễn)"
    )
    typer.echo("Sinh lại deployment: `dunghan deployments write`, hoặc khởi động lại `serve`.")
