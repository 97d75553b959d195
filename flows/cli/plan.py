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
from deadlines.owners import (
    OwnerShare,
    default_due_rows,
    owner_changes,
    owners_on,
    unconfirmed_facts,
)
from deadlines.plan import Obligation, Plan, ReportPeriod, load_plan, rule_parts
from deadlines.rules import FREQ_VI, PERIOD_VI, Recurring
from flows.cli.calendar import OverridesOption, fail, load_calendar, parse_day
from flows.cli.draft import draft

plan_app = typer.Typer(
    help="Kế hoạch (danh mục nhiệm vụ có thời hạn): soạn nháp từ quyết định, kiểm tra, nạp, "
    "liệt kê, thôi thực hiện."
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


PlanOption = Annotated[
    Path | None,
    typer.Option(
        "--plan",
        help="Tệp kế hoạch (YAML) để biết cơ quan chủ trì những nhiệm vụ nào vào ngày --on. "
        "Mặc định: kế hoạch đi kèm (plans/nghe-an-2025.yaml).",
    ),
]


def _load_plan(path: Path | None, registry: Registry) -> Plan:
    try:
        return load_plan(path, registry)
    except DataFileError as exc:
        count = len(exc.problems)
        raise fail(f"Tệp kế hoạch không hợp lệ ({count} lỗi):\n{exc}", code=1) from None


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _agency_row(agency: Agency) -> dict:
    return {
        "code": agency.code,
        "name": agency.name,
        "kind": agency.kind.value,
        "groups": list(agency.groups),
        "active_from": _iso(agency.active_from),
        "active_to": _iso(agency.active_to),
        "successor": agency.successor,
        "successors": list(agency.successors),
        "successor_from": _iso(agency.successor_from),
        "functions": [
            {
                "code": f.code,
                "label": f.label,
                "successors": list(f.successors),
                "effective": f.effective.isoformat(),
            }
            for f in agency.functions
        ],
        "email": agency.email,
    }


def _successors_text(registry: Registry, agency: Agency) -> str:
    if not agency.successors:
        return ""
    when = f"từ {_vn(agency.successor_from)}"
    if len(agency.successors) == 1:
        return f"{agency.successors[0]} ({when})"
    return f"{len(agency.successors)} cơ quan ({when})"


def agencies(
    as_json: Annotated[
        bool, typer.Option("--json", help="In ra JSON (danh sách đối tượng) thay cho bảng.")
    ] = False,
    on: Annotated[
        str | None,
        typer.Option(
            "--on",
            metavar="YYYY-MM-DD",
            help="Chỉ các cơ quan hoạt động vào ngày này, kèm các nhiệm vụ mỗi cơ quan chủ trì "
            "ngày đó.",
        ),
    ] = None,
    kind: Annotated[
        AgencyKind | None, typer.Option("--kind", help="Chỉ các cơ quan thuộc loại này.")
    ] = None,
    registry_path: RegistryOption = None,
    plan_path: PlanOption = None,
) -> None:
    """Danh bạ cơ quan: mã, tên, loại, nhóm, thời gian hoạt động, cơ quan kế thừa."""
    day = parse_day(on, "Ngày --on") if on is not None else None
    registry = _registry(registry_path)
    rows = registry.active_on(day) if day else tuple(registry.agencies.values())
    if kind is not None:
        rows = tuple(a for a in rows if a.kind is kind)
    owed: dict[str, list[str]] = {}
    if day is not None:
        plan = _load_plan(plan_path, registry)
        for ob in plan.obligations:
            if plan.owes_items(ob):
                for agency in owners_on(plan, registry, ob, day):
                    owed.setdefault(agency.code, []).append(ob.number)

    if as_json:
        out = [_agency_row(a) for a in rows]
        if day is not None:
            for row in out:
                row["obligations"] = owed.get(row["code"], [])
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return

    header = ("Mã", "Tên", "Loại", "Hoạt động", "Kế thừa bởi", "Nhóm")
    table = [
        (
            a.code,
            a.name,
            a.kind.value,
            _active(a),
            _successors_text(registry, a),
            ", ".join(a.groups),
        )
        for a in rows
    ]
    if day is not None:
        header = (*header[:-1], "Nhiệm vụ chủ trì")
        table = [(*row[:-1], ", ".join(owed.get(row[0], [])) or "—") for row in table]
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header) - 1)]
    where = f" hoạt động ngày {_vn(day)}" if day else ""
    typer.echo(f"Danh bạ cơ quan ({registry.path}): {len(table)} cơ quan{where}")
    rule = tuple("-" * w for w in [*widths, len(header[-1])])
    for row in [header, rule, *table]:
        cells = [c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)]
        typer.echo("  ".join([*cells, row[-1]]).rstrip())


