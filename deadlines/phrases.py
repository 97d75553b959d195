"""The timing-phrase parser: a plan's "Thời gian thực hiện" cell -> a deadline rule.

`parse_timing("Quý III/2025")` returns `Period(2025-07-01, 2025-09-30, "Quý III/2025")`.
The parser knows a closed set of grammars (one per rule kind, listed in `_CLOSED` and
`_FREE` below) and never guesses: a phrase that none of them matches, or that matches but
names an impossible date, quarter or month, raises `PhraseError` naming the phrase.

Matching is done on a folded form of the phrase (NFC, lower case, no diacritics, đ -> d,
single spaces, no leading bullet or trailing dot), so "Quý III/2025", "quy iii/2025" and a
decomposed (NFD) "Quý" read the same. The folded form has the same length as the cleaned
wording, so an event or a reference is cut out of the original wording, diacritics intact.

A phrase joining several timings with "và", "hoặc", "," or ";" (or adding one in brackets:
"Hằng năm (hoặc đột xuất khi có yêu cầu)") becomes a `Combined` rule, but only
when every part is itself a known phrase: "Hàng quý và đột xuất khi có yêu cầu" is two
rules, while "Theo Quyết định số 1085/QĐ-TTg … và Kế hoạch số 793/KH-UBND …" is one
reference, because "Kế hoạch số 793…" alone is not a timing phrase. A cell with several
"- " bullet lines holds several obligations: `split_timings` separates them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from itertools import pairwise

from deadlines.rules import (
    DEFAULT_SETTINGS,
    MAX_BEFORE_DAY,
    MIN_BEFORE_DAY,
    ROMAN,
    AfterEvent,
    Annual,
    Combined,
    Continuous,
    Fixed,
    OnDemand,
    Period,
    Recurring,
    Reference,
    Rule,
    RuleDataError,
    RuleSettings,
    Starting,
    fold,
    last_day_of_month,
)

EXAMPLES = (
    '"Trước ngày 05/3/2025", "Chậm nhất ngày 05/3/2025", "Tháng 02/2025", "6/2025", '
    '"Quý III/2025", "Trong năm 2025", "2025 - 2026", "Hằng tháng", "Trước ngày 23 hằng tháng", '
    '"Hằng quý", "Trước ngày 01/6 và 15/11 hằng năm", "Từ tháng 6/2025", '
    '"Sau 03 ngày làm việc kể từ ngày <sự kiện>", "Ngay sau khi <sự kiện>", "Thường xuyên", '
    '"Đột xuất khi có yêu cầu", "Theo Kế hoạch …", "Theo lộ trình của Bộ …"'
)


class PhraseError(ValueError):
    """A timing phrase the parser does not understand, or one naming an impossible date.

    `phrase` is the phrase as given; `reason` says what is wrong when the phrase matched a
    known form (None when it matched none).
    """

    def __init__(self, phrase: str, reason: str | None = None):
        self.phrase = phrase
        self.reason = reason
        if reason is None:
            message = (
                f'Không hiểu cụm thời hạn: "{phrase}". Hãy viết theo một dạng đã biết, '
                f"ví dụ: {EXAMPLES}."
            )
        else:
            message = f'Cụm thời hạn "{phrase}": {reason}.'
        super().__init__(message)


class _Invalid(Exception):
    """A phrase matched a grammar but says something impossible; `reason` says what."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------------------- cleaning

_SPACES = re.compile(r"\s+")
_BULLET = re.compile(r"^\s*[-–—+•*]+\s*")
_LEADING_BULLETS = re.compile(r"^(?:[-–—+•*]\s*)+")
_TRAILING = re.compile(r"[\s.;,:]+$")
_QUI = re.compile(r"\bqui\b")
_DASHES = str.maketrans({"–": "-", "—": "-", "‐": "-", "‑": "-"})


def _clean(raw: str) -> str:
    """NFC, stray combining marks dropped, single spaces, no bullet, no trailing dot."""
    text = unicodedata.normalize("NFC", raw)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = _SPACES.sub(" ", text).strip()
    text = _LEADING_BULLETS.sub("", text)
    return _TRAILING.sub("", text)


@dataclass(frozen=True)
class _Text:
    """A cleaned phrase (`text`) and its folded matching form (`key`), offset for offset."""

    text: str
    key: str

    @classmethod
    def of(cls, raw: str) -> _Text:
        text = _clean(raw)
        # "Quí" is an older spelling of "Quý"; same length, so offsets still match.
        return cls(text, _QUI.sub("quy", fold(text).translate(_DASHES)))

    def cut(self, start: int, end: int | None = None) -> _Text:
        return _Text.of(self.text[start:end])


