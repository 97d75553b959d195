"""What the flows show people: Prefect artifacts (markdown and tables), the inspection's
HTML file and the terminal's lines, all rendered from the same report objects.

Rendering is pure (report in, text out). Publishing needs a Prefect run context; Prefect is
imported only there, so the terminal commands render reports without paying for it.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

from deadlines.ladder import Ladder
from deadlines.plan import Obligation as PlanObligation
from deadlines.rules import fold
from flows.engine import EngineContext, EventResult, SweepResult
from flows.reports.review import (
    CATEGORIES,
    AgencyOverdue,
    ComplianceReport,
    ItemView,
    RecomputeResult,
)
from flows.reports.status import KpiProgress, PlanStatus, target_text, verdict
from notifications.compose import template_environment

TEMPLATES = Path(__file__).with_name("templates")
REPORTS_ENV = "DUNGHAN_REPORTS_DIR"
DEFAULT_REPORTS = "var/reports"

_env = template_environment(TEMPLATES)


# --------------------------------------------------------------------------- keys


def slug(text: str) -> str:
    """Lower-case ASCII letters, digits and dashes: what Prefect accepts in a key."""
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")


def artifact_key(*parts: str | None) -> str:
    return "-".join(slug(p) for p in parts if p and slug(p))


def obligation_key(number: str, plan: str | None = None) -> str:
    return artifact_key("obligation", plan, number)


def sweep_keys(agencies: Sequence[str] | None) -> tuple[str, str]:
    """The keys of the sweep's summary and overdue table; a sweep of some agencies only
    keeps its own, so it never hides the province-wide picture."""
    scope = None if agencies is None else "-".join(sorted(agencies))
    if scope is not None and len(slug(scope)) > 40:
        digest = hashlib.sha1(scope.encode()).hexdigest()[:10]
        scope = f"{len(agencies)}-co-quan-{digest}"
    return artifact_key("daily-sweep", scope), artifact_key("daily-sweep-overdue", scope)


def inspection_key(agency: str, section: str | None, plan: str | None = None) -> str:
    return artifact_key("inspection", agency, plan, section)


RECOMPUTE_KEY = "recompute"
RECORDED_EVENT_KEY = "recorded-event"


# ----------------------------------------------------------------------- helpers


def md_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.replace("|", "\\|").split()) or "—"


def md_table(headers: Sequence[str], rows: Iterable[Sequence[object]], right=()) -> str:
    align = ["---:" if i in right else "---" for i in range(len(headers))]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(md_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def percent(rate: float | None) -> str:
    if rate is None:
        return "—"
    return f"{rate * 100:.1f}".replace(".", ",") + "%"


def step_label(name: str) -> str:
    """A step's short name: "Quá hạn 5 ngày làm việc" of "Quá hạn 5 ngày làm việc — …"."""
    return name.split(" — ")[0]


# -------------------------------------------------------------- one obligation


def obligation_table(views: Sequence[ItemView]) -> list[dict[str, object]]:
    return [
        {
            "Việc": v.item_id,
            "Cơ quan": v.agency_name,
            "Mã cơ quan": v.agency_code,
            "Hạn": f"{v.due:%d/%m/%Y}",
            "Trạng thái": v.state,
            "Bậc đôn đốc đã đạt": v.step or "—",
        }
        for v in views
    ]


def obligation_description(
    ctx: EngineContext, ob: PlanObligation, views: Sequence[ItemView], today: date
) -> str:
    overdue = sum(1 for v in views if v.status == "open" and v.due < today)
    pending = sum(1 for v in views if v.status == "open" and v.due >= today)
    closed = len(views) - overdue - pending
    return (
        f"**{ob.number} {ob.title}** — ngày {today:%d/%m/%Y}: {overdue} việc quá hạn, "
        f"{pending} việc đến hạn hoặc sắp đến hạn, {closed} việc đã đóng.\n\n"
        f"Thời hạn theo kế hoạch: {ob.timing}. {ob.rule.describe(ctx.cal)}."
    )


def publish_obligation_items(
    ctx: EngineContext,
    ob: PlanObligation,
    views: Sequence[ItemView],
    today: date,
    plan: str | None = None,
) -> str:
    key = obligation_key(ob.number, plan)
    _prefect_artifacts().create_table_artifact(
        table=obligation_table(views),
        key=key,
        description=obligation_description(ctx, ob, views, today),
    )
    return key


# ------------------------------------------------------------------- the sweep


