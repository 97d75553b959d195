"""The monthly scorecard (bảng đánh giá tháng): how each agency handled the month's one-stop
dossiers against the plan's section V targets, the province's on-time trend over the year,
and the public list of agencies and officials who were late (plan item V.7).

measure the month → publish the table → write the report → email it to the provincial office.

The functional core is `build_scorecard` (the month's facts in, a `Scorecard` out) and
`report_html` (a `Scorecard` in, a self-contained HTML page out: inline CSS and SVG charts,
no script, no external asset). The shell reads the KPIs (`flows.dossiers`), writes the
file atomically and queues one email per month in the outbox. The flow and the terminal
command (`dunghan scorecard`) run the same steps; only the flow publishes the artifact.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlmodel import Session

from deadlines.calendar import WorkCalendar
from deadlines.ladder import role_address
from deadlines.plan import KpiTarget, Plan
from flows.dossiers import (
    COUNTS,
    INDICATORS,
    appointments_beyond_law,
    kpis,
    late_officials,
    month_bounds,
)
from flows.engine import EngineContext
from flows.parameters import ParameterError
from flows.reports.artifacts import artifact_key, percent
from flows.reports.status import target_text, verdict
from models.db import session_scope
from notifications import compose
from notifications.delivery import write_atomically
from notifications.outbox import store_messages

TEMPLATES = Path(__file__).with_name("templates")
ON_TIME = "on_time_rate"
# The ladder role that stands for the provincial office (Văn phòng UBND tỉnh, phòng KSTT):
# the report is theirs to publish (plan item V.7).
RECIPIENT_ROLE = "provincial_office"
NO_HANDLER = "(chưa ghi cán bộ xử lý)"
REPORT_WORKING_DAY = 3  # a month's scorecard is made on this working day of the next

_env = compose.template_environment(TEMPLATES)
_env.filters["percent"] = percent


# ----------------------------------------------------------------------- the month


def previous_month(today: date) -> str:
    """The month before `today`'s, as YYYY-MM: what a scheduled run reports on."""
    year, month = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    return f"{year:04d}-{month:02d}"


def check_month(text: str | None, today: date) -> str:
    """The month a person asked for, as YYYY-MM (empty: the month before `today`'s).

    Only a month that has ended: the KPIs judge the dossiers still open at the month's
    end, so in a month under way a dossier due next week would already count as late."""
    if text is None or not str(text).strip():
        return previous_month(today)
    wanted = str(text).strip()
    try:
        first, _ = month_bounds(wanted)
    except ValueError:
        raise ParameterError(
            f"Tham số month không hợp lệ: {wanted!r}. Cần tháng dạng YYYY-MM, ví dụ 2025-05; "
            "bỏ trống để lập bảng của tháng trước."
        ) from None
    if (first.year, first.month) >= (today.year, today.month):
        raise ParameterError(
            f"Tháng {first.month}/{first.year} chưa kết thúc (hôm nay {today:%d/%m/%Y}): "
            "bảng đánh giá chỉ lập cho tháng đã kết thúc, ví dụ tháng trước "
            f"({previous_month(today)})."
        )
    return f"{first.year:04d}-{first.month:02d}"