def split_timings(text: str) -> list[str]:
    """The separate timings of one plan cell: one per "- " bullet line.

    A line without a bullet continues the item above it (a wrapped line), or starts the
    first item. Items come back with single spaces and without their bullets; an empty
    cell gives [].
    """
    items: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if _BULLET.match(line) or not items:
            items.append(_BULLET.sub("", line))
        else:
            items[-1] += " " + line
    return [_SPACES.sub(" ", item).strip() for item in items if item.strip()]


# ---------------------------------------------------------------------------- grammars


def _grammar(pattern: str) -> re.Pattern[str]:
    """A grammar over the folded form; ASCII mode, so that \\d is only 0-9."""
    return re.compile(pattern, re.ASCII)


# An optional verb naming the work, which does not change the timing ("Hoàn thành trước
# ngày …", "Công khai ngay sau khi …", "Kiểm tra đột xuất …").
_VERB = (
    r"(?:(?:hoan thanh|hoan thien|thuc hien|trien khai|to chuc|bao cao|trinh|gui|cong khai|"
    r"cap nhat|ban hanh|kiem tra)\s+)?"
)
_WITHIN = r"(?P<within>trong\s+)?"
_LIST_SEP = r"(?:\s*[,-]\s*|\s+(?:va|den)\s+)"
_YEAR_SUFFIX = r"(?:\s*/\s*(?P<year>\d{4})|\s+nam\s+(?P<year2>\d{4})|\s*-\s*(?P<year3>\d{4}))?"
_QUARTER = r"(?:[ivx]+|\d{1,2})"
_DATE = (
    r"(?:(?P<d>\d{1,2})\s*[/.-]\s*(?P<m>\d{1,2})(?:\s*[/.-]\s*(?P<y>\d{4}))?"
    r"|(?P<d2>\d{1,2})\s+thang\s+(?P<m2>\d{1,2})(?:\s*,?\s*nam\s+(?P<y2>\d{4}))?)"
)

