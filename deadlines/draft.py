"""A plan drafted from its decision: `dunghan plan draft DECISION -o plan.yaml`.

`draft_plan` reads a `Decision` (see `deadlines.decision`) and returns a `Draft`: the
plan's header (number, date, issuer, signer, effective date, year, province), the
appendix table row by row (number, content, output, lead and coordinating agencies matched
to the registry with the match's confidence, the timing phrase and the rule it parses to),
and the duties of the plan's body that carry a timing. `render_draft` writes it in the
plan format of `plans/README.md`.

The drafter never guesses silently. Every place it is unsure is a `DraftProblem`, listed
by row in the draft's `draft_problems` section (which `plan check` refuses until the admin
fixes the row and deletes the entry) and on the terminal:
- an agency it cannot match (written as "?<words>", which `plan check` also refuses) or
  only guessed (written with the guessed code, to confirm);
- a timing phrase the parser refuses (the phrase is kept; `plan check` refuses it too);
- a row whose cells it cannot separate with confidence (flattened text only: a .docx keeps
  its cells), or whose tasks and timings cannot be paired;
- a header fact it cannot find (date, effective date).

How the cells of a flattened row are separated: the appendix header gives the column order;
each way of cutting the row's lines into that many consecutive cells is scored (agency
cells should name registry entries, the timing cell should parse, a line ending in ";"
continues its cell, the lines of one cell share their bullet and final punctuation) and the
best kept. When the runner-up scores almost as well, the row is listed.

Pure: no database, no clock.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import combinations, pairwise

from deadlines.agencies import Registry
from deadlines.agency_match import AgencyMatcher, Match, OtherNames
from deadlines.decision import Decision, DecisionError, Table
from deadlines.phrases import PhraseError, parse_timing, split_timings
from deadlines.plan import MAX_TITLE_LENGTH
from deadlines.rules import fold

# Column kinds of an appendix table.
NUMBER, CONTENT, OUTPUT, LEAD, COORDINATING, TIMING, NOTE = (
    "number",
    "content",
    "output",
    "lead",
    "coordinating",
    "timing",
    "note",
)
_GROUP = "group"  # a header spanning sub-columns ("Phân công thực hiện")
DEFAULT_COLUMNS = (CONTENT, OUTPUT, LEAD, COORDINATING, TIMING)
AGENCY_COLUMNS = (LEAD, COORDINATING)
TEXT_COLUMNS = (CONTENT, OUTPUT, NOTE)

# Below this score margin between the best and the runner-up cut, a row is listed.
CELL_MARGIN = 1.0
# A flattened row with more ways to cut it than this is not cut: it is listed instead.
MAX_CUTS = 20_000
# Body sections whose points are aims, not duties.
_AIM_SECTIONS = ("muc tieu", "yeu cau", "muc dich", "quan diem")

_ROMAN = re.compile(r"^(?P<n>[IVXL]+)\.?$")
_ROW_NUMBER = re.compile(r"^(?P<n>\d{1,3})\.?$")
_BULLET = re.compile(r"^\s*[-–—+•*]\s*")
_FOOTNOTE = re.compile(r"^\[\d+\]\s*")


@dataclass(frozen=True)
class DraftProblem:
    """One place the drafter is unsure of: which row, which field, the words concerned,
    what is wrong and what to do (Vietnamese)."""

    row: str
    field: str
    text: str
    problem: str
    fix: str


@dataclass
class DraftObligation:
    number: str
    section: str
    title: str
    content: str
    output: str | None
    lead: list[str]
    lead_text: str | None
    coordinating: list[str]
    coordinating_text: str | None
    timing: str
    rule: dict | None
    source: str
    row: str | None = None
    part: str = "appendix"
    lead_matches: list[Match] = field(default_factory=list)
    coordinating_matches: list[Match] = field(default_factory=list)


@dataclass
class Draft:
    source_file: str
    meta: dict
    sections: list[dict]
    obligations: list[DraftObligation]
    problems: list[DraftProblem]
    notes: list[str]


# ================================================================================ the header


def _header(decision: Decision, problems: list[DraftProblem]) -> dict:
    lines = [line.strip() for line in decision.lines]
    folded = [fold(line) for line in lines]
    number = None
    for line in lines[:40]:
        if m := re.match(r"^S[ốô]\s*(?:hiệu)?\s*:\s*(?P<n>\S+(?:\s*/\s*\S+)*)", line):
            number = re.sub(r"\s+", "", m.group("n"))
            break
    signed, place = None, None
    for line in lines[:40]:
        if m := re.search(
            r"(?:(?P<place>[^,]+),\s*)?ngày\s+(?P<d>\d{1,2})\s+tháng\s+(?P<m>\d{1,2})\s+năm\s+"
            r"(?P<y>\d{4})",
            line,
        ):
            try:
                signed = date(int(m.group("y")), int(m.group("m")), int(m.group("d")))
            except ValueError:
                continue
            place = (m.group("place") or "").strip() or None
            break
    if number is None:
        problems.append(
            DraftProblem(
                "plan", "decision", "", "không tìm thấy số quyết định ('Số: …')",
                "ghi số quyết định vào plan.decision, ví dụ 384/QĐ-UBND",
            )
        )  # fmt: skip
    if signed is None:
        problems.append(
            DraftProblem(
                "plan", "signed", "", "không tìm thấy ngày ký ('…, ngày … tháng … năm …')",
                "ghi ngày ký vào plan.signed dạng YYYY-MM-DD",
            )
        )  # fmt: skip

    title = None
    for line in lines:
        if m := re.search(r"Ban hành kèm theo Quyết định này\s+(?P<t>.+?)\.?$", line):
            title = m.group("t").strip()
            break
    if title is None:
        title = next(
            (
                _sentence_case(lines[i + 1])
                for i, f in enumerate(folded[:-1])
                if f == "quyet dinh" and lines[i + 1].isupper()
            ),
            None,
        )
    if title is None:
        problems.append(
            DraftProblem(
                "plan", "title", "", "không tìm thấy tên kế hoạch (Điều 1: 'Ban hành kèm theo …')",
                "ghi tên kế hoạch vào plan.title",
            )
        )  # fmt: skip

    issuer = None
    for line in lines[:60]:
        if fold(line).startswith("cang cu"):
            break
        if re.match(r"^(?:CHỦ TỊCH\s+)?(?:ỦY|UỶ) BAN NHÂN DÂN\s+\S", line) or re.match(
            r"^(?:BỘ TRƯỞNG\s+)?BỘ\s+\S", line
        ):
            issuer = line
    province = place
    if issuer and (m := re.search(r"(?:TỈNH|THÀNH PHỐ)\s+(?P<p>.+)$", issuer)):
        named = m.group("p").strip()
        if place and fold(place) == fold(named):
            province = place
    issuer_text = _issuer_case(issuer, province) if issuer else None

    effective = None
    for line in lines:
        fl = fold(line)
        if "co hieu luc" not in fl:
            continue
        if re.search(r"co hieu luc(?: thi hanh)?(?: ke)? tu ngay ky", fl):
            effective = signed
        elif m := re.search(r"co hieu luc.*?tu ngay (\d{1,2})/(\d{1,2})/(\d{4})", fl):
            effective = _safe_date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
        elif (m := re.search(r"co hieu luc.*?sau (\d{1,3}) ngay ke tu ngay ky", fl)) and signed:
            effective = signed + timedelta(days=int(m.group(1)))
        break
    if effective is None:
        problems.append(
            DraftProblem(
                "plan", "effective", "", "không đọc được ngày có hiệu lực của quyết định",
                "ghi plan.effective (YYYY-MM-DD) hoặc xóa dòng đó nếu quyết định không nêu",
            )
        )  # fmt: skip

    years = re.findall(r"năm (\d{4})", title or "")
    year = int(years[-1]) if years else (signed.year if signed else None)
    signer = _signer(lines)
    notes = [
        f"Chú thích {m.group(0).strip()} của Kế hoạch: {_FOOTNOTE.sub('', line).strip()}"
        for line in lines
        if (m := _FOOTNOTE.match(line))
    ]
    code_parts = [_slug(province or "ke-hoach"), str(year or ""), _slug(number or "")]
    return {
        "code": "-".join(p for p in code_parts if p),
        "title": title,
        "decision": number,
        "issuer": issuer_text,
        "signer": signer,
        "signed": signed,
        "effective": effective,
        "year": year,
        "province": province,
        "notes": notes,
    }


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")


def _sentence_case(text: str) -> str:
    lower = text.lower()
    return lower[:1].upper() + lower[1:]


def _issuer_case(issuer: str, province: str | None) -> str:
    text = _sentence_case(issuer)
    if province:
        text = re.sub(re.escape(province.lower()), province, text)
    return text


def _signer(lines: list[str]) -> str | None:
    """ "Bùi Thanh An (KT. Chủ tịch, Phó Chủ tịch)" from the signature block."""
    for i, line in enumerate(lines):
        if not re.match(r"^(?:TM\.|KT\.|Q\.|TL\.)", line):
            continue
        roles = []
        for follow in lines[i : i + 6]:
            if follow and follow.isupper():
                if not follow.startswith("TM."):
                    roles.append(_sentence_case(follow).replace("Kt. ", "KT. "))
                continue
            if follow and not follow.isupper() and len(follow.split()) <= 6:
                role = ", ".join(roles).replace("chủ tịch", "Chủ tịch")
                return f"{follow} ({role})" if role else follow
            break
    return None


# ============================================================================ the appendix


def _column_kind(header: str) -> str | None:
    words = fold(header)
    if re.fullmatch(r"(?:so\s*)?t\.?t", words.replace(" ", "")) or words.strip() in ("stt", "tt"):
        return NUMBER
    if "chu tri" in words:
        return LEAD
    if "phoi hop" in words:
        return COORDINATING
    if re.search(r"thoi gian|thoi han|tien do", words):
        return TIMING
    if re.search(r"noi dung|nhiem vu|ten cong viec", words):
        return CONTENT
    if re.search(r"ket qua|san pham|hinh thuc", words):
        return OUTPUT
    if "ghi chu" in words:
        return NOTE
    if re.search(r"phan cong|trach nhiem|co quan thuc hien|don vi thuc hien", words):
        return _GROUP
    return None


def _flat_columns(headers: list[str]) -> tuple[list[str], list[str]]:
    """The column order of a flattened header, and the headers not understood.

    A two-row header ("Phân công thực hiện" over "Cơ quan chủ trì" and "Cơ quan phối hợp")
    flattens to the first row then the second: the sub-columns take the group's place.
    """
    kinds, unknown = [], []
    for header in headers:
        kind = _column_kind(header)
        if kind is None:
            unknown.append(header)
        elif kind != NUMBER:
            kinds.append(kind)
    if _GROUP in kinds:
        at = kinds.index(_GROUP)
        subs = [k for k in kinds[at + 1 :] if k in AGENCY_COLUMNS]
        rest = [k for k in kinds if k not in (_GROUP, *subs)]
        kinds = rest[:at] + subs + rest[at:]
    return kinds, unknown


@dataclass
class _Row:
    section: str
    number: str
    cells: dict[str, list[str]]  # column kind -> the cell's lines
    problems: list[DraftProblem]


class _Lines:
    """The features of a flattened row's lines that tell cells apart."""

    def __init__(self, lines: list[str], matcher: AgencyMatcher, year: int | None):
        self.lines = lines
        self.bullet = [bool(_BULLET.match(line)) for line in lines]
        self.style = [(_BULLET.match(line) or [""])[0] for line in lines]
        self.end = [_end_class(line) for line in lines]
        self.agency = [_agency_score(matcher.match_cell(line)) for line in lines]
        self.timing = [_parses(line, year) for line in lines]