def sweep_markdown(
    ctx: EngineContext, result: SweepResult, agencies: Sequence[str] | None = None
) -> str:
    day = f"{result.run_date:%d/%m/%Y}"
    scope = (
        "mọi cơ quan"
        if agencies is None
        else "các cơ quan " + ", ".join(ctx.agency_name(c) for c in agencies)
    )
    if result.skipped_reason:
        return (
            f"# Không quét hạn ngày {day}\n\n{result.skipped_reason}\n\n"
            "Ngày nghỉ không quét; chạy lại với `force: true` nếu cần quét cả ngày nghỉ."
        )
    counts = result.counts
    overdue = sum(result.overdue_by_step.values())
    rows = [
        ("Việc mới tạo", result.created),
        ("Việc chuyển cho cơ quan kế thừa", result.transferred),
        ("Việc đến hạn hôm nay", result.due_today),
        ("Việc quá hạn chưa hoàn thành", overdue),
        ("Bậc đôn đốc mới đạt", len(result.escalations)),
        ("  trong đó gửi thông báo", counts["notified_escalations"]),
        ("Thư đưa vào hàng đợi", result.notifications),
    ]
    for key, label in (
        ("dossier_reminders", "Hồ sơ TTHC được nhắc hạn"),
        ("dossiers_at_risk", "Hồ sơ TTHC có nguy cơ trễ hạn"),
        ("dossiers_late_without_apology", "Hồ sơ trễ hạn chưa có phiếu xin lỗi"),
        ("dossiers_awaiting_supplement", "Hồ sơ chờ công dân bổ sung (không tính trễ hạn)"),
    ):
        if counts.get(key):
            rows.append((label, counts[key]))
    parts = [
        f"# Quét hạn ngày {day}",
        f"{'; '.join(p.meta.label for p in ctx.plans.values())} — {scope}.",
        md_table(("Chỉ số", "Số lượng"), rows, right=(1,)),
    ]
    if result.overdue_by_step:
        parts += [
            "## Việc quá hạn theo bậc đôn đốc cao nhất đã đạt",
            md_table(
                ("Bậc", "Số việc"),
                [
                    (step.name, result.overdue_by_step[step.code])
                    for step in ctx.ladder.steps
                    if result.overdue_by_step.get(step.code)
                ],
                right=(1,),
            ),
        ]
    if result.overdue_by_agency:
        parts += [
            "## Cơ quan có nhiều việc quá hạn nhất",
            md_table(
                ("Cơ quan", "Việc quá hạn"),
                [(name, count) for _, name, count in result.overdue_by_agency[:10]],
                right=(1,),
            ),
        ]
    late = result.dossiers.late_without_apology if result.dossiers else {}
    if late:
        parts += [
            "## Hồ sơ TTHC trễ hạn chưa có phiếu xin lỗi, theo cơ quan",
            md_table(
                ("Cơ quan", "Mã cơ quan", "Hồ sơ"),
                [
                    (ctx.agency_name(code), code, count)
                    for code, count in sorted(late.items(), key=lambda kv: (-kv[1], kv[0]))
                ],
                right=(2,),
            ),
        ]
    return "\n\n".join(parts) + "\n"


def overdue_table(ladder: Ladder, rows: Sequence[AgencyOverdue]) -> list[dict[str, object]]:
    """One row per agency: its overdue items, by the highest ladder step they reached."""
    present = {step for row in rows for step in row.by_step}
    columns = [(s.code, step_label(s.name)) for s in ladder.steps if s.code in present]
    if "" in present:
        columns.insert(0, ("", "Chưa đến bậc đôn đốc"))
    table = []
    for row in rows:
        line: dict[str, object] = {
            "Cơ quan": row.agency_name,
            "Mã cơ quan": row.agency_code,
            "Việc quá hạn": row.total,
        }
        for code, label in columns:
            line[label] = row.by_step.get(code, 0)
        line["Hạn sớm nhất"] = f"{row.oldest_due:%d/%m/%Y}"
        table.append(line)
    return table


def publish_sweep(
    ctx: EngineContext,
    result: SweepResult,
    overdue: Sequence[AgencyOverdue],
    agencies: Sequence[str] | None = None,
) -> tuple[str, str | None]:
    summary_key, overdue_key = sweep_keys(agencies)
    artifacts = _prefect_artifacts()
    artifacts.create_markdown_artifact(
        markdown=sweep_markdown(ctx, result, agencies),
        key=summary_key,
        description=f"Tóm tắt quét hạn ngày {result.run_date:%d/%m/%Y}",
    )
    if result.skipped_reason:
        return summary_key, None
    publish_overdue_table(ctx, overdue, result.run_date, overdue_key)
    return summary_key, overdue_key