_MONTHS = _grammar(
    rf"^{_VERB}{_WITHIN}thang\s+(?P<items>\d{{1,2}}(?:{_LIST_SEP}(?:thang\s+)?\d{{1,2}})*)"
    rf"{_YEAR_SUFFIX}$"
)
_QUARTERS = _grammar(
    rf"^{_VERB}{_WITHIN}quy\s+(?P<items>{_QUARTER}(?:{_LIST_SEP}(?:quy\s+)?{_QUARTER})*)"
    rf"{_YEAR_SUFFIX}$"
)
_HALF_YEAR = _grammar(
    rf"^{_VERB}{_WITHIN}(?:6|06|sau)\s+thang\s+(?P<half>dau|cuoi)\s+nam(?:\s+(?P<year>\d{{4}}))?$"
)
_YEAR = _grammar(rf"^{_VERB}{_WITHIN}nam(?:\s+(?P<year>\d{{4}}))?$")
_FIXED = _grammar(
    rf"^{_VERB}(?P<how>truoc|cham nhat(?:\s+la)?|muon nhat(?:\s+la)?|han chot(?:\s+la)?)\s+"
    rf"(?:(?:vao\s+)?ngay\s+)?{_DATE}$"
)
_EVERY = _grammar(rf"^{_VERB}(?:dinh ky\s+)?(?:hang|moi)\s+(?P<unit>thang|quy|nam)$")
_EVERY_HALF_YEAR = _grammar(
    rf"^{_VERB}(?:dinh ky\s+)?(?:(?:hang|moi)\s+)?(?:6|06|sau)\s+thang(?:\s+mot\s+lan)?$"
)
_MONTHLY_BEFORE = (
    _grammar(
        rf"^{_VERB}(?:dinh ky\s+)?truoc\s+ngay\s+(?P<day>\d{{1,2}})\s+(?:cua\s+)?(?:hang|moi)"
        rf"\s+thang$"
    ),
    _grammar(
        rf"^{_VERB}(?:dinh ky\s+)?(?:hang|moi)\s+thang\s*,?\s*truoc\s+ngay\s+(?P<day>\d{{1,2}})$"
    ),
)
_CONTINUOUS = _grammar(
    rf"^{_VERB}(?:thuong xuyen|lien tuc)(?:(?:\s*,\s*|\s+va\s+)(?:thuong xuyen|lien tuc))?$"
)
_ON_DEMAND = _grammar(
    rf"^{_VERB}(?:dot xuat(?:\s+(?:khi co|khi duoc|theo)\s+yeu cau)?"
    rf"|(?:khi co|khi duoc|theo)\s+yeu cau)$"
)
# The documents a "Theo …" reference may name.
_REFERENCE = _grammar(
    rf"^{_VERB}(?P<ref>theo)\s+(?:ke hoach|quyet dinh|cong van|thong bao|nghi dinh|thong tu|chi thi"
    r"|nghi quyet|luat|van ban|chuong trinh|huong dan|lich|tien do|lo trinh|quy dinh|quy che"
    r"|de an)\b"
)
_AMOUNT = _grammar(
    rf"^{_VERB}(?:(?:sau|trong|trong vong|trong thoi han|cham nhat(?:\s+la)?|muon nhat"
    rf"(?:\s+la)?|toi da|khong qua)\s+)?(?P<n>\d{{1,3}})\s+ngay(?P<working>\s+lam viec)?"
    rf"\s*,?\s+(?:ke tu|tinh tu|tu|sau khi|sau)\s+(?:(?:ngay|khi|thoi diem)\s+)?(?P<event>\S.*)$"
)
_IMMEDIATELY = _grammar(rf"^{_VERB}ngay\s+(?:sau\s+khi|sau|khi)\s+(?P<event>\S.*)$")
_AFTER_CLAUSE = _grammar(rf"^{_VERB}sau\s+khi\s+(?P<event>\S.*)$")
# "Sau <noun>" without "khi" is accepted only for activities: "Sau kiểm tra" is an event,
# "Sau vài ngày" is not.
_AFTER_ACTIVITY = _grammar(
    rf"^{_VERB}sau\s+(?P<event>(?:kiem tra|thanh tra|giam sat|hoi nghi|hoi thao|tap huan"
    rf"|ra soat|danh gia|sap xep|sap nhap|hop nhat)\b.*)$"
)
# What an event must not be: a duration or a date ("vài ngày", "05/3/2025", "ngày 5/3").
_NOT_AN_EVENT = _grammar(
    r"^(?:\d|(?:vai|mot vai|may|it|nhieu|mot|hai|ba|bon|nam|sau|bay|tam|chin|muoi)\s+"
    r"(?:ngay|tuan|thang|quy|nam|gio|phut)\b|(?:ngay|thang|quy|nam)\s+\d)"
)
_JOIN = _grammar(r"\s*;\s*|\s*,?\s+(?:va|hoac)\s+|\s*,\s*")
# "X (hoặc Y)": a second timing added in brackets.
_BRACKETED = _grammar(r"^(?P<head>.*\S)\s*\(\s*(?:hoac|va|hay)\s+(?P<tail>[^()]*[^()\s])\s*\)$")

_ROMAN_NUMBERS = {
    "i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9,
    "x": 10, "xi": 11, "xii": 12,
}  # fmt: skip


@dataclass
class _Context:
    plan_year: int | None
    settings: RuleSettings
    memo: dict[str, Rule | _Invalid | None] = field(default_factory=dict)


Grammar = Callable[[_Text, _Context], Rule | None]


def _year(m: re.Match[str], ctx: _Context, *groups: str) -> int:
    for group in groups:
        if m.group(group):
            year = int(m.group(group))
            if year < 1:
                raise _Invalid(f"năm {m.group(group)} không hợp lệ")
            return year
    if ctx.plan_year is None:
        raise _Invalid("cụm này không nêu năm; cần biết năm của kế hoạch (plan_year) để tính hạn")
    return ctx.plan_year


def _numbers(items: str, word: str, name: str, parse_one: Callable[[str], int]) -> list[int]:
    """The consecutive numbers of "ii, iii", "2 va 3", "2-3", "thang 2 den thang 4".

    `word` is the folded unit word that may repeat before a number; `name` names it in
    messages.
    """
    tokens = re.split(rf"({_LIST_SEP})", items)
    values = [parse_one(t.strip().removeprefix(word).strip()) for t in tokens[0::2]]
    seps = [s.strip() for s in tokens[1::2]]
    numbers = [values[0]]
    for sep, value in zip(seps, values[1:], strict=True):
        if sep in ("-", "den") and value > numbers[-1]:
            numbers.extend(range(numbers[-1] + 1, value + 1))
        else:
            numbers.append(value)
    if any(b != a + 1 for a, b in pairwise(numbers)):
        raise _Invalid(f"các {name} phải liền nhau và theo thứ tự tăng dần")
    return numbers