def _end_class(line: str) -> str:
    stripped = line.rstrip()
    if stripped.endswith((";", ",")):
        return ";"
    return "." if stripped.endswith(".") else ""


def _agency_score(matches: list[Match]) -> float:
    """1 if every body named matches exactly, 0.5 if guessed, -1 if any matches nothing."""
    if not matches or any(m.code is None for m in matches):
        return -1.0
    return 1.0 if all(m.exact for m in matches) else 0.5


def _parses(text: str, year: int | None) -> bool:
    items = split_timings(text) or [text]
    try:
        for item in items:
            parse_timing(item, plan_year=year)
    except PhraseError:
        return False
    return True


def _cut_score(f: _Lines, kinds: list[str], bounds: list[tuple[int, int]], year) -> float:
    score = 0.0
    for kind, (start, end) in zip(kinds, bounds, strict=True):
        if start == end:
            score -= 4.0  # an empty cell: only when the row has too few lines
            continue
        span = range(start, end)
        if kind in AGENCY_COLUMNS:
            score += sum(2.0 * f.agency[i] if f.agency[i] > 0 else -3.0 for i in span)
        elif kind == TIMING:
            score += 3.0 if _parses("\n".join(f.lines[start:end]), year) else -2.0
        else:
            score -= sum(2.0 for i in span if f.agency[i] == 1.0 or f.timing[i])
        for a, b in pairwise(span):
            # A cell of several lines is a bulleted list; a plain line stands alone.
            if not f.bullet[b] or (not f.bullet[a] and f.bullet[b]):
                score -= 3.0
            if f.style[a] != f.style[b]:
                score -= 0.5
            if f.end[a] != ";" and f.end[a] != f.end[b]:
                score -= 1.0
        if end < len(f.lines) and f.end[end - 1] == ";":
            score -= 2.0
    return score


