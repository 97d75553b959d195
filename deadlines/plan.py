"""A province's yearly plan as data: its obligations (nhiệm vụ), their timing and KPI targets.

The plan file (`plans/nghe-an-2025.yaml`) transcribes a decision such as 384/QĐ-UBND of
Nghệ An: one obligation per appendix row (a row with two timings becomes two obligations)
and per timed duty of the plan's body, each with its timing phrase copied verbatim. At load
every timing phrase is parsed into a deadline rule by `deadlines.phrases.parse_timing`, and
every assignee code is checked against the agency registry.

The plan may also say what its periodic words mean (`reporting:`): the data cut-off and
the sending day of monthly, quarterly, half-year and yearly reports under the reporting
regime it cites (Decree 09/2019/NĐ-CP); a phrase such as "Hàng quý" then falls due on the
regime's sending day instead of the last working day of the quarter. An obligation may
declare that it is the same duty as another (`same_as:`), so it is owed once.

Pure: no database, no clock. A bad file raises `DataFileError` listing every problem, each
with file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from deadlines.agencies import Registry, load_registry
from deadlines.calendar import WorkCalendar
from deadlines.datafile import FieldReader, LineDict, load_yaml, load_yaml_text
from deadlines.phrases import PhraseError, parse_timing
from deadlines.rules import (
    DATED_KINDS,
    MAX_BEFORE_DAY,
    MONTHS_PER_PERIOD,
    Recurring,
    Rule,
    RuleSettings,
)
from plans import PLANS_DIR

DEFAULT_PLAN_PATH = PLANS_DIR / "nghe-an-2025.yaml"

MAX_TITLE_LENGTH = 60
PARTS = ("appendix", "body")
COMPARISONS = (">=", ">")
# Rule kinds that carry dates of their own (the others wait for an event or have none).
DATE_RULE_KINDS = DATED_KINDS
# Decree 09/2019/NĐ-CP, Art. 8(5)(b): at least one working day between the end of the
# data and the sending deadline, so the sending day comes after the cut-off day.
SEND_AFTER_CUTOFF_SOURCE = "Nghị định 09/2019/NĐ-CP, Điều 8 khoản 5 điểm b"

_ROMAN_RE = re.compile(r"^[IVXL]+$")
_KPI_CODE_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class PlanMeta:
    """Who issued the plan, when, and for which year."""

    code: str
    title: str
    decision: str
    signed: date
    year: int
    province: str
    source_file: str
    issuer: str | None = None
    signer: str | None = None
    effective: date | None = None
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How officials name the plan: "Kế hoạch năm 2025 (Quyết định 384/QĐ-UBND)"."""
        return plan_label(self.year, self.decision)


def plan_label(year: int, decision: str | None) -> str:
    """A plan's short name from its year and decision number."""
    return f"Kế hoạch năm {year}" + (f" (Quyết định {decision})" if decision else "")


@dataclass(frozen=True)
class Section:
    part: str
    number: str
    title: str


@dataclass(frozen=True)
class Obligation:
    """One duty of the plan with its parsed deadline rule.

    `content`, `output`, `timing`, `lead_text`, `coordinating_text` are the source's
    words; `lead` and `coordinating` are registry codes (agencies or groups).
    """

    number: str
    part: str
    section: str
    section_title: str
    title: str
    content: str
    output: str | None
    lead: tuple[str, ...]
    coordinating: tuple[str, ...]
    timing: str
    rule: Rule
    source: str
    row: str
    lead_text: str | None = None
    coordinating_text: str | None = None
    note: str | None = None
    same_as: str | None = None
    function: str | None = None


@dataclass(frozen=True)
class ReportPeriod:
    """What a reporting regime says about one frequency of periodic report.

    The data of a period runs from day `data_from` of the month before the period to day
    `data_to` of the period's last month (Decree 09/2019/NĐ-CP, Art. 12: "từ ngày 15 tháng
    trước đến ngày 14"); the report is sent by day `send_by` of the period's last month,
    or, when the regime's sending day could not be found (`send_by` None), on the last
    working day of the period (dunghan's default, see `RuleSettings`).
    """

    freq: str
    source: str
    data_from: int | None = None
    data_to: int | None = None
    send_by: int | None = None
    send_source: str | None = None
    unconfirmed: tuple[str, ...] = ()
    note: str | None = None

    def data_window(self, year: int, index: int) -> tuple[date, date] | None:
        """First and last day of the data of the `index`-th period (0-based) of `year`."""
        if self.data_from is None or self.data_to is None:
            return None
        months = MONTHS_PER_PERIOD[self.freq]
        last_month = (index + 1) * months
        first = index * months  # the month before the period, 0 = December before
        start = (
            date(year - 1, 12, self.data_from) if first == 0 else date(year, first, self.data_from)
        )
        return start, date(year, last_month, self.data_to)