def _month_number(token: str) -> int:
    month = int(token)
    if not 1 <= month <= 12:
        raise _Invalid(f"tháng {token} không tồn tại (chỉ có tháng 1–12)")
    return month


def _quarter_number(token: str) -> int:
    quarter = int(token) if token.isdigit() else _ROMAN_NUMBERS.get(token)
    if quarter is None:
        raise _Invalid(f"'{token.upper()}' không phải số quý (dùng I–IV hoặc 1–4)")
    if not 1 <= quarter <= 4:
        raise _Invalid(f"quý {token.upper()} không tồn tại (chỉ có quý I–IV)")
    return quarter


def _months(p: _Text, ctx: _Context) -> Rule | None:
    m = _MONTHS.match(p.key)
    if not m:
        return None
    months = _numbers(m.group("items"), "thang", "tháng", _month_number)
    year = _year(m, ctx, "year", "year2", "year3")
    span = f"{months[0]}" if len(months) == 1 else f"{months[0]}–{months[-1]}"
    return Period(
        date(year, months[0], 1), last_day_of_month(year, months[-1]), f"tháng {span}/{year}"
    )


def _quarters(p: _Text, ctx: _Context) -> Rule | None:
    m = _QUARTERS.match(p.key)
    if not m:
        return None
    quarters = _numbers(m.group("items"), "quy", "quý", _quarter_number)
    year = _year(m, ctx, "year", "year2", "year3")
    first, last = quarters[0], quarters[-1]
    span = ROMAN[first] if first == last else f"{ROMAN[first]}–{ROMAN[last]}"
    return Period(
        date(year, 3 * first - 2, 1), last_day_of_month(year, 3 * last), f"Quý {span}/{year}"
    )


def _half_year(p: _Text, ctx: _Context) -> Rule | None:
    m = _HALF_YEAR.match(p.key)
    if not m:
        return None
    year = _year(m, ctx, "year")
    if m.group("half") == "dau":
        return Period(date(year, 1, 1), date(year, 6, 30), f"6 tháng đầu năm {year}")
    return Period(date(year, 7, 1), date(year, 12, 31), f"6 tháng cuối năm {year}")


def _whole_year(p: _Text, ctx: _Context) -> Rule | None:
    m = _YEAR.match(p.key)
    # "Năm" alone is no timing; "Trong năm" is the plan's year.
    if not m or not (m.group("within") or m.group("year")):
        return None
    year = _year(m, ctx, "year")
    return Period(date(year, 1, 1), date(year, 12, 31), f"năm {year}")


def _fixed(p: _Text, ctx: _Context) -> Rule | None:
    m = _FIXED.match(p.key)
    if not m:
        return None
    day_text, month_text = m.group("d") or m.group("d2"), m.group("m") or m.group("m2")
    year = _year(m, ctx, "y", "y2")
    try:
        day = date(year, int(month_text), int(day_text))
    except ValueError:
        raise _Invalid(f"ngày {day_text}/{month_text}/{year} không tồn tại") from None
    return Fixed(day=day, before=m.group("how") == "truoc")


def _recurring(p: _Text, ctx: _Context) -> Rule | None:
    if m := _EVERY.match(p.key):
        freq = {"thang": "monthly", "quy": "quarterly", "nam": "yearly"}[m.group("unit")]
    elif _EVERY_HALF_YEAR.match(p.key):
        freq = "half_yearly"
    else:
        return None
    return Recurring(freq=freq, before_day=ctx.settings.due_day(freq))


# "Trước ngày 05 tháng cuối cùng của mỗi quý": the quarter's last month names the day's
# month, so this (unlike "trước ngày 15 hàng quý") says which day it is.
_QUARTERLY_BEFORE = _grammar(
    rf"^{_VERB}(?:dinh ky\s+)?truoc\s+ngay\s+(?P<day>\d{{1,2}})\s+(?:cua\s+)?thang\s+cuoi"
    r"(?:\s+cung)?\s+(?:cua\s+)?(?:moi|hang|cac)\s+quy$"
)