def _separate(
    lines: list[str], kinds: list[str], matcher: AgencyMatcher, year: int | None
) -> tuple[dict[str, list[str]], float | None]:
    """The best cut of a flattened row's lines into `kinds` cells, and the margin to the
    runner-up (None when there was only one way)."""
    n, k = len(lines), len(kinds)
    if n >= k and math.comb(n - 1, k - 1) > MAX_CUTS:
        # Too many ways to try: everything goes to the first cell, and the row is listed.
        return {kind: (lines if i == 0 else []) for i, kind in enumerate(kinds)}, None
    features = _Lines(lines, matcher, year)
    cuts: list[list[tuple[int, int]]] = []
    if n >= k:
        for inner in combinations(range(1, n), k - 1):
            edges = [0, *inner, n]
            cuts.append(list(pairwise(edges)))
    else:
        # Too few lines: some cell is empty; any of them may be.
        for filled in combinations(range(k), n):
            bounds, at = [], 0
            for i in range(k):
                bounds.append((at, at + 1) if i in filled else (at, at))
                at += i in filled
            cuts.append(bounds)
    scored = sorted(
        ((_cut_score(features, kinds, cut, year), i) for i, cut in enumerate(cuts)),
        key=lambda si: (-si[0], si[1]),
    )
    best_score, best = scored[0]
    margin = best_score - scored[1][0] if len(scored) > 1 else None
    cells = {kind: lines[s:e] for kind, (s, e) in zip(kinds, cuts[best], strict=True)}
    return cells, margin