def publish_overdue_table(
    ctx: EngineContext, overdue: Sequence[AgencyOverdue], day: date, key: str
) -> str:
    _prefect_artifacts().create_table_artifact(
        table=overdue_table(ctx.ladder, overdue),
        key=key,
        description=(
            f"Việc quá hạn chưa hoàn thành theo cơ quan, ngày {day:%d/%m/%Y} "
            f"({sum(r.total for r in overdue)} việc, {len(overdue)} cơ quan)"
        ),
    )
    return key


# ------------------------------------------------------------ the plan's status

STATUS_KEY = "plan-status"
ITEMS_ON_TIME_KEY = "plan-items-on-time"


def kpi_key(kpi: KpiProgress) -> str:
    return artifact_key("kpi", kpi.key)


def kpi_line(kpi: KpiProgress) -> str:
    """ "Đúng hạn, tháng 12/2025: 93,4% (chỉ tiêu ≥ 95%: chưa đạt), 1.820 hồ sơ"."""
    name = kpi.target.label if kpi.target else kpi.label
    month = f"{kpi.month[5:]}/{kpi.month[:4]}"
    if kpi.until is not None:
        month += f" (đến ngày {kpi.until:%d/%m/%Y})"
    if kpi.rate is None:
        return f"{name}, tháng {month}: chưa có hồ sơ."
    target = (
        f" (chỉ tiêu {target_text(kpi.target)}: {verdict(kpi.met).lower()})" if kpi.target else ""
    )
    return f"{name}, tháng {month}: {percent(kpi.rate)}{target}, {kpi.dossiers} hồ sơ."


def status_markdown(status: PlanStatus) -> str:
    day = f"{status.as_of:%d/%m/%Y}"
    parts = [
        f"# Tình hình thực hiện kế hoạch ngày {day}",
        f"{status.title} ({status.decision}).",
        md_table(
            ("Chỉ số", "Số lượng"),
            [
                ("Việc đang mở", status.open_items),
                (
                    f"Việc đến hạn trong tuần (đến {status.week_end:%d/%m/%Y})",
                    status.due_this_week,
                ),
                ("Việc quá hạn chưa hoàn thành", status.overdue_items),
                ("Việc hoàn thành đúng hạn", status.closed_on_time),
                ("Việc hoàn thành trễ hạn", status.closed_late),
                ("Tỉ lệ việc hoàn thành đúng hạn", percent(status.on_time_share)),
            ],
            right=(1,),
        ),
    ]
    if status.steps:
        parts += [
            "## Việc quá hạn theo bậc đôn đốc cao nhất đã đạt",
            md_table(("Bậc", "Số việc"), [(n, c) for _, n, c in status.steps], right=(1,)),
            "## Việc quá hạn theo cơ quan",
            md_table(
                ("Cơ quan", "Mã cơ quan", "Việc quá hạn", "Hạn sớm nhất"),
                [
                    (r.agency_name, r.agency_code, r.total, f"{r.oldest_due:%d/%m/%Y}")
                    for r in status.overdue
                ],
                right=(2,),
            ),
        ]
    else:
        parts.append("Không có việc quá hạn.")
    parts += [
        "## Chỉ số giải quyết TTHC của tháng so với chỉ tiêu của kế hoạch",
        md_table(
            ("Chỉ số", "Tỉ lệ", "Chỉ tiêu", "Đánh giá"),
            [
                (
                    k.target.label if k.target else k.label,
                    percent(k.rate),
                    target_text(k.target),
                    verdict(k.met),
                )
                for k in status.kpis
            ],
        ),
        "Bảng chi tiết theo cơ quan: artifact `daily-sweep-overdue` (việc quá hạn), "
        "`scorecard-YYYY-MM` (bảng đánh giá tháng).",
    ]
    return "\n\n".join(parts) + "\n"


def publish_plan_status(ctx: EngineContext, status: PlanStatus, *, overdue_table: bool) -> str:
    """The status as markdown, its progress bars (KPIs against their targets, items
    closed on time) and, with `overdue_table`, the overdue table of the day."""
    artifacts = _prefect_artifacts()
    artifacts.create_markdown_artifact(
        markdown=status_markdown(status),
        key=STATUS_KEY,
        description=f"Tình hình thực hiện kế hoạch ngày {status.as_of:%d/%m/%Y}: "
        f"{status.open_items} việc đang mở, {status.overdue_items} việc quá hạn.",
    )
    if status.on_time_share is not None:
        closed = status.closed_on_time + status.closed_late
        artifacts.create_progress_artifact(
            progress=round(status.on_time_share * 100, 1),
            key=ITEMS_ON_TIME_KEY,
            description=f"Việc của kế hoạch hoàn thành đúng hạn đến ngày "
            f"{status.as_of:%d/%m/%Y}: {status.closed_on_time}/{closed}.",
        )
    for kpi in status.kpis:
        if kpi.rate is not None:
            artifacts.create_progress_artifact(
                progress=round(kpi.rate * 100, 1), key=kpi_key(kpi), description=kpi_line(kpi)
            )
    if overdue_table:
        publish_overdue_table(ctx, status.overdue, status.as_of, sweep_keys(None)[1])
    return STATUS_KEY