def _quarterly_before(p: _Text, ctx: _Context) -> Rule | None:
    m = _QUARTERLY_BEFORE.match(p.key)
    if not m:
        return None
    day = int(m.group("day"))
    if not MIN_BEFORE_DAY <= day <= MAX_BEFORE_DAY:
        raise _Invalid(
            f"'trước ngày {m.group('day')} tháng cuối quý' không dùng được: ngày phải từ "
            f"{MIN_BEFORE_DAY} đến {MAX_BEFORE_DAY}"
        )
    return Recurring(freq="quarterly", before_day=day)


def _monthly_before(p: _Text, ctx: _Context) -> Rule | None:
    m = next((m for g in _MONTHLY_BEFORE if (m := g.match(p.key))), None)
    if not m:
        return None
    day = int(m.group("day"))
    if not MIN_BEFORE_DAY <= day <= MAX_BEFORE_DAY:
        raise _Invalid(
            f"'trước ngày {m.group('day')} hằng tháng' không dùng được: ngày phải từ "
            f"{MIN_BEFORE_DAY} đến {MAX_BEFORE_DAY} để tháng nào cũng có ngày liền trước nó"
        )
    return Recurring(freq="monthly", before_day=day)


def _continuous(p: _Text, ctx: _Context) -> Rule | None:
    return Continuous() if _CONTINUOUS.match(p.key) else None


def _on_demand(p: _Text, ctx: _Context) -> Rule | None:
    return OnDemand() if _ON_DEMAND.match(p.key) else None


def _reference(p: _Text, ctx: _Context) -> Rule | None:
    m = _REFERENCE.match(p.key)
    # A verb before "Theo …" ("Thực hiện theo lộ trình …") is not part of the reference.
    return Reference(text=p.text[m.start("ref") :]) if m else None


def _event(p: _Text, m: re.Match[str]) -> str:
    key = p.key[m.start("event") :]
    if _NOT_AN_EVENT.match(key):
        raise _Invalid(
            f"'{p.text[m.start('event') :]}' không phải một sự kiện; mốc tính hạn phải là một "
            "việc, ví dụ 'nhận được Quyết định …', không phải một ngày hay một khoảng thời gian"
        )
    return p.text[m.start("event") :]


def _after_amount(p: _Text, ctx: _Context) -> Rule | None:
    m = _AMOUNT.match(p.key)
    if not m:
        return None
    amount = int(m.group("n"))
    if amount < 1:
        raise _Invalid("số ngày phải từ 1 trở lên")
    unit = "working_days" if m.group("working") else "days"
    return AfterEvent(event=_event(p, m), amount=amount, unit=unit)


def _after_immediately(p: _Text, ctx: _Context) -> Rule | None:
    m = _IMMEDIATELY.match(p.key)
    if not m:
        return None
    return AfterEvent(
        event=_event(p, m), amount=ctx.settings.immediately_working_days, unit="immediately"
    )


def _after_unspecified(p: _Text, ctx: _Context) -> Rule | None:
    m = _AFTER_CLAUSE.match(p.key) or _AFTER_ACTIVITY.match(p.key)
    if not m:
        return None
    return AfterEvent(event=_event(p, m), amount=0, unit="unspecified")


# -------------------------------------------------------- months, years and year ranges

_MONTH_YEAR = _grammar(rf"^{_VERB}{_WITHIN}(?P<m>\d{{1,2}})\s*[/-]\s*(?P<y>\d{{4}})$")
_BARE_YEAR = _grammar(rf"^{_VERB}{_WITHIN}(?P<y>\d{{4}})$")
_YEAR_RANGE = _grammar(
    rf"^{_VERB}{_WITHIN}(?P<stage>giai doan\s+|(?:cac\s+)?nam\s+)?(?P<a>\d{{4}})\s*(?:-|den)\s*"
    rf"(?:nam\s+)?(?P<b>\d{{4}})$"
)
# A span of years longer than this is a strategy's horizon, not a plan's timing.
MAX_YEAR_SPAN = 10


def _month_year(p: _Text, ctx: _Context) -> Rule | None:
    """ "6/2025", "06/2025": a month of a year, as "Tháng 6/2025"."""
    m = _MONTH_YEAR.match(p.key)
    if not m:
        return None
    month, year = _month_number(m.group("m")), int(m.group("y"))
    if year < 1:
        raise _Invalid(f"năm {m.group('y')} không hợp lệ")
    return Period(date(year, month, 1), last_day_of_month(year, month), f"tháng {month}/{year}")