def _flat_rows(
    lines: list[str], matcher: AgencyMatcher, year: int | None
) -> tuple[list[dict], list[_Row], list[str]]:
    """Sections and rows of a flattened appendix table (the lines after its header row)."""
    start = next((i for i, line in enumerate(lines) if fold(line.strip()) in ("stt", "tt")), None)
    if start is None:
        raise DecisionError(
            "không tìm thấy dòng tiêu đề của bảng phụ lục (cột 'STT', 'Nội dung', 'Thời gian'…)."
        )
    end = start + 1
    while end < len(lines) and not (
        _ROMAN.match(lines[end].strip()) or _ROW_NUMBER.match(lines[end].strip())
    ):
        end += 1
    kinds, unknown = _flat_columns([line.strip() for line in lines[start:end]])
    notes = []
    if unknown:
        notes.append("Cột không hiểu trong tiêu đề bảng (bỏ qua): " + "; ".join(unknown))
    if CONTENT not in kinds or TIMING not in kinds or LEAD not in kinds:
        notes.append(
            "Tiêu đề bảng thiếu cột nội dung, chủ trì hoặc thời gian; dùng thứ tự cột mặc định: "
            "nội dung, kết quả, chủ trì, phối hợp, thời gian."
        )
        kinds = list(DEFAULT_COLUMNS)
    sections: list[dict] = []
    rows: list[_Row] = []
    section = None
    i = end
    body: list[str] = []

    def flush(row: _Row | None) -> None:
        if row is None:
            return
        cells, margin = _separate(body, kinds, matcher, year)
        row.cells = cells
        where = f"{row.section}.{row.number}"
        if len(body) >= len(kinds) and math.comb(len(body) - 1, len(kinds) - 1) > MAX_CUTS:
            row.problems.append(
                DraftProblem(
                    where, "cells", " / ".join(body)[:200],
                    f"hàng có {len(body)} dòng, quá nhiều để tự tách ô: tất cả đã để ở ô đầu",
                    "tách nội dung, kết quả, chủ trì, phối hợp, thời gian theo văn bản gốc",
                )
            )  # fmt: skip
        elif len(body) < len(kinds):
            row.problems.append(
                DraftProblem(
                    where, "cells", " / ".join(body),
                    f"hàng có {len(body)} dòng cho {len(kinds)} cột: có ô trống, đã đoán ô nào",
                    "kiểm tra từng trường của nhiệm vụ với văn bản gốc",
                )
            )  # fmt: skip
        elif margin is not None and margin < CELL_MARGIN:
            shown = "; ".join(
                f"{_KIND_VI[kind]}: {len(cells[kind])} dòng" for kind in kinds if cells[kind]
            )
            row.problems.append(
                DraftProblem(
                    where, "cells", " / ".join(body),
                    f"không chắc ranh giới giữa các ô của hàng (đã chia: {shown})",
                    "đối chiếu nội dung, kết quả, chủ trì, phối hợp, thời gian với văn bản gốc",
                )
            )  # fmt: skip
        rows.append(row)

    current: _Row | None = None
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
            continue
        if _FOOTNOTE.match(stripped):
            break
        roman = _ROMAN.match(stripped)
        number = _ROW_NUMBER.match(stripped)
        if roman and i + 1 < len(lines):
            flush(current)
            current, body = None, []
            section = roman.group("n")
            sections.append({"part": "appendix", "number": section, "title": lines[i + 1].strip()})
            i += 2
            continue
        if number:
            flush(current)
            body = []
            current = _Row(section or "I", number.group("n"), {}, [])
            if section is None:
                section = "I"
                sections.append({"part": "appendix", "number": "I", "title": "Nhiệm vụ"})
            i += 1
            continue
        if current is not None:
            body.append(line.rstrip())
        i += 1
    flush(current)
    return sections, rows, notes


_KIND_VI = {
    CONTENT: "nội dung",
    OUTPUT: "kết quả",
    LEAD: "chủ trì",
    COORDINATING: "phối hợp",
    TIMING: "thời gian",
    NOTE: "ghi chú",
}