def report_days(cal: WorkCalendar, year: int) -> list[date]:
    """The days a scheduled scorecard runs for the months of `year`: the third working
    day of each following month (February of `year` to January of the next), when the
    month's figures are in and its first days off are behind."""
    days = []
    for index in range(1, 13):
        first = date(year + index // 12, index % 12 + 1, 1)
        days.append(cal.add_working_days(cal.next_working_day(first), REPORT_WORKING_DAY - 1))
    return days


def month_label(month: str) -> str:
    """'2025-05' -> '5/2025', as Vietnamese write a month."""
    first, _ = month_bounds(month)
    return f"{first.month}/{first.year}"


def months_of_year_until(month: str) -> list[str]:
    """January to `month` of its year: the months of the trend chart."""
    first, _ = month_bounds(month)
    return [f"{first.year:04d}-{m:02d}" for m in range(1, first.month + 1)]


# ---------------------------------------------------------------------- the facts


@dataclass(frozen=True)
class Indicator:
    """One KPI of the scorecard: its key in `kpis` rows, its column label, its target."""

    key: str
    label: str
    target: KpiTarget | None

    @property
    def target_text(self) -> str:
        return target_text(self.target)


@dataclass(frozen=True)
class AgencyScore:
    code: str
    name: str
    dossiers: int
    rates: dict[str, float | None]
    counts: dict[str, int] = dataclasses.field(default_factory=dict)  # COUNTS of flows.dossiers

    def meets(self, indicator: Indicator) -> bool | None:
        """Whether the agency reaches the target (None: no target, or no rate to judge)."""
        rate = self.rates.get(indicator.key)
        if indicator.target is None or rate is None:
            return None
        return indicator.target.is_met(rate)


@dataclass(frozen=True)
class LateOfficial:
    """One line of the public list (plan item V.7): an official's late dossiers."""

    agency_code: str
    agency_name: str
    handler: str
    late: int
    without_apology: int


@dataclass(frozen=True)
class LateAgency:
    code: str
    name: str
    late: int
    without_apology: int


@dataclass(frozen=True)
class TrendMonth:
    month: str
    dossiers: int
    on_time_rate: float | None  # province-wide, weighted by dossiers; None: no dossier


@dataclass(frozen=True)
class Scorecard:
    month: str
    province: str
    plan_title: str
    decision: str
    made_on: date
    indicators: tuple[Indicator, ...]
    agencies: tuple[AgencyScore, ...]  # best on-time rate first
    trend: tuple[TrendMonth, ...]  # January to the month
    late: tuple[LateOfficial, ...]  # most late dossiers first
    appointments_beyond_law: int = 0  # receipt slips later than the law allows (audit)
    count_labels: dict[str, str] = dataclasses.field(default_factory=lambda: dict(COUNTS))

    def total(self, key: str) -> int:
        """A count of `COUNTS` over every agency."""
        return sum(a.counts.get(key, 0) for a in self.agencies)

    @property
    def label(self) -> str:
        return month_label(self.month)

    @property
    def on_time(self) -> Indicator:
        return next(i for i in self.indicators if i.key == ON_TIME)

    @property
    def dossiers(self) -> int:
        return sum(a.dossiers for a in self.agencies)

    @property
    def on_time_rate(self) -> float | None:
        return self.trend[-1].on_time_rate

    @property
    def on_time_met(self) -> bool | None:
        target, rate = self.on_time.target, self.on_time_rate
        return None if target is None or rate is None else target.is_met(rate)

    @property
    def agencies_meeting_on_time(self) -> int:
        return sum(1 for a in self.agencies if a.meets(self.on_time))

    @property
    def late_agencies(self) -> tuple[LateAgency, ...]:
        """The agencies with late dossiers, most first: their officials' lines summed."""
        names = {line.agency_code: line.agency_name for line in self.late}
        late: Counter[str] = Counter()
        without_apology: Counter[str] = Counter()
        for line in self.late:
            late[line.agency_code] += line.late
            without_apology[line.agency_code] += line.without_apology
        ranked = sorted(names, key=lambda code: (-late[code], names[code]))
        return tuple(
            LateAgency(code, names[code], late[code], without_apology[code]) for code in ranked
        )

    @property
    def late_dossiers(self) -> int:
        return sum(line.late for line in self.late)

    @property
    def late_without_apology(self) -> int:
        return sum(line.without_apology for line in self.late)


def indicators_of(plan: Plan) -> tuple[Indicator, ...]:
    """The scorecard's indicators, each with the plan's target (section V) if it sets one."""
    targets = {t.code: t for t in plan.kpi_targets}
    return tuple(
        Indicator(key, label, targets.get(code)) for key, (label, code) in INDICATORS.items()
    )


def province_on_time(rows: Sequence[dict]) -> TrendMonth | None:
    """The province's on-time rate of one month's `kpis` rows, weighted by dossiers."""
    if not rows:
        return None
    total = sum(r["dossiers"] for r in rows)
    weighted = sum(r["on_time_rate"] * r["dossiers"] for r in rows)
    return TrendMonth(rows[0]["month"], total, round(weighted / total, 4))


def build_scorecard(
    month: str,
    plan: Plan,
    agency_name: Callable[[str], str],
    rows: Sequence[dict],
    trend_rows: dict[str, Sequence[dict]],
    late: Sequence[tuple[str, str, int, int]],
    made_on: date,
    appointments: int = 0,
) -> Scorecard:
    """The month's scorecard from its facts: `rows` are `kpis(month)`, `trend_rows` the
    `kpis` of each earlier month of the year, `late` is `late_officials(month)`,
    `appointments` the number of receipt slips later than the law allows;
    `agency_name` names an agency code."""
    agencies = sorted(
        (
            AgencyScore(
                r["agency"],
                agency_name(r["agency"]),
                r["dossiers"],
                {key: r[key] for key in INDICATORS},
                {key: r.get(key, 0) for key in COUNTS},
            )
            for r in rows
        ),
        key=lambda a: (-(a.rates[ON_TIME] or 0), a.name, a.code),
    )
    trend = []
    for each in months_of_year_until(month):
        measured = province_on_time(rows if each == month else trend_rows.get(each, ()))
        trend.append(measured or TrendMonth(each, 0, None))
    return Scorecard(
        month=month,
        province=plan.meta.province,
        plan_title=plan.meta.title,
        decision=plan.meta.decision,
        made_on=made_on,
        indicators=indicators_of(plan),
        agencies=tuple(agencies),
        trend=tuple(trend),
        late=tuple(
            LateOfficial(code, agency_name(code), handler or NO_HANDLER, n, without)
            for code, handler, n, without in late
        ),
        appointments_beyond_law=appointments,
    )


# --------------------------------------------------------------------- the charts


@dataclass(frozen=True)
class Bar:
    label: str
    full_name: str
    value: str
    y: float
    width: float
    met: bool | None


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars of the on-time rate per agency, with the target's vertical line."""

    width: int
    height: int
    left: int  # where bars start; agency names end just before
    plot_width: int
    bar_height: int
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    target_x: float | None
    target_label: str
    axis_y: float


BAR_LABEL_CHARS = 48


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def on_time_chart(card: Scorecard) -> BarChart:
    left, plot, row, bar, top = 330, 360, 24, 16, 30
    height = top + row * len(card.agencies) + 28
    indicator = card.on_time
    bars = tuple(
        Bar(
            label=_shorten(a.name, BAR_LABEL_CHARS),
            full_name=a.name,
            value=percent(a.rates[ON_TIME]),
            y=top + i * row + (row - bar) / 2,
            width=round((a.rates[ON_TIME] or 0) * plot, 1),
            met=a.meets(indicator),
        )
        for i, a in enumerate(card.agencies)
    )
    target = indicator.target
    return BarChart(
        width=left + plot + 70,
        height=height,
        left=left,
        plot_width=plot,
        bar_height=bar,
        bars=bars,
        ticks=tuple(Tick(left + plot * k / 5, f"{k * 20}%") for k in range(6)),
        target_x=None if target is None else round(left + target.value * plot, 1),
        target_label=f"Chỉ tiêu {indicator.target_text}",
        axis_y=top + row * len(card.agencies) + 4,
    )


@dataclass(frozen=True)
class Point:
    x: float
    y: float | None  # None: no dossier that month
    month_label: str
    value: str


@dataclass(frozen=True)
class TrendChart:
    """The province's on-time rate month by month, with the target's horizontal line."""

    width: int
    height: int
    left: int
    right: int
    top: int
    bottom: int
    points: tuple[Point, ...]
    lines: tuple[str, ...]  # SVG polyline point lists, one per run of measured months
    ticks: tuple[Tick, ...]
    target_y: float | None
    target_label: str


def trend_chart(card: Scorecard) -> TrendChart:
    left, right, top, bottom = 56, 700, 24, 204
    values = [m.on_time_rate for m in card.trend if m.on_time_rate is not None]
    target = card.on_time.target
    if target is not None:
        values.append(target.value)
    # The scale runs from 100% down to the first tick below the lowest value (or the
    # target), so that the gap between a province at 90% and the 95% line stays visible.
    lowest = max(0.0, min(values, default=1.0) - 0.05)
    step = 0.05 if lowest >= 0.8 else 0.1 if lowest >= 0.5 else 0.2
    low = round(max(0.0, 1 - math.ceil(round((1 - lowest) / step, 6)) * step), 10)

    def y_of(rate: float) -> float:
        return round(bottom - (rate - low) / (1 - low) * (bottom - top), 1)

    band = (right - left) / len(card.trend)
    points = tuple(
        Point(
            x=round(left + band * (i + 0.5), 1),
            y=None if m.on_time_rate is None else y_of(m.on_time_rate),
            month_label=f"T{int(m.month[5:])}",
            value=percent(m.on_time_rate),
        )
        for i, m in enumerate(card.trend)
    )
    lines, run = [], []
    for point in (*points, None):
        if point is not None and point.y is not None:
            run.append(f"{point.x},{point.y}")
            continue
        if len(run) > 1:
            lines.append(" ".join(run))
        run = []
    ticks, level = [], 1.0
    while level >= low - 1e-9:
        ticks.append(Tick(y_of(level), f"{round(level * 100)}%"))
        level = round(level - step, 10)
    return TrendChart(
        width=right + 20,
        height=bottom + 40,
        left=left,
        right=right,
        top=top,
        bottom=bottom,
        points=points,
        lines=tuple(lines),
        ticks=tuple(ticks),
        target_y=None if target is None else y_of(target.value),
        target_label=f"Chỉ tiêu {card.on_time.target_text}",
    )


# -------------------------------------------------------------------- what it shows


def summary(card: Scorecard) -> str:
    """One paragraph saying how the province did: the scorecard's headline."""
    if not card.agencies:
        return f"Tháng {card.label} không có hồ sơ nào được giải quyết hoặc đang giải quyết."
    on_time = card.on_time
    text = (
        f"Tháng {card.label}, toàn tỉnh có {card.dossiers} hồ sơ được giải quyết hoặc đang "
        f"giải quyết; tỷ lệ đúng hạn {percent(card.on_time_rate)}"
    )
    if on_time.target is not None:
        text += f" (chỉ tiêu {on_time.target_text}: {verdict(card.on_time_met).lower()})"
        text += (
            f"; {card.agencies_meeting_on_time}/{len(card.agencies)} cơ quan đạt chỉ tiêu đúng hạn"
        )
    text += f". {card.late_dossiers} hồ sơ trễ hạn"
    if card.late_dossiers:
        text += f", trong đó {card.late_without_apology} hồ sơ chưa có phiếu xin lỗi kịp thời"
    text += "."
    notes = []
    if card.total("late_apologies"):
        notes.append(
            f"{card.total('late_apologies')} phiếu xin lỗi gửi muộn (không sớm hơn ngày hết hạn)"
        )
    if card.total("repeated_supplements"):
        notes.append(
            f"{card.total('repeated_supplements')} hồ sơ bị yêu cầu bổ sung quá một lần "
            "(trái quy định chỉ yêu cầu bổ sung một lần)"
        )
    if card.appointments_beyond_law:
        notes.append(
            f"{card.appointments_beyond_law} giấy tiếp nhận hẹn trả muộn hơn hạn luật định"
        )
    if card.total("awaiting_supplement"):
        notes.append(
            f"{card.total('awaiting_supplement')} hồ sơ đang chờ tổ chức, cá nhân bổ sung "
            "vào cuối tháng (không tính trễ hạn)"
        )
    if notes:
        text += " Ngoài ra: " + "; ".join(notes) + "."
    return text


def scorecard_table(card: Scorecard) -> list[dict[str, object]]:
    """The Prefect table artifact: one row per agency, each rate as a percentage and
    whether it reaches the plan's target."""
    table = []
    for agency in card.agencies:
        row: dict[str, object] = {
            "Cơ quan": agency.name,
            "Mã cơ quan": agency.code,
            "Hồ sơ": agency.dossiers,
        }
        for indicator in card.indicators:
            row[indicator.label] = percent(agency.rates[indicator.key])
            if indicator.target is not None:
                row[f"{indicator.label}: chỉ tiêu {indicator.target_text}"] = verdict(
                    agency.meets(indicator)
                )
        for key, label in card.count_labels.items():
            row[label] = agency.counts.get(key, 0)
        table.append(row)
    return table


def scorecard_key(month: str) -> str:
    return artifact_key("scorecard", month)


def report_html(card: Scorecard) -> str:
    """The report: self-contained HTML (inline CSS and SVG, no script), every value escaped."""
    return _env.get_template("scorecard.html").render(
        card=card,
        summary=summary(card),
        bars=on_time_chart(card),
        trend=trend_chart(card),
        verdict=verdict,
    )


def report_text(card: Scorecard, name: str, path: Path | None) -> str:
    """The plain-text part of the email: the headline, the table, the public list."""
    return _env.get_template("scorecard.txt").render(
        card=card, name=name, summary=summary(card), path=path, signature=compose.SIGNATURE
    )


def report_path(directory: Path, month: str) -> Path:
    return Path(directory) / f"scorecard-{month}.html"


def write_report_file(directory: Path, month: str, html: str) -> Path:
    """Write the report atomically (a reader, such as the web server publishing the list,
    never sees half of it), readable by everyone: it is a public report."""
    path = report_path(directory, month)
    write_atomically(path, html.encode("utf-8"))
    path.chmod(0o644)
    return path


def scorecard_email(
    card: Scorecard, recipient: str, recipient_name: str, html: str, path: Path | None
) -> compose.Message:
    """The month's report to the provincial office: the report itself as the HTML part.
    One key per month and recipient, so a rerun never queues it twice."""
    rate = f": đúng hạn {percent(card.on_time_rate)}" if card.agencies else ""
    subject = compose.clean_header(
        f"[Đúng hạn] Bảng đánh giá giải quyết TTHC tháng {card.label}{rate}"
    )
    first, _ = month_bounds(card.month)
    name = compose.clean_header(recipient_name)
    return compose.Message(
        kind="scorecard",
        recipient=recipient,
        recipient_name=name,
        subject=subject,
        body_text=report_text(card, name, path),
        body_html=html,
        idempotency_key=compose.idempotency_key("scorecard", recipient, [], "", first.date()),
    )


# ----------------------------------------------------------------------- the shell


def scorecard_plan(ctx: EngineContext, month: str, plan: str | None = None) -> Plan:
    """The plan whose targets a month is judged against: `plan`, else the plan in force
    in the month (the 2026 plan for a month of 2026, once it is loaded)."""
    first, _ = month_bounds(month)
    return ctx.plan_of(plan, on=first.date())


def measure(
    ctx: EngineContext, session: Session, month: str, today: date, plan: str | None = None
) -> Scorecard:
    """Read the month's KPIs, those of the year's earlier months, the late list and the
    appointment-slip audit."""
    rules = ctx.one_stop
    trend_rows = {
        each: kpis(session, each, rules=rules) for each in months_of_year_until(month)[:-1]
    }
    return build_scorecard(
        month,
        scorecard_plan(ctx, month, plan),
        ctx.agency_name,
        # A month not over yet is measured so far (a dossier still open is late only
        # once its due date has passed).
        kpis(session, month, rules=rules, until=today),
        trend_rows,
        late_officials(session, month, until=today),
        today,
        len(appointments_beyond_law(session, ctx.cal, month)),
    )


def queue_email(
    ctx: EngineContext, session: Session, card: Scorecard, html: str, path: Path | None
) -> tuple[str | None, int]:
    """Store the report's email to the provincial office in the outbox: (its address or
    None when the registry has none, 1 if queued now or 0 if already queued)."""
    target = (
        role_address(ctx.ladder, ctx.registry, RECIPIENT_ROLE, "")
        if RECIPIENT_ROLE in ctx.ladder.roles
        else None
    )
    if target is None:
        return None, 0
    address, name = target
    return address, store_messages(session, [scorecard_email(card, address, name, html, path)])


@dataclass(frozen=True)
class ScorecardRun:
    path: Path
    recipient: str | None
    emailed: int  # 1: queued by this run; 0: already queued, not wanted, or no address


def make_scorecard(
    ctx: EngineContext,
    month: str,
    output_dir: Path,
    today: date,
    *,
    email: bool = True,
    plan: str | None = None,
) -> tuple[Scorecard, ScorecardRun]:
    """The terminal's run: measure, write the report, queue its email (unless not wanted)."""
    with session_scope(ctx.db) as session:
        card = measure(ctx, session, month, today, plan)
    html = report_html(card)
    path = write_report_file(output_dir, month, html)
    recipient, emailed = None, 0
    if email:
        with session_scope(ctx.db) as session:
            recipient, emailed = queue_email(ctx, session, card, html, path)
    return card, ScorecardRun(path, recipient, emailed)