def _bare_year(p: _Text, ctx: _Context) -> Rule | None:
    """ "2025": the whole year, as "Năm 2025"."""
    m = _BARE_YEAR.match(p.key)
    if not m:
        return None
    year = int(m.group("y"))
    if year < 1:
        raise _Invalid(f"năm {m.group('y')} không hợp lệ")
    return Period(date(year, 1, 1), date(year, 12, 31), f"năm {year}")


def _year_range(p: _Text, ctx: _Context) -> Rule | None:
    """ "2025 - 2026", "Năm 2025-2026", "giai đoạn 2022- 2025": consecutive whole years."""
    m = _YEAR_RANGE.match(p.key)
    if not m:
        return None
    first, last = int(m.group("a")), int(m.group("b"))
    if first < 1 or last <= first:
        raise _Invalid(f"năm kết thúc {last} phải sau năm bắt đầu {first}")
    if last - first > MAX_YEAR_SPAN:
        raise _Invalid(
            f"khoảng {first}–{last} dài hơn {MAX_YEAR_SPAN} năm; hãy ghi thời hạn cụ thể hơn"
        )
    stage = "giai đoạn" if (m.group("stage") or "").startswith("giai") else "năm"
    return Period(date(first, 1, 1), date(last, 12, 31), f"{stage} {first}–{last}")


# ----------------------------------------------------------- several frequencies at once

_FREQ_WORD = r"(?:thang|quy|nam|(?:6|06|sau)\s+thang(?:\s+mot\s+lan)?)"
_EVERY_LIST = _grammar(
    rf"^{_VERB}(?:dinh ky\s+)?(?:hang|moi)\s+(?P<items>{_FREQ_WORD}"
    rf"(?:(?:\s*,\s*|\s+va\s+)(?:(?:hang|moi)\s+)?{_FREQ_WORD})+)$"
)


def _every_list(p: _Text, ctx: _Context) -> Rule | None:
    """ "Định kỳ hằng quý, 6 tháng, năm": one recurring rule per frequency."""
    m = _EVERY_LIST.match(p.key)
    if not m:
        return None
    parts: list[Rule] = []
    for item in re.split(r"\s*,\s*|\s+va\s+", m.group("items")):
        word = item.removeprefix("hang ").removeprefix("moi ").strip()
        freq = {"thang": "monthly", "quy": "quarterly", "nam": "yearly"}.get(word, "half_yearly")
        rule = Recurring(freq=freq, before_day=ctx.settings.due_day(freq))
        if rule not in parts:
            parts.append(rule)
    return parts[0] if len(parts) == 1 else Combined(tuple(parts))


# --------------------------------------------------------------- days and months each year

_DAY_MONTH = r"\d{1,2}\s*/\s*\d{1,2}"
_DAY_MONTH_LIST = (
    rf"(?P<items>{_DAY_MONTH}(?:(?:\s*[,;]\s*|\s+va\s+)(?:(?:truoc\s+)?ngay\s+)?{_DAY_MONTH})*)"
)
_HOW = r"(?P<how>truoc|cham nhat(?:\s+la)?|muon nhat(?:\s+la)?|han chot(?:\s+la)?|vao)"
_EVERY_YEAR = r"(?:hang|moi)\s+nam"
_ANNUAL = (
    _grammar(
        rf"^{_VERB}(?:dinh ky\s+)?(?:{_HOW}\s+)?(?:(?:vao\s+)?ngay\s+)?{_DAY_MONTH_LIST}"
        rf"\s*,?\s+(?:cua\s+)?{_EVERY_YEAR}$"
    ),
    _grammar(
        rf"^{_VERB}(?:dinh ky\s+)?{_EVERY_YEAR}\s*,?\s*{_HOW}\s+(?:ngay\s+)?{_DAY_MONTH_LIST}$"
    ),
)
_ANNUAL_MONTH = _grammar(
    rf"^{_VERB}(?:dinh ky\s+)?(?:trong\s+)?thang\s+(?P<m>\d{{1,2}})\s*,?\s+(?:cua\s+)?"
    rf"{_EVERY_YEAR}$"
)