# ------------------------------------------------------------------ inspection


def inspection_scope(report: ComplianceReport) -> str:
    section = (
        "toàn bộ kế hoạch"
        if report.section is None
        else f"mục {report.section} ({report.section_title})"
    )
    plans = f"Kế hoạch {report.decision}" if len(report.plans) <= 1 else "Các kế hoạch "
    if len(report.plans) > 1:
        plans += ", ".join(report.plans)
    return (
        f"{plans}, {section}; các việc có hạn từ {report.start:%d/%m/%Y} "
        f"đến {report.end:%d/%m/%Y}, tình hình đến ngày {report.as_of:%d/%m/%Y}."
    )


def inspection_markdown(report: ComplianceReport, html_path: Path | None = None) -> str:
    parts = [
        f"# Kiểm tra việc thực hiện kế hoạch: {report.agency_name}",
        inspection_scope(report),
        md_table(
            ("Kết quả", "Số việc"),
            [(label, report.counts[key]) for key, label in CATEGORIES.items()]
            + [("Tổng", report.total)],
            right=(1,),
        ),
        "Tỉ lệ hoàn thành đúng hạn (trên số việc đã hoàn thành): "
        f"**{percent(report.on_time_rate)}**",
        "## Theo bậc đôn đốc cao nhất đã đạt",
        md_table(("Bậc", "Số việc"), report.by_step, right=(1,)),
    ]
    if report.items:
        parts += [
            "## Danh sách việc",
            md_table(
                ("Việc", "Nhiệm vụ", "Hạn", "Kết quả", "Bậc đôn đốc", "Bằng chứng"),
                [
                    (
                        i.item_id,
                        f"{i.number} {i.title}" + (f" — {i.plan}" if i.plan else ""),
                        f"{i.due:%d/%m/%Y}",
                        i.state + (f" — {i.transfer}" if i.transfer else ""),
                        i.step,
                        i.evidence,
                    )
                    for i in report.items
                ],
            ),
        ]
    else:
        parts.append("Không có việc nào có hạn trong khoảng ngày này.")
    if html_path is not None:
        parts.append(f"Báo cáo HTML: `{html_path}`")
    return "\n\n".join(parts) + "\n"


def inspection_html(report: ComplianceReport) -> str:
    return _env.get_template("inspection.html").render(
        report=report,
        scope=inspection_scope(report),
        categories=CATEGORIES,
        on_time=percent(report.on_time_rate),
    )


def inspection_path(report: ComplianceReport, directory: Path) -> Path:
    name = artifact_key(
        "kiem-tra",
        report.agency_code,
        report.plan,
        report.section or "toan-bo",
        report.start.isoformat(),
        report.end.isoformat(),
    )
    return directory / f"{name}.html"


def reports_dir() -> Path:
    """Where inspection reports are written: `DUNGHAN_REPORTS_DIR`, else var/reports."""
    return Path(os.environ.get(REPORTS_ENV) or DEFAULT_REPORTS)