def _table_rows(table: Table) -> tuple[list[dict], list[_Row], list[str]]:
    """Sections and rows of a .docx appendix table: cells are given, only read."""
    header_rows = 0
    while header_rows < len(table.rows) and not _is_data_row(table.rows[header_rows]):
        header_rows += 1
    width = max(len(row) for row in table.rows)
    kinds: list[str | None] = []
    for col in range(width):
        texts = [row[col] for row in table.rows[:header_rows] if col < len(row)]
        found = [_column_kind(t) for t in reversed(texts)]
        kinds.append(next((k for k in found if k not in (None, _GROUP)), None))
    notes = []
    if CONTENT not in kinds or TIMING not in kinds:
        raise DecisionError(
            "bảng phụ lục không có cột nội dung hoặc thời gian thực hiện trong dòng tiêu đề."
        )
    sections: list[dict] = []
    rows: list[_Row] = []
    section = None
    for cells, merged in zip(table.rows[header_rows:], table.merged[header_rows:], strict=True):
        first = cells[0].strip()
        if _ROMAN.match(first) and (len(cells) < 3 or all(merged[2:])):
            section = _ROMAN.match(first).group("n")
            title = next((c.strip() for c in cells[1:] if c.strip()), "")
            sections.append({"part": "appendix", "number": section, "title": title})
            continue
        number = _ROW_NUMBER.match(first)
        if not number:
            if any(c.strip() for c in cells):
                notes.append(f"Bỏ qua một dòng bảng không có số thứ tự: {first or cells[1][:40]}")
            continue
        if section is None:
            section = "I"
            sections.append({"part": "appendix", "number": "I", "title": "Nhiệm vụ"})
        row_cells: dict[str, list[str]] = {}
        for col, kind in enumerate(kinds):
            if kind in (None, NUMBER) or col >= len(cells) or merged[col]:
                continue
            text = cells[col].strip("\n")
            row_cells.setdefault(kind, []).extend(
                line.rstrip() for line in text.split("\n") if line.strip()
            )
        rows.append(_Row(section, number.group("n"), row_cells, []))
    return sections, rows, notes


def _is_data_row(cells: tuple[str, ...]) -> bool:
    first = cells[0].strip()
    return bool(_ROMAN.match(first) or _ROW_NUMBER.match(first))


# ============================================================================ obligations


def _title(content: str) -> str:
    text = " ".join(_BULLET.sub("", content.split("\n")[0]).split())
    for stop in (";", ". "):
        head = text.split(stop)[0]
        if len(head) >= 15:
            text = head
    text = text.rstrip(".;,: ")
    if len(text) <= MAX_TITLE_LENGTH:
        return text
    cut = text[: MAX_TITLE_LENGTH - 1].rsplit(" ", 1)[0].rstrip(",;: ")
    return cut + "…"


def _short_decision(number: str | None) -> str:
    if not number:
        return "Quyết định"
    return f"QĐ {number}" if "QĐ" in number else number


def _codes(
    where: str, field_name: str, text: str | None, matches: list[Match], problems: list
) -> list[str]:
    codes: list[str] = []
    for match in matches:
        if match.code is None:
            codes.append(f"?{match.text}")
            near = f" (gần nhất: {match.runner_up})" if match.runner_up else ""
            problems.append(
                DraftProblem(
                    where, field_name, match.text,
                    f"không khớp được '{match.text}' với danh bạ cơ quan{near}",
                    "thay '?…' bằng mã cơ quan hoặc nhóm trong danh bạ (dunghan agencies), hoặc "
                    "thêm tên này vào plans/agency-names.yaml",
                )
            )  # fmt: skip
        else:
            if not match.exact:
                other = f"; khả năng khác: {match.runner_up}" if match.runner_up else ""
                problems.append(
                    DraftProblem(
                        where, field_name, match.text,
                        f"'{match.text}' được đoán là {match.code} (độ tin cậy "
                        f"{match.confidence:.2f}{other})",
                        "xác nhận hoặc sửa mã; nếu đúng, thêm tên vào plans/agency-names.yaml",
                    )
                )  # fmt: skip
            if match.code not in codes:
                codes.append(match.code)
    if text is not None and not matches:
        problems.append(
            DraftProblem(
                where, field_name, text, "ô cơ quan không nêu cơ quan nào",
                "ghi mã cơ quan hoặc nhóm",
            )
        )  # fmt: skip
    return codes


def _rule(where: str, timing: str, year: int | None, problems: list) -> dict | None:
    try:
        return parse_timing(timing, plan_year=year).to_dict()
    except PhraseError as exc:
        problems.append(
            DraftProblem(
                where, "timing", timing, str(exc),
                "viết lại thời hạn theo một dạng đã biết (vẫn đúng ý văn bản gốc), hoặc báo "
                "để bổ sung dạng này cho bộ đọc thời hạn",
            )
        )  # fmt: skip
        return None