def _dates(plan: Plan, ob: Obligation, cal: WorkCalendar) -> list[date]:
    try:
        return [due for _, due in plan.occurrences(ob, cal)]
    except CalendarError as exc:
        raise fail(f"Nhiệm vụ {ob.number}: {exc}", code=1) from None


def _dates_text(dates: list[date]) -> str:
    shown = ", ".join(_vn(d) for d in dates[:MAX_DATES_SHOWN])
    more = len(dates) - MAX_DATES_SHOWN
    return shown + (f" và {more} ngày khác" if more > 0 else "")


def _share_text(share: OwnerShare) -> str:
    count = len(share.agencies)
    if share.code.startswith("GRP-"):
        text = f"{share.label} ({count})"
        return f"{share.label} → {', '.join(share.through)} ({count})" if share.through else text
    if not share.through:
        return share.label if count else f"{share.label} (chưa/không còn hoạt động)"
    names = ", ".join(share.through) if count <= 3 else f"{count} cơ quan"
    return f"{share.label} → {names}"


@plan_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Tệp kế hoạch (YAML).")],
    registry_path: RegistryOption = None,
    overrides: OverridesOption = None,
    on: Annotated[
        str | None,
        typer.Option(
            "--on", metavar="YYYY-MM-DD", help="Chỉ in các cơ quan chủ trì từng nhiệm vụ ngày này."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="In ra JSON thay cho văn bản.")] = False,
) -> None:
    """Kiểm tra một tệp kế hoạch và in từng nhiệm vụ: quy tắc thời hạn, các ngày hạn trong năm
    (từ ngày kế hoạch có hiệu lực), cơ quan chủ trì qua các lần sắp xếp, và các dữ kiện chưa
    xác nhận mà nhiệm vụ dựa vào."""
    day = parse_day(on, "Ngày --on") if on is not None else None
    registry = _registry(registry_path)
    plan = _load_plan(file, registry)
    cal = load_calendar(overrides)
    report = [_obligation_report(plan, registry, cal, ob, day) for ob in plan.obligations]
    defaults = default_due_rows(plan)
    if as_json:
        meta = plan.meta
        typer.echo(
            json.dumps(
                {
                    "plan": meta.code,
                    "decision": meta.decision,
                    "effective": plan.start.isoformat(),
                    "year": meta.year,
                    "obligations": report,
                    "default_due": [ob.number for ob, _ in defaults],
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    _print_check(plan, registry, cal, report, defaults, day)


def _obligation_report(plan, registry, cal, ob: Obligation, day: date | None) -> dict:
    row = {
        "number": ob.number,
        "title": ob.title,
        "timing": ob.timing,
        "rule": ob.rule.to_dict(),
        "rule_text": ob.rule.describe(cal),
        "dates": [d.isoformat() for d in _dates(plan, ob, cal)],
        "same_as": ob.same_as,
        "function": ob.function,
        "default_due": plan.default_due_days(ob),
        "data_periods": {
            part.freq: _data_period_text(plan.reporting[part.freq])
            for part in rule_parts(ob.rule)
            if isinstance(part, Recurring)
            and part.freq in plan.reporting
            and plan.reporting[part.freq].data_from is not None
        },
        "unconfirmed": unconfirmed_facts(plan, registry, ob),
        "owners": [
            {
                "from": changed.isoformat(),
                "lead": [
                    {"code": s.code, "label": s.label, "agencies": [a.code for a in s.agencies]}
                    for s in shares
                ],
            }
            for changed, shares in owner_changes(plan, registry, ob)
        ],
    }
    if day is not None:
        row["owners_on"] = [a.code for a in owners_on(plan, registry, ob, day)]
    return row


def _data_period_text(period: ReportPeriod) -> str:
    first = period.data_window(2000, 0)
    assert first is not None
    return (
        f"từ ngày {period.data_from} tháng trước kỳ đến ngày {period.data_to} tháng cuối kỳ "
        f"(kỳ đầu năm: {first[0]:%d/%m} năm trước – {first[1]:%d/%m}; {period.source})"
    )


def _print_check(plan, registry, cal, report, defaults, day) -> None:
    meta = plan.meta
    typer.echo(
        f"Kế hoạch {meta.code}: Quyết định số {meta.decision} ngày {_vn(meta.signed)} "
        f"({meta.province}, năm {meta.year}), hiệu lực từ {_vn(plan.start)}"
    )
    typer.echo(
        f"Tệp {plan.path} hợp lệ: {len(plan.obligations)} nhiệm vụ, "
        f"{len(plan.kpi_targets)} chỉ tiêu."
    )
    if day is not None:
        typer.echo(f"Cơ quan chủ trì ngày {_vn(day)}:")
    number_width = max(len(o.number) for o in plan.obligations)
    title_width = max(len(o.title) for o in plan.obligations)
    kind_width = max(len(o.rule.kind) for o in plan.obligations)
    indent = " " * (number_width + 2)
    for ob, row in zip(plan.obligations, report, strict=True):
        dates = [date.fromisoformat(d) for d in row["dates"]]
        when = _dates_text(dates) if dates else ob.rule.describe(cal)
        typer.echo(
            f"{ob.number.ljust(number_width)}  {ob.title.ljust(title_width)}  "
            f"{ob.rule.kind.ljust(kind_width)}  {when}"
        )
        if day is not None:
            owners = owners_on(plan, registry, ob, day)
            names = ", ".join(a.code for a in owners[:8]) + (
                f" và {len(owners) - 8} cơ quan khác" if len(owners) > 8 else ""
            )
            typer.echo(f"{indent}{len(owners)} cơ quan: {names or '—'}")
            continue
        if ob.same_as:
            typer.echo(f"{indent}Cùng một nhiệm vụ với {ob.same_as}: không tạo việc riêng.")
        if dates:
            typer.echo(f"{indent}Quy tắc: {row['rule_text']}")
        for changed, shares in owner_changes(plan, registry, ob):
            text = "; ".join(_share_text(s) for s in shares)
            typer.echo(f"{indent}Chủ trì từ {_vn(changed)}: {text}")
        if ob.function:  # the function decides where the coordinators' share goes
            for changed, shares in owner_changes(plan, registry, ob, "coordinating"):
                text = "; ".join(_share_text(s) for s in shares)
                typer.echo(f"{indent}Phối hợp từ {_vn(changed)}: {text}")
        for freq, text in row["data_periods"].items():
            typer.echo(f"{indent}Số liệu kỳ {PERIOD_VI[freq]}: {text}")
        for freq in row["default_due"]:
            typer.echo(
                f"{indent}Mặc định: hạn {FREQ_VI[freq]} là ngày làm việc cuối cùng của kỳ "
                "(chưa có ngày gửi báo cáo của chế độ báo cáo)"
            )
        for fact in row["unconfirmed"]:
            typer.echo(f"{indent}Chưa xác nhận — {fact}")
    if day is None and defaults:
        typer.echo("")
        typer.echo(
            "Nhiệm vụ còn dùng mặc định ngày làm việc cuối cùng của kỳ, cần xác nhận ngày gửi "
            "báo cáo (mục 'reporting', trường 'send_by'):"
        )
        for ob, freqs in defaults:
            same = f", cùng nhiệm vụ với {ob.same_as}" if ob.same_as else ""
            typer.echo(f"  {ob.number} ({', '.join(FREQ_VI[f] for f in freqs)}{same})")


plan_app.command("draft")(draft)


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