def write_inspection_html(report: ComplianceReport, directory: Path) -> Path:
    """Write the report's HTML file (same report, same file: a rerun overwrites it)."""
    path = inspection_path(report, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(inspection_html(report), encoding="utf-8")
    return path


def inspection_lines(report: ComplianceReport) -> list[str]:
    lines = [f"Kiểm tra: {report.agency_name} ({report.agency_code})", inspection_scope(report)]
    width = max(len(label) for label in CATEGORIES.values())
    lines += [f"  {label:<{width}}  {report.counts[key]:>5}" for key, label in CATEGORIES.items()]
    lines.append(f"  {'Tổng':<{width}}  {report.total:>5}")
    lines.append(f"Tỉ lệ hoàn thành đúng hạn: {percent(report.on_time_rate)}")
    lines.append("Theo bậc đôn đốc cao nhất đã đạt:")
    lines += [f"  - {name}: {count}" for name, count in report.by_step if count]
    for item in report.items:
        if item.category in ("overdue", "done_late"):
            lines.append(
                f"  Việc {item.item_id} · {item.number} {item.title}"
                + (f" ({item.plan})" if item.plan else "")
                + f" · hạn {item.due:%d/%m/%Y} · {item.state}"
            )
    return lines


def publish_inspection(report: ComplianceReport, html_path: Path) -> str:
    key = inspection_key(report.agency_code, report.section, report.plan)
    _prefect_artifacts().create_markdown_artifact(
        markdown=inspection_markdown(report, html_path),
        key=key,
        description=f"Kiểm tra {report.agency_name}: {inspection_scope(report)}",
    )
    return key


# -------------------------------------------------------------------- recompute


def recompute_summary(result: RecomputeResult) -> str:
    text = (
        f"Tính lại hạn ngày {result.run_date:%d/%m/%Y}: đã xét {result.checked} việc đang mở; "
        f"{len(result.moved)} việc đổi hạn, "
        f"{len(result.orphans)} việc không còn kỳ tương ứng (giữ nguyên)."
    )
    if result.dry_run:
        text += " Chạy thử: chưa ghi thay đổi nào."
    return text


def recompute_markdown(result: RecomputeResult) -> str:
    parts = [f"# Tính lại hạn ngày {result.run_date:%d/%m/%Y}", recompute_summary(result)]
    for title, changes in (
        ("Việc đổi hạn", result.moved),
        ("Việc không còn kỳ tương ứng (giữ nguyên)", result.orphans),
    ):
        if not changes:
            continue
        parts += [
            f"## {title}",
            md_table(
                ("Việc", "Nhiệm vụ", "Cơ quan", "Hạn cũ", "Hạn mới", "Lý do"),
                [
                    (
                        c.item_id,
                        f"{c.number} ({c.plan})" if c.plan else c.number,
                        c.agency_name,
                        f"{c.old_due:%d/%m/%Y}",
                        f"{c.new_due:%d/%m/%Y}" if c.new_due else "—",
                        c.reason,
                    )
                    for c in changes
                ],
            ),
        ]
    return "\n\n".join(parts) + "\n"


def recompute_lines(result: RecomputeResult) -> list[str]:
    lines = [recompute_summary(result)]
    for title, changes in (
        ("Việc đổi hạn:", result.moved),
        ("Việc không còn kỳ tương ứng (giữ nguyên):", result.orphans),
    ):
        if not changes:
            continue
        lines.append(title)
        for c in changes:
            new = f"{c.new_due:%d/%m/%Y}" if c.new_due else "—"
            number = f"{c.number} ({c.plan})" if c.plan else c.number
            lines.append(
                f"  Việc {c.item_id} · {number} · {c.agency_name}: {c.old_due:%d/%m/%Y} → {new}"
            )
            lines.append(f"      Lý do: {c.reason}")
    return lines


def publish_recompute(result: RecomputeResult) -> str:
    _prefect_artifacts().create_markdown_artifact(
        markdown=recompute_markdown(result),
        key=RECOMPUTE_KEY,
        description=recompute_summary(result),
    )
    return RECOMPUTE_KEY


# -------------------------------------------------------------- admin actions


def event_markdown(
    ctx: EngineContext,
    result: EventResult,
    event_code: str,
    agency_code: str,
    occurred_on: date,
    items: Sequence[tuple[int, str, date]],
) -> str:
    head = (
        f"# Sự kiện số {result.event_id}: {event_code}\n\n"
        f"{ctx.agency_name(agency_code)}, ngày {occurred_on:%d/%m/%Y}. "
    )
    if result.already_recorded:
        head += "Sự kiện đã được ghi nhận trước đó; không tạo thêm việc."
    else:
        started = ", ".join(str(ref) for ref in result.obligations)
        head += f"Nhiệm vụ khởi động: {started or 'không có'}."
    table = md_table(
        ("Việc", "Cơ quan", "Hạn"),
        [(i, ctx.agency_name(code), f"{due:%d/%m/%Y}") for i, code, due in items],
    )
    return f"{head}\n\n{table}\n"


def publish_recorded_event(markdown: str, description: str) -> str:
    _prefect_artifacts().create_markdown_artifact(
        markdown=markdown, key=RECORDED_EVENT_KEY, description=description
    )
    return RECORDED_EVENT_KEY


def _prefect_artifacts():
    # Imported on use: `dunghan inspect` and `dunghan recompute` render in a terminal and
    # should not pay for importing Prefect.
    from prefect import artifacts

    return artifacts