def _obligations_of(
    row: _Row, meta: dict, matcher: AgencyMatcher, problems: list[DraftProblem]
) -> list[DraftObligation]:
    where = f"{row.section}.{row.number}"
    year = meta["year"]
    cells = row.cells
    problems.extend(row.problems)

    def text(kind: str) -> str | None:
        lines = cells.get(kind) or []
        return "\n".join(lines) if lines else None

    content, output, timing = text(CONTENT), text(OUTPUT), text(TIMING)
    lead_text, coordinating_text = text(LEAD), text(COORDINATING)
    if content is None:
        problems.append(
            DraftProblem(
                where, "content", "", "hàng không có nội dung công việc",
                "chép nội dung từ văn bản gốc",
            )
        )  # fmt: skip
        content = "?"
    if timing is None:
        problems.append(
            DraftProblem(
                where, "timing", "", "hàng không có thời gian thực hiện",
                "chép thời gian thực hiện từ văn bản gốc",
            )
        )  # fmt: skip
        timing = "?"
    lead_matches = matcher.match_cell(lead_text or "")
    coordinating_matches = matcher.match_cell(coordinating_text or "")
    lead = _codes(where, "lead", lead_text, lead_matches, problems)
    if lead_text is None:
        problems.append(
            DraftProblem(
                where, "lead", "", "hàng không có cơ quan chủ trì",
                "ghi mã cơ quan chủ trì vào 'lead'",
            )
        )  # fmt: skip
        lead = ["?"]
    coordinating = _codes(where, "coordinating", coordinating_text, coordinating_matches, problems)
    source = f"{_short_decision(meta['decision'])}, Phụ lục, mục {where}"

    def obligation(number: str, task: str, when: str, row_ref: str | None) -> DraftObligation:
        return DraftObligation(
            number=number,
            section=row.section,
            title=_title(task),
            content=task,
            output=output,
            lead=lead,
            lead_text=lead_text,
            coordinating=coordinating,
            coordinating_text=coordinating_text,
            timing=when,
            rule=_rule(number, when, year, problems),
            source=source,
            row=row_ref,
            lead_matches=lead_matches,
            coordinating_matches=coordinating_matches,
        )

    timing_lines = cells.get(TIMING) or []
    if len(split_timings(timing)) <= 1:
        return [obligation(where, content, timing, None)]
    # Several timings in one cell: one obligation each, paired with the n-th task.
    tasks = cells.get(CONTENT) or []
    bulleted = [line for line in timing_lines if _BULLET.match(line)]
    if len(tasks) == len(bulleted) == len(timing_lines):
        return [
            obligation(f"{where}{chr(ord('a') + i)}", task, when, where)
            for i, (task, when) in enumerate(zip(tasks, timing_lines, strict=True))
        ]
    problems.append(
        DraftProblem(
            where, "timing", timing,
            f"ô thời gian có {len(split_timings(timing))} cụm nhưng không ghép được với từng "
            "việc của ô nội dung",
            "tách thành các nhiệm vụ a, b, … mỗi nhiệm vụ một thời hạn, cùng 'row'",
        )
    )  # fmt: skip
    return [obligation(where, content, timing, None)]


# ============================================================================ the body


_SECTION = re.compile(r"^(?P<n>[IVXL]+)\.\s+(?P<t>.+)$")
_POINT = re.compile(r"^(?P<n>\d{1,2})\.\s+(?P<t>.+)$")
_LETTER = re.compile(r"^(?P<n>[a-zđ])\)\s*(?P<t>.+)$")
_BODY_TIMINGS = (
    re.compile(r"\bthuong xuyen\b"),
    re.compile(r"\b(?:dinh ky\s+)?(?:hang|moi)\s+(?:thang|quy|nam)\b"),
    re.compile(r"\bdinh ky\s+(?:6|06|sau)\s+thang\b"),
    re.compile(r"\bngay (?:sau )?khi\b[^;.]*"),
    re.compile(r"\b(?:truoc|cham nhat)\s+ngay\s+\d{1,2}\s*/\s*\d{1,2}(?:\s*/\s*\d{4})?"),
    re.compile(r"\btrong\s+(?:quy|thang)\s+[ivx\d]+(?:\s*[/-]\s*\d{4})?"),
)
_PERIODIC_BY_RULE = re.compile(
    r"\bdinh ky\b(?!\s+(?:hang|moi|6|06|sau)\b).*?(?P<ref>theo quy dinh tai\b[^.]*)"
)


def _body_duties(
    decision: Decision,
    start: int,
    end: int,
    meta: dict,
    matcher: AgencyMatcher,
    problems: list[DraftProblem],
) -> tuple[list[dict], list[DraftObligation]]:
    sections: list[dict] = []
    duties: list[DraftObligation] = []
    section = point = letter = None
    headings: dict[str, str] = {}
    bullet = 0
    aims = False
    for line in decision.lines[start:end]:
        text = line.strip()
        if not text:
            continue
        if m := _SECTION.match(text):
            section, point, letter, bullet = m.group("n"), None, None, 0
            aims = any(word in fold(m.group("t")) for word in _AIM_SECTIONS)
            headings = {"section": m.group("t")}
            continue
        if section is None or aims:
            continue
        duty_text = None
        if m := _POINT.match(text):
            point, letter, bullet = m.group("n"), None, 0
            headings["point"] = m.group("t")
            headings.pop("letter", None)
            duty_text = m.group("t")
        elif m := _LETTER.match(text):
            letter, bullet = m.group("n"), 0
            headings["letter"] = m.group("t")
            duty_text = m.group("t")
        elif _BULLET.match(text):
            bullet += 1
            duty_text = _BULLET.sub("", text)
        else:
            continue
        path = [section, point, letter, str(bullet) if bullet else None]
        number = "B." + ".".join(p for p in path if p)
        found = _body_timing(duty_text)
        if found is None:
            continue
        timing, uncertain = found
        lead_text, lead_matches = _body_lead(duty_text, headings, bool(bullet), matcher)
        where = number
        lead = _codes(where, "lead", lead_text, lead_matches, problems)
        if lead_text is None:
            lead = ["?"]
            problems.append(
                DraftProblem(
                    where, "lead", duty_text[:80], "không xác định được cơ quan chủ trì",
                    "ghi mã cơ quan chủ trì vào 'lead'",
                )
            )  # fmt: skip
        if uncertain:
            problems.append(
                DraftProblem(
                    where, "timing", timing,
                    "'Định kỳ' không nêu kỳ; đã lấy mệnh đề 'theo quy định tại …' làm thời hạn",
                    "kiểm tra thời hạn (cắt phần không phải văn bản dẫn chiếu) hoặc xóa nhiệm vụ",
                )
            )  # fmt: skip
        where_text = f"mục {section}" + "".join(f".{p}" for p in (point, letter) if p)
        if bullet:
            where_text += f" (gạch đầu dòng {bullet})"
        if not any(s["number"] == section for s in sections):
            sections.append({"part": "body", "number": section, "title": headings["section"]})
        duties.append(
            DraftObligation(
                number=number,
                section=section,
                title=_title(duty_text),
                content=duty_text,
                output=None,
                lead=lead,
                lead_text=lead_text,
                coordinating=[],
                coordinating_text=None,
                timing=timing,
                rule=_rule(number, timing, meta["year"], problems),
                source=f"{_short_decision(meta['decision'])}, Kế hoạch, {where_text}",
                part="body",
                lead_matches=lead_matches,
            )
        )
    return sections, duties