def _annual(p: _Text, ctx: _Context) -> Rule | None:
    """ "Trước ngày 01/6 và 15/11 hằng năm", "Hằng năm, chậm nhất ngày 15/12": days of
    every year, each as an `Annual` rule."""
    m = next((m for g in _ANNUAL if (m := g.match(p.key))), None)
    if not m:
        return None
    before = m.group("how") == "truoc"
    parts: list[Rule] = []
    for day_text, month_text in re.findall(r"(\d{1,2})\s*/\s*(\d{1,2})", m.group("items")):
        month = _month_number(month_text)
        day = int(day_text)
        if not 1 <= day <= last_day_of_month(2001, month).day:
            raise _Invalid(f"ngày {day_text}/{month_text} không có trong mọi năm")
        rule = Annual(month=month, day=day, before=before)
        if rule not in parts:
            parts.append(rule)
    return parts[0] if len(parts) == 1 else Combined(tuple(parts))


def _annual_month(p: _Text, ctx: _Context) -> Rule | None:
    """ "Tháng 12 hằng năm": within that month of every year."""
    m = _ANNUAL_MONTH.match(p.key)
    if not m:
        return None
    return Annual(month=_month_number(m.group("m")))


# ------------------------------------------------------ starts, spans and "before a period"

_FROM = _grammar(
    rf"^{_VERB}(?:bat dau\s+)?(?:ke\s+)?tu\s+(?P<rest>.+?)(?:\s*,?\s+(?:tro di|tro ve sau))?$"
)
_AND_AFTER = _grammar(r"^(?P<rest>.+?)\s*,?\s+va\s+(?:nhung|cac)\s+nam\s+(?:tiep theo|sau)$")
_SPAN = _grammar(
    rf"^{_VERB}{_WITHIN}(?:ke\s+)?tu\s+(?P<a>.+?)\s+(?:den|toi)\s+(?:(?:het|cuoi)\s+)?(?P<b>.+)$"
)
_BEFORE_PERIOD = _grammar(rf"^{_VERB}truoc\s+(?P<rest>(?:thang|quy|nam)\s+.+)$")


def _period_of(p: _Text, ctx: _Context) -> Period | None:
    """The period a phrase names (a month, quarters, a half-year, a year), else None."""
    rule = _first(_PERIODS, p, ctx)
    return rule if isinstance(rule, Period) else None


def _starting(p: _Text, ctx: _Context) -> Rule | None:
    """ "Từ tháng 6/2025", "Từ năm 2025 trở đi", "Năm 2023 và những năm tiếp theo"."""
    if _SPAN.match(p.key):  # "từ … đến …" is a span, not an open start
        return None
    m = _FROM.match(p.key) or _AND_AFTER.match(p.key)
    if not m:
        return None
    period = _period_of(p.cut(m.start("rest"), m.end("rest")), ctx)
    if period is None:
        return None
    return Starting(start=period.start, label=f"từ {period.label}")


def _span(p: _Text, ctx: _Context) -> Rule | None:
    """ "Từ tháng 6/2025 đến tháng 12/2025", "Từ tháng 6 đến hết tháng 12/2025": from the
    start of the first period to the end of the second; a first period without a year
    takes the second's."""
    m = _SPAN.match(p.key)
    if not m:
        return None
    last = _period_of(p.cut(m.start("b"), m.end("b")), ctx)
    if last is None:
        return None
    first_ctx = _Context(last.end.year, ctx.settings)
    first = _period_of(p.cut(m.start("a"), m.end("a")), first_ctx)
    if first is None:
        return None
    if last.end <= first.start or first.start > last.start:
        raise _Invalid(f"{last.label} phải sau {first.label}")
    return Period(first.start, last.end, f"từ {first.label} đến {last.label}")


def _before_period(p: _Text, ctx: _Context) -> Rule | None:
    """ "Trước Quý III/2024", "Trước tháng 6/2025": done before the period begins."""
    m = _BEFORE_PERIOD.match(p.key)
    if not m:
        return None
    period = _period_of(p.cut(m.start("rest"), m.end("rest")), ctx)
    if period is None:
        return None
    return Fixed(day=period.start, before=True)


# Grammars without free text: when one matches the whole phrase, that is its meaning.
# The grammars naming one period: what "từ …", "trước …" and "… đến …" build on.
_PERIODS: tuple[Grammar, ...] = (
    _months,
    _month_year,
    _quarters,
    _half_year,
    _whole_year,
    _bare_year,
)
_CLOSED: tuple[Grammar, ...] = (
    _continuous,
    _on_demand,
    _fixed,
    *_PERIODS,
    _year_range,
    _monthly_before,
    _quarterly_before,
    _recurring,
    _every_list,
    _annual,
    _annual_month,
    _span,
    _starting,
    _before_period,
)
# Grammars ending in free text (an event, a document): tried after splitting on "và",
# so that "Sau khi A và sau khi B" is two events, not one event "A và sau khi B".
_FREE: tuple[Grammar, ...] = (_after_amount, _after_immediately, _after_unspecified, _reference)