@dataclass(frozen=True)
class KpiTarget:
    """A rate the plan sets (chỉ tiêu), e.g. on-time dossiers ≥ 95%."""

    code: str
    label: str
    comparison: str
    value: float
    source: str
    text: str | None = None
    obligation: str | None = None
    note: str | None = None

    def is_met(self, rate: float) -> bool:
        return rate >= self.value if self.comparison == ">=" else rate > self.value


@dataclass(frozen=True)
class Plan:
    path: str
    meta: PlanMeta
    sections: tuple[Section, ...]
    obligations: tuple[Obligation, ...]
    kpi_targets: tuple[KpiTarget, ...]
    reporting: dict[str, ReportPeriod] = field(default_factory=dict)

    @property
    def start(self) -> date:
        """The day the plan takes effect: nothing is due before it (a monthly duty of a
        plan signed on 24/2 starts with February's, not January's)."""
        return self.meta.effective or self.meta.signed

    def owes_items(self, ob: Obligation) -> bool:
        """False for a duty written twice: its items are the other obligation's."""
        return ob.same_as is None

    def occurrences(self, ob: Obligation, cal: WorkCalendar) -> list[tuple[str, date]]:
        """(period key, due date) of each occurrence of a date-based obligation in the
        plan year, from the plan's start. The key does not depend on the calendar, so a
        new swap moves a due date, never doubles an item."""
        pairs = {
            (key, due)
            for part in rule_parts(ob.rule)
            if part.kind in DATE_RULE_KINDS
            for key, due in part.occurrences(cal, year=self.meta.year)
            if due >= self.start
        }
        return sorted(pairs, key=lambda kd: (kd[1], kd[0]))

    def default_due_days(self, ob: Obligation) -> list[str]:
        """The frequencies of `ob`'s recurring parts that fall due on the last working day
        of the period because the reporting regime's sending day is not known."""
        return [
            part.freq
            for part in rule_parts(ob.rule)
            if isinstance(part, Recurring) and part.before_day is None
        ]

    def obligation(self, number: str) -> Obligation:
        for item in self.obligations:
            if item.number == number:
                return item
        raise KeyError(f"kế hoạch {self.meta.code} không có nhiệm vụ số {number!r}")

    def kpi(self, code: str) -> KpiTarget:
        for target in self.kpi_targets:
            if target.code == code:
                return target
        raise KeyError(f"kế hoạch {self.meta.code} không có chỉ tiêu {code!r}")


def rule_parts(rule: Rule) -> list[Rule]:
    """The leaf rules of a rule (a combined rule's parts, else the rule itself)."""
    if rule.kind == "combined":
        return [leaf for part in rule.parts for leaf in rule_parts(part)]
    return [rule]


def load_plan(path: str | Path | None = None, registry: Registry | None = None) -> Plan:
    """Read and validate a plan (default: the shipped 2025 plan of Nghệ An).

    Assignee codes are checked against `registry` (default: the shipped registry).
    """
    path = Path(path) if path is not None else DEFAULT_PLAN_PATH
    data = load_yaml(path)
    if registry is None:
        registry = load_registry()
    return _PlanReader(str(path), registry).read(data)


def parse_plan(text: str, name: str, registry: Registry | None = None) -> Plan:
    """A plan from its file's text (as stored when it was loaded); `name` stands for the
    file in error messages."""
    return _PlanReader(name, registry or load_registry()).read(load_yaml_text(text, name))


# ------------------------------------------------------------------------------- reading