def _body_timing(text: str) -> tuple[str, bool] | None:
    """The timing a body duty states, cut from its words, and whether it is uncertain."""
    key = fold(text)
    found = [m for pattern in _BODY_TIMINGS if (m := pattern.search(key))]
    if found:
        m = min(found, key=lambda m: m.start())
        return text[m.start() : m.end()].strip().rstrip(",;"), False
    if m := _PERIODIC_BY_RULE.search(key):
        return text[m.start("ref") : m.end("ref")].strip().rstrip(",;"), True
    return None


def _body_lead(
    text: str, headings: dict[str, str], is_bullet: bool, matcher: AgencyMatcher
) -> tuple[str | None, list[Match]]:
    """Who leads a body duty: the agency its sentence starts with, else the lettered or
    numbered heading above it when that heading names agencies."""
    words = text.split()
    for n in range(min(len(words), 14), 1, -1):
        prefix = " ".join(words[:n]).rstrip(",;:")
        matches = matcher.match_cell(prefix)
        if matches and all(m.exact for m in matches):
            return prefix, matches
    candidates = [headings.get("letter")] if is_bullet else []
    candidates.append(headings.get("point"))
    for heading in candidates:
        if heading:
            matches = matcher.match_cell(heading)
            if matches and all(m.exact for m in matches):
                return heading, matches
    return None, []


# ============================================================================ the draft


def draft_plan(
    decision: Decision, registry: Registry, names: OtherNames, *, source_file: str | None = None
) -> Draft:
    """The plan a decision states, with every place the drafter is unsure of.

    Raises `DecisionError` when the decision has no appendix table to read at all.
    """
    problems: list[DraftProblem] = []
    meta = _header(decision, problems)
    matcher = AgencyMatcher(registry, names, province=meta["province"], on=meta["signed"])
    folded = [fold(line.strip()) for line in decision.lines]
    appendix = next((i for i, f in enumerate(folded) if f == "phu luc"), None)
    plan_start = next(
        (i for i, f in enumerate(folded) if f == "ke hoach" and (appendix is None or i < appendix)),
        None,
    )
    notes: list[str] = []
    if decision.tables:
        sections, rows, table_notes = _table_rows(decision.tables[0])
        body_end = min(decision.table_lines[0], appendix if appendix is not None else 10**9)
    else:
        if appendix is None:
            raise DecisionError(
                "không tìm thấy phụ lục (dòng 'PHỤ LỤC' và bảng nhiệm vụ) trong quyết định."
            )
        sections, rows, table_notes = _flat_rows(
            list(decision.lines[appendix + 1 :]), matcher, meta["year"]
        )
        body_end = appendix
    notes.extend(table_notes)
    if not rows:
        raise DecisionError("bảng phụ lục không có hàng nhiệm vụ nào (hàng có số thứ tự).")
    obligations: list[DraftObligation] = []
    previous: dict[str, int] = {}
    for row in rows:
        number = int(row.number)
        last = previous.get(row.section, 0)
        if number != last + 1:
            notes.append(
                f"Mục {row.section}: số thứ tự nhảy từ {last} sang {number} (giữ số của văn bản)."
            )
        previous[row.section] = number
        obligations.extend(_obligations_of(row, meta, matcher, problems))
    if plan_start is not None:
        body_sections, duties = _body_duties(
            decision, plan_start + 1, body_end, meta, matcher, problems
        )
        sections.extend(body_sections)
        obligations.extend(duties)
    else:
        notes.append("Không tìm thấy phần 'KẾ HOẠCH' trước phụ lục: chưa lấy nhiệm vụ ở thân.")
    return Draft(
        source_file=source_file or decision.path,
        meta=meta,
        sections=sections,
        obligations=obligations,
        problems=problems,
        notes=notes,
    )


# ============================================================================ rendering