# ------------------------------------------------------------------------------ parser


def parse_timing(
    text: str, *, plan_year: int | None = None, settings: RuleSettings | None = None
) -> Rule:
    """The deadline rule a timing phrase states.

    `plan_year` is the year of the plan the phrase comes from; it is used only by phrases
    naming no year ("Trong năm", "Quý III"). `settings` (default `RuleSettings()`) fills
    in what the phrase leaves open (see `RuleSettings`). Raises `PhraseError` naming the
    phrase when it is not a known form or states something impossible.
    """
    if not isinstance(text, str):
        raise TypeError(f"Cụm thời hạn phải là chuỗi, không phải {type(text).__name__}.")
    if plan_year is not None and not 1 <= plan_year <= 9999:
        raise ValueError(f"Năm của kế hoạch không hợp lệ: {plan_year!r}.")
    shown = _SPACES.sub(" ", unicodedata.normalize("NFC", text)).strip()
    if len(split_timings(text)) > 1:
        raise PhraseError(
            shown,
            'ô có nhiều dòng gạch đầu dòng "- …"; mỗi dòng là một nghĩa vụ riêng, hãy tách '
            "từng dòng (split_timings) rồi phân tích từng cụm",
        )
    phrase = _Text.of(text)
    if not phrase.key:
        raise PhraseError(shown, "cụm thời hạn trống")
    ctx = _Context(plan_year, settings or DEFAULT_SETTINGS)
    try:
        rule = _parse(phrase, ctx)
    except _Invalid as exc:
        raise PhraseError(shown, exc.reason) from None
    if rule is None:
        raise PhraseError(shown)
    return rule


def _parse(p: _Text, ctx: _Context) -> Rule | None:
    """The rule of a phrase, possibly combined; None if no grammar fits. Memoised."""
    if p.text not in ctx.memo:
        try:
            ctx.memo[p.text] = _parse_uncached(p, ctx)
        except _Invalid as exc:
            ctx.memo[p.text] = exc
    result = ctx.memo[p.text]
    if isinstance(result, _Invalid):
        raise result
    return result


def _parse_uncached(p: _Text, ctx: _Context) -> Rule | None:
    rule = _first(_CLOSED, p, ctx)
    if rule is not None:
        return rule
    if m := _BRACKETED.match(p.key):
        head = _parse(p.cut(m.start("head"), m.end("head")), ctx)
        tail = _parse(p.cut(m.start("tail"), m.end("tail")), ctx)
        if head is not None and tail is not None:
            return _combine(head, tail)
    first_invalid: _Invalid | None = None
    # The last join first: the head is then the longest part one grammar reads whole, so
    # "Hằng năm, trước ngày 01/6 hoặc đột xuất" is a day of every year or on request, not
    # every year plus 1/6 of the plan year.
    for join in reversed(list(_JOIN.finditer(p.key))):
        left, right = p.cut(0, join.start()), p.cut(join.end())
        if not left.key or not right.key:
            continue
        try:
            head = _first(_CLOSED, left, ctx) or _first(_FREE, left, ctx)
            tail = _parse(right, ctx) if head is not None else None
        except _Invalid as exc:
            first_invalid = first_invalid or exc
            continue
        if head is not None and tail is not None:
            return _combine(head, tail)
    rule = _first(_FREE, p, ctx)
    if rule is None and first_invalid is not None:
        raise first_invalid
    return rule


def _first(grammars: tuple[Grammar, ...], p: _Text, ctx: _Context) -> Rule | None:
    for grammar in grammars:
        try:
            rule = grammar(p, ctx)
        except RuleDataError as exc:  # a rule the phrase states but that cannot exist
            raise _Invalid(str(exc).rstrip(".")) from None
        if rule is not None:
            return rule
    return None


def _combine(head: Rule, tail: Rule) -> Rule:
    parts: list[Rule] = []
    for rule in (head, tail):
        for part in rule.parts if isinstance(rule, Combined) else (rule,):
            if part not in parts:
                parts.append(part)
    return parts[0] if len(parts) == 1 else Combined(tuple(parts))