_TOP_KEYS = {"plan", "sections", "reporting", "obligations", "kpi_targets", "draft_problems"}
_REPORT_KEYS = {
    "data_from",
    "data_to",
    "source",
    "send_by",
    "send_source",
    "unconfirmed",
    "note",
}
_META_REQUIRED = ("code", "title", "decision", "signed", "year", "province", "source_file")
_META_KEYS = {*_META_REQUIRED, "issuer", "signer", "effective", "notes"}
_SECTION_KEYS = {"part", "number", "title"}
_OBLIGATION_KEYS = {
    "number",
    "row",
    "part",
    "section",
    "title",
    "content",
    "output",
    "lead",
    "lead_text",
    "coordinating",
    "coordinating_text",
    "timing",
    "rule",
    "source",
    "note",
    "same_as",
    "function",
}
_KPI_KEYS = {"code", "label", "comparison", "value", "source", "text", "obligation", "note"}


class _PlanReader(FieldReader):
    strip_text = False  # the plan's words are kept verbatim

    def __init__(self, path: str, registry: Registry):
        super().__init__(path)
        self.registry = registry
        self.settings = RuleSettings()
        self.same_as_lines: dict[str, int] = {}
        self.known_functions = registry.function_codes()

    def read(self, data: Any) -> Plan:
        data = self._top_level(data, _TOP_KEYS, "plan")
        self._draft_problems(data)
        meta = self._meta(data)
        sections = self._sections(data)
        reporting = self._reporting(data)
        self.settings = RuleSettings(
            **{f"{freq}_due": p.send_by + 1 for freq, p in reporting.items() if p.send_by}
        )
        obligations = self._obligations(data, sections, meta.year if meta else None)
        self._check_same_as(obligations)
        targets = self._kpi_targets(data, {o.number for o in obligations})
        self.problems.raise_if_any()
        assert meta is not None  # a missing meta is a problem, raised above
        return Plan(
            self.path,
            meta,
            tuple(sections.values()),
            tuple(obligations),
            targets,
            reporting,
        )

    def _reporting(self, data: LineDict) -> dict[str, ReportPeriod]:
        block = data.get("reporting")
        if block is None:
            return {}
        if not isinstance(block, LineDict):
            self.problems.add(data.line_of("reporting"), "mục 'reporting' phải là một bảng")
            return {}
        out: dict[str, ReportPeriod] = {}
        for freq in block:
            item = block[freq]
            what = f"chế độ báo cáo {freq!r}"
            if freq not in MONTHS_PER_PERIOD:
                self.problems.add(
                    block.line_of(freq),
                    f"{what}: kỳ không biết (chỉ dùng: {', '.join(MONTHS_PER_PERIOD)})",
                )
                continue
            if not isinstance(item, LineDict):
                self.problems.add(block.line_of(freq), f"{what} phải là một bảng")
                continue
            self._unknown_keys(item, _REPORT_KEYS, what)
            source = self._text(item, "source", what, required=True)
            days = {}
            for key, top in (("data_from", 28), ("data_to", 28), ("send_by", MAX_BEFORE_DAY - 1)):
                value = item.get(key)
                if value is not None and (
                    isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top
                ):
                    self.problems.add(
                        item.line_of(key), f"{what}: {key!r} phải là một ngày từ 1 đến {top}"
                    )
                    value = None
                days[key] = value
            if (days["data_from"] is None) != (days["data_to"] is None):
                self.problems.add(item.line, f"{what}: cần cả 'data_from' và 'data_to'")
            send_source = self._text(
                item, "send_source", what, required=days["send_by"] is not None
            )
            send_by, data_to = days["send_by"], days["data_to"]
            if send_by is not None and data_to is not None and send_by <= data_to:
                self.problems.add(
                    item.line_of("send_by"),
                    f"{what}: ngày gửi {send_by} phải sau ngày chốt số liệu {data_to} "
                    f"({SEND_AFTER_CUTOFF_SOURCE})",
                )
            unconfirmed = self._report_unconfirmed(item, what)
            if source is None:
                continue
            out[freq] = ReportPeriod(
                freq=freq,
                source=source,
                data_from=days["data_from"],
                data_to=days["data_to"],
                send_by=days["send_by"],
                send_source=send_source,
                unconfirmed=unconfirmed,
                note=item.get("note"),
            )
        return out

    def _report_unconfirmed(self, item: LineDict, what: str) -> tuple[str, ...]:
        value = item.get("unconfirmed") or []
        if not isinstance(value, list) or not all(v in _REPORT_KEYS for v in value):
            self.problems.add(
                item.line_of("unconfirmed"),
                f"{what}: 'unconfirmed' phải là danh sách tên trường của mục này",
            )
            return ()
        if value and not item.get("note"):
            self.problems.add(
                item.line_of("unconfirmed"),
                f"{what}: có 'unconfirmed' thì phải có 'note' nói điều gì chưa xác nhận",
            )
        return tuple(value)

    def _check_same_as(self, obligations: list[Obligation]) -> None:
        by_number = {o.number: o for o in obligations}
        for ob in obligations:
            if ob.same_as is None:
                continue
            line = self.same_as_lines.get(ob.number, 0)
            what = f"nhiệm vụ {ob.number}"
            other = by_number.get(ob.same_as)
            if other is None:
                self.problems.add(line, f"{what}: 'same_as' {ob.same_as!r} không có trong kế hoạch")
            elif other.number == ob.number:
                self.problems.add(line, f"{what}: 'same_as' không được trỏ về chính nó")
            elif other.same_as is not None:
                self.problems.add(
                    line,
                    f"{what}: 'same_as' {other.number} mà {other.number} lại 'same_as' "
                    f"{other.same_as}; hãy trỏ thẳng về {other.same_as}",
                )
            else:
                if other.rule != ob.rule:
                    self.problems.add(
                        line,
                        f"{what}: 'same_as' {other.number} nhưng thời hạn khác "
                        f"({ob.rule.to_dict()} ≠ {other.rule.to_dict()}): một nhiệm vụ viết "
                        "hai lần phải có cùng thời hạn",
                    )
                if set(other.lead) != set(ob.lead):
                    self.problems.add(
                        line,
                        f"{what}: 'same_as' {other.number} nhưng cơ quan chủ trì khác "
                        f"({', '.join(ob.lead)} ≠ {', '.join(other.lead)})",
                    )

    # -- helpers ---------------------------------------------------------------------

    def _codes(self, item: LineDict, key: str, what: str) -> tuple[str, ...]:
        value = item.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.add(item.line_of(key), f"{what}: {key!r} phải là danh sách mã cơ quan")
            return ()
        for code in value:
            if not self.registry.knows(code):
                self.problems.add(
                    item.line_of(key),
                    f"{what}: mã cơ quan hoặc nhóm không có trong danh bạ: {code!r} "
                    f"(mục {key!r}; danh bạ {self.registry.path})",
                )
        return tuple(value)

    def _only_external(self, codes: tuple[str, ...]) -> bool:
        """True if the known codes are all groups outside the registry (ministries, …)."""
        known = [c for c in codes if self.registry.knows(c)]
        return bool(known) and all(
            self.registry.is_group(c) and self.registry.group(c).external for c in known
        )

    def _draft_problems(self, data: LineDict) -> None:
        """A draft (`dunghan plan draft`) is refused while it lists problems to fix."""
        for item in self._list(data, "draft_problems", required=False):
            self.problems.add(
                item.line,
                f"bản nháp còn chỗ chưa sửa ở {item.get('row', '?')} ({item.get('field', '?')}): "
                f"{item.get('problem', '')} — sửa rồi xóa mục này khỏi 'draft_problems'",
            )

    # -- sections --------------------------------------------------------------------

    def _meta(self, data: LineDict) -> PlanMeta | None:
        item = data.get("plan")
        if not isinstance(item, LineDict):
            self.problems.add(data.line_of("plan"), "thiếu mục 'plan' (thông tin kế hoạch)")
            return None
        what = "thông tin kế hoạch"
        self._unknown_keys(item, _META_KEYS, what)
        texts = {
            key: self._text(item, key, what, required=True)
            for key in ("code", "title", "decision", "province", "source_file")
        }
        signed = item.get("signed")
        if not isinstance(signed, date):
            self.problems.add(item.line_of("signed"), f"{what}: 'signed' phải là ngày YYYY-MM-DD")
        effective = item.get("effective")
        if effective is not None and not isinstance(effective, date):
            self.problems.add(
                item.line_of("effective"), f"{what}: 'effective' phải là ngày YYYY-MM-DD"
            )
        year = item.get("year")
        if not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 2100:
            self.problems.add(item.line_of("year"), f"{what}: 'year' phải là một năm, ví dụ 2025")
            year = None
        notes = item.get("notes") or []
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            self.problems.add(item.line_of("notes"), f"{what}: 'notes' phải là danh sách chuỗi")
            notes = []
        if None in texts.values() or year is None or not isinstance(signed, date):
            return None
        return PlanMeta(
            code=texts["code"],
            title=texts["title"],
            decision=texts["decision"],
            signed=signed,
            year=year,
            province=texts["province"],
            source_file=texts["source_file"],
            issuer=item.get("issuer"),
            signer=item.get("signer"),
            effective=effective if isinstance(effective, date) else None,
            notes=tuple(notes),
        )

    def _sections(self, data: LineDict) -> dict[tuple[str, str], Section]:
        sections: dict[tuple[str, str], Section] = {}
        for item in self._list(data, "sections", required=True):
            number = item.get("number")
            what = f"mục {number}"
            self._unknown_keys(item, _SECTION_KEYS, what)
            part = item.get("part", "appendix")
            if part not in PARTS:
                self.problems.add(
                    item.line_of("part"), f"{what}: 'part' phải là một trong {', '.join(PARTS)}"
                )
                continue
            if not isinstance(number, str) or not _ROMAN_RE.match(number):
                self.problems.add(
                    item.line_of("number"), f"{what}: số mục phải là số La Mã, ví dụ II"
                )
                continue
            title = self._text(item, "title", what, required=True)
            if (part, number) in sections:
                self.problems.add(item.line, f"{what} ({part}) bị khai báo hai lần")
            elif title is not None:
                sections[(part, number)] = Section(part, number, title)
        return sections

    def _obligations(
        self, data: LineDict, sections: dict[tuple[str, str], Section], year: int | None
    ) -> list[Obligation]:
        obligations: list[Obligation] = []
        first_line: dict[str, int] = {}
        for item in self._list(data, "obligations", required=True):
            number = self._text(item, "number", "nhiệm vụ", required=True)
            what = f"nhiệm vụ {number}" if number else "nhiệm vụ"
            self._unknown_keys(item, _OBLIGATION_KEYS, what)
            if number is not None:
                if number in first_line:
                    self.problems.add(
                        item.line_of("number"),
                        f"số nhiệm vụ {number!r} bị trùng (đã có ở dòng {first_line[number]})",
                    )
                else:
                    first_line[number] = item.line_of("number")

            part = item.get("part", "appendix")
            section = self._section(item, part, number, sections, what)
            title = self._text(item, "title", what, required=True)
            if title is not None and len(title) > MAX_TITLE_LENGTH:
                self.problems.add(
                    item.line_of("title"),
                    f"{what}: tiêu đề dài {len(title)} ký tự, tối đa {MAX_TITLE_LENGTH}",
                )
            content = self._text(item, "content", what, required=True)
            output = self._text(item, "output", what, required=part == "appendix")
            source = self._text(item, "source", what, required=True)
            lead = self._codes(item, "lead", what)
            if item.get("lead") is None:
                self.problems.add(item.line, f"{what}: thiếu cơ quan chủ trì ('lead')")
            elif item["lead"] == []:
                self.problems.add(item.line_of("lead"), f"{what}: 'lead' không được để trống")
            elif self._only_external(lead):
                self.problems.add(
                    item.line_of("lead"),
                    f"{what}: cơ quan chủ trì phải có ít nhất một cơ quan hoặc nhóm của tỉnh",
                )
            coordinating = self._codes(item, "coordinating", what)
            rule = self._rule(item, what, year)
            same_as = self._text(item, "same_as", what, required=False)
            if same_as is not None and number is not None:
                self.same_as_lines[number] = item.line_of("same_as")
            function = self._text(item, "function", what, required=False)
            known_functions = self.known_functions
            if function is not None and function not in known_functions:
                self.problems.add(
                    item.line_of("function"),
                    f"{what}: chức năng {function!r} không có trong danh bạ "
                    f"(các mã: {', '.join(sorted(known_functions)) or 'chưa có'})",
                )

            if None in (number, section, title, content, source, rule) or not lead:
                continue
            if part == "appendix" and output is None:
                continue
            obligations.append(
                Obligation(
                    number=number,
                    part=part,
                    section=section.number,
                    section_title=section.title,
                    title=title,
                    content=content,
                    output=output,
                    lead=lead,
                    coordinating=coordinating,
                    timing=item["timing"],
                    rule=rule,
                    source=source,
                    row=item.get("row") or number,
                    lead_text=item.get("lead_text"),
                    coordinating_text=item.get("coordinating_text"),
                    note=item.get("note"),
                    same_as=same_as,
                    function=function,
                )
            )
        return obligations

    def _section(
        self,
        item: LineDict,
        part: Any,
        number: str | None,
        sections: dict[tuple[str, str], Section],
        what: str,
    ) -> Section | None:
        if part not in PARTS:
            self.problems.add(
                item.line_of("part"), f"{what}: 'part' phải là một trong {', '.join(PARTS)}"
            )
            return None
        code = item.get("section")
        if code is None:
            self.problems.add(item.line, f"{what}: thiếu trường 'section'")
            return None
        section = sections.get((part, str(code)))
        if section is None:
            self.problems.add(
                item.line_of("section"), f"{what}: mục {code!r} ({part}) không có trong 'sections'"
            )
            return None
        prefix = f"{code}." if part == "appendix" else f"B.{code}."
        if number is not None and not number.startswith(prefix):
            self.problems.add(
                item.line_of("number"),
                f"{what}: số nhiệm vụ phải bắt đầu bằng {prefix!r} (mục {code}, {part})",
            )
        return section

    def _rule(self, item: LineDict, what: str, year: int | None) -> Rule | None:
        timing = self._text(item, "timing", what, required=True)
        if timing is None or year is None:
            return None
        try:
            rule = parse_timing(timing, plan_year=year, settings=self.settings)
        except PhraseError as exc:
            self.problems.add(
                item.line_of("timing"), f"{what}: không hiểu thời hạn {timing!r}: {exc}"
            )
            return None
        written = item.get("rule")
        if written is not None and _plain(written) != _plain(rule.to_dict()):
            self.problems.add(
                item.line_of("rule"),
                f"{what}: quy tắc ghi trong tệp {_plain(written)} khác quy tắc đọc được từ "
                f"thời hạn {rule.to_dict()}",
            )
        return rule

    def _kpi_targets(self, data: LineDict, numbers: set[str]) -> tuple[KpiTarget, ...]:
        targets: list[KpiTarget] = []
        seen: dict[str, int] = {}
        for item in self._list(data, "kpi_targets", required=False):
            code = self._text(item, "code", "chỉ tiêu", required=True)
            what = f"chỉ tiêu {code}" if code else "chỉ tiêu"
            self._unknown_keys(item, _KPI_KEYS, what)
            if code is not None:
                if not _KPI_CODE_RE.match(code):
                    self.problems.add(
                        item.line_of("code"),
                        f"{what}: mã chỉ tiêu chỉ gồm chữ thường không dấu, số và '_'",
                    )
                if code in seen:
                    self.problems.add(
                        item.line_of("code"), f"{what}: mã bị trùng (đã có ở dòng {seen[code]})"
                    )
                seen.setdefault(code, item.line_of("code"))
            label = self._text(item, "label", what, required=True)
            source = self._text(item, "source", what, required=True)
            comparison = item.get("comparison")
            if comparison not in COMPARISONS:
                self.problems.add(
                    item.line_of("comparison"),
                    f"{what}: 'comparison' phải là {' hoặc '.join(repr(c) for c in COMPARISONS)}",
                )
            value = item.get("value")
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.problems.add(
                    item.line_of("value"), f"{what}: 'value' phải là số từ 0 đến 1, ví dụ 0.95"
                )
                value = None
            elif not 0 <= value <= 1:
                self.problems.add(
                    item.line_of("value"),
                    f"{what}: 'value' phải từ 0 đến 1 (tỷ lệ), không phải {value} "
                    "(viết 95% là 0.95)",
                )
                value = None
            elif comparison == ">" and value == 1:
                self.problems.add(
                    item.line_of("value"), f"{what}: không tỷ lệ nào có thể '> 1' (trên 100%)"
                )
            obligation = item.get("obligation")
            if obligation is not None and obligation not in numbers:
                self.problems.add(
                    item.line_of("obligation"),
                    f"{what}: nhiệm vụ {obligation!r} không có trong kế hoạch",
                )
            if None in (code, label, source, value) or comparison not in COMPARISONS:
                continue
            targets.append(
                KpiTarget(
                    code=code,
                    label=label,
                    comparison=comparison,
                    value=float(value),
                    source=source,
                    text=item.get("text"),
                    obligation=obligation,
                    note=item.get("note"),
                )
            )
        return tuple(targets)


def _plain(value: Any) -> Any:
    """YAML data as JSON-like values (dates as ISO strings), to compare with `to_dict()`."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, date):
        return value.isoformat()
    return value