# What YAML cannot hold unescaped: control characters (but tab and newline), C1 controls,
# surrogates and the two non-characters.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _q(value) -> str:
    """A YAML scalar: null, a date, or a double-quoted string (JSON escapes are YAML's)."""
    if value is None:
        return "null"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    return _json(value)


def _json(value) -> str:
    """JSON (valid YAML flow) with the characters YAML refuses escaped."""
    text = json.dumps(value, ensure_ascii=False)
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _comment(text: str) -> str:
    """Text for a YAML comment: one line, without the characters YAML refuses."""
    return _UNPRINTABLE.sub("\ufffd", " ".join(text.split()))


def _text(key: str, value: str | None, indent: str) -> list[str]:
    if value is None:
        return [f"{indent}{key}: null"]
    lines = value.split("\n")
    plain = all(line == line.strip() and line and "\t" not in line for line in lines)
    plain = plain and not _UNPRINTABLE.search(value)
    if len(lines) > 1 and plain:
        return [f"{indent}{key}: |-", *(f"{indent}  {line}" for line in lines)]
    return [f"{indent}{key}: {_q(value)}"]


def _flow(values: list[str]) -> str:
    return "[" + ", ".join(_q(v) if not re.fullmatch(r"[A-Z0-9-]+", v) else v for v in values) + "]"


def _match_comment(label: str, matches: list[Match], indent: str) -> list[str]:
    out = []
    for m in matches:
        how = {
            "name": "tên trong danh bạ",
            "other_name": "tên khác đã khai báo",
            "guess": "ĐOÁN, cần xác nhận",
            "none": "KHÔNG KHỚP",
        }[m.how]
        target = m.code or "?"
        out.append(
            f"{indent}# {label}: «{_comment(m.text)}» → {target} ({how}, độ tin cậy "
            f"{m.confidence:.2f})"
        )
    return out


def render_draft(draft: Draft) -> str:
    """The draft as a plan file (plans/README.md), its problems first."""
    meta = draft.meta
    out = [
        "# BẢN NHÁP kế hoạch do `dunghan plan draft` đọc từ quyết định:",
        f"#   {_comment(draft.source_file)}",
        "# Mỗi mục trong 'draft_problems' là một chỗ máy chưa chắc: sửa nhiệm vụ tương ứng rồi",
        "# xóa mục đó. `dunghan plan check` từ chối tệp chừng nào còn 'draft_problems'.",
        "# Nội dung, kết quả, cơ quan, thời gian được chép nguyên văn; mã cơ quan được khớp với",
        "# danh bạ (chú thích '# chủ trì:' / '# phối hợp:' ghi cách khớp và độ tin cậy).",
        "",
    ]
    if draft.problems:
        out.append(f"# {len(draft.problems)} chỗ cần sửa.")
        out.append("draft_problems:")
        for p in draft.problems:
            out.append(f"  - row: {_q(p.row)}")
            out.append(f"    field: {p.field}")
            if p.text:
                out.append(f"    text: {_q(p.text)}")
            out.append(f"    problem: {_q(p.problem)}")
            out.append(f"    fix: {_q(p.fix)}")
        out.append("")
    if draft.notes:
        out.extend(f"# Ghi chú: {_comment(note)}" for note in draft.notes)
        out.append("")
    out.append("plan:")
    for key in ("code", "title", "decision", "issuer", "signer", "signed", "effective", "year"):
        out.append(f"  {key}: {_q(meta[key])}")
    out.append(f"  province: {_q(meta['province'])}")
    out.append(f"  source_file: {_q(draft.source_file)}")
    if meta["notes"]:
        out.append("  notes:")
        out.extend(f"    - {_q(note)}" for note in meta["notes"])
    out.append("")
    out.append("sections:")
    for s in draft.sections:
        out.append(f"  - {{part: {s['part']}, number: {s['number']}, title: {_q(s['title'])}}}")
    out.append("")
    out.append("obligations:")
    for o in draft.obligations:
        out.append(f"  - number: {_q(o.number)}")
        if o.row:
            out.append(f"    row: {_q(o.row)}")
        if o.part != "appendix":
            out.append(f"    part: {o.part}")
        out.append(f"    section: {o.section}")
        out.append(f"    title: {_q(o.title)}")
        out.extend(_text("content", o.content, "    "))
        out.extend(_text("output", o.output, "    "))
        out.extend(_match_comment("chủ trì", o.lead_matches, "    "))
        out.append(f"    lead: {_flow(o.lead)}")
        if o.lead_text is not None:
            out.extend(_text("lead_text", o.lead_text, "    "))
        out.extend(_match_comment("phối hợp", o.coordinating_matches, "    "))
        out.append(f"    coordinating: {_flow(o.coordinating)}")
        if o.coordinating_text is not None:
            out.extend(_text("coordinating_text", o.coordinating_text, "    "))
        out.extend(_text("timing", o.timing, "    "))
        if o.rule is not None:
            out.append(f"    rule: {_json(o.rule)}")
        else:
            out.append("    # rule: (không đọc được thời hạn — xem draft_problems)")
        out.append(f"    source: {_q(o.source)}")
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"
