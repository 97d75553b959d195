"""Deadline rules (quy tắc thời hạn): what a plan's timing phrase means, as data.

A plan row says *when* its work is due in a short Vietnamese phrase ("Quý III/2025",
"Trước ngày 23 hàng tháng", "Sau 03 ngày làm việc kể từ ngày nhận được …"). The parser in
`deadlines.phrases` turns each phrase into one of the rule kinds below; this module says
what each kind means and computes its due dates (hạn) on the working-day calendar.

The set of kinds is closed: fixed, period, recurring, annual, after_event, starting,
continuous, on_demand, reference, combined. Every rule is a frozen dataclass that
serialises to a JSON-able dict (`to_dict`, with "kind" first) and back (`rule_from_dict`),
so a stored obligation keeps exactly the rule it was created from.

Counting follows the Civil Code 2015 (shared/reference/vn-deadline-law.md §2):
- Art. 147: the day of the triggering event is not counted;
- Art. 148(5): a limit whose last day is a day off ends on the next working day;
- "trước ngày D" (before day D) is a fixed date that must not move past D, so its last
  day D-1 rolls *back* to the previous working day when it is a day off; the same holds
  for the end of a period ("Quý III/2025" is due on the last working day of the quarter).

Settings (`RuleSettings`) cover what the plan and the law leave open, such as which day
of the month an undated monthly obligation is due. The parser applies them when it builds
a rule, so a stored rule is self-contained: its due dates depend only on the rule and the
calendar.
"""

from __future__ import annotations

import re
import unicodedata
from abc import ABC, abstractmethod
from calendar import monthrange
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar

from deadlines.calendar import OutOfRangeError, WorkCalendar
from deadlines.datafile import LineDict, ProblemList, load_yaml

# Legal sources named in explanations (shared/reference/vn-deadline-law.md §2).
ART_147 = "Điều 147 Bộ luật Dân sự 2015"
ART_148_5 = "Điều 148 khoản 5 Bộ luật Dân sự 2015"

# Recurrence frequencies and the months of each period they cut a year into.
MONTHS_PER_PERIOD = {"monthly": 1, "quarterly": 3, "half_yearly": 6, "yearly": 12}
FREQ_VI = {
    "monthly": "hằng tháng",
    "quarterly": "hằng quý",
    "half_yearly": "6 tháng một lần",
    "yearly": "hằng năm",
}
PERIOD_VI = {"monthly": "tháng", "quarterly": "quý", "half_yearly": "kỳ 6 tháng", "yearly": "năm"}

# "Trước ngày N" inside a recurring period: the due day is N-1 of the period's last month.
# N = 1 would put it in the previous month; N-1 must exist in every month (28 February).
MIN_BEFORE_DAY = 2
MAX_BEFORE_DAY = 29

# How an after_event limit is counted.
UNITS = ("working_days", "days", "immediately", "unspecified")
UNIT_VI = {"working_days": "ngày làm việc", "days": "ngày"}

ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}


class RuleDataError(ValueError):
    """A rule (or a serialised rule) that breaks the rules of its kind."""


# ------------------------------------------------------------------------- text helpers


def fold(text: str) -> str:
    """`text` in NFC, lower-cased, without diacritics (đ -> d), one character per character.

    The result has the same length as `unicodedata.normalize("NFC", text)`, so a match
    found in the folded form can be cut out of the original wording at the same offsets.
    """
    out = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in "đĐ":
            out.append("d")
            continue
        base = unicodedata.normalize("NFD", ch)[0]
        lower = base.lower()
        out.append(lower if len(lower) == 1 else base)
    return "".join(out)


def event_code_for(text: str) -> str:
    """The stable ASCII code of an event or reference: its unaccented words joined by '-'.

    "nhận được Quyết định công bố TTHC của bộ trưởng các Bộ, ngành Trung ương" ->
    "nhan-duoc-quyet-dinh-cong-bo-tthc-cua-bo-truong-cac-bo-nganh-trung-uong".
    """
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")


def last_day_of_month(year: int, month: int) -> date:
    return date(year, month, monthrange(year, month)[1])


def vn_date(d: date) -> str:
    """A date as Vietnamese documents write it: 5/3/2025."""
    return f"{d.day}/{d.month}/{d.year}"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_before_day(value: Any) -> bool:
    return _is_int(value) and MIN_BEFORE_DAY <= value <= MAX_BEFORE_DAY


# ---------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class RuleSettings:
    """Choices the plan and the law leave open, with the defaults dunghan uses.

    `monthly_due`, `quarterly_due`, `half_yearly_due`, `yearly_due` — when a recurring
    obligation whose phrase names no day ("Hàng tháng", "Hàng quý", "6 tháng", "Hàng
    năm") falls due in each period. `None` (the default) means the last working day of
    the period; a number N means "trước ngày N" of the period's last month (day N-1, rolled
    back to a working day), exactly like the plan's own "Trước ngày 23 hàng tháng".
    Why the last working day: the plan (QĐ 384/QĐ-UBND, Nghệ An 2025) gives no day, so the
    only bound it sets is the period itself; the last working day is the latest day still
    inside the period on which an office can act. Rolling forward past a period end that is
    a day off (Art. 148(5)) would push the month's work into the next month, so the end
    rolls back, as for "trước ngày" (vn-deadline-law.md §2). A province whose reporting
    regulation names a day (the plan's footnote cites Công văn 667/UBND-KSTT, whose text
    is not available here) sets that day instead.

    `immediately_working_days` (default 1) — how many working days "ngay sau khi <sự
    kiện>" (immediately after an event) allows. In administrative practice "ngay" means by
    the next working day, and Art. 147 does not count the day of the event itself, so the
    first day that can count is the next working day; the limit ends at its end. 0 means
    the same day (or the next working day if the event falls on a day off).

    Override from a YAML file with `RuleSettings.from_yaml`.
    """

    monthly_due: int | None = None
    quarterly_due: int | None = None
    half_yearly_due: int | None = None
    yearly_due: int | None = None
    immediately_working_days: int = 1

    def __post_init__(self) -> None:
        for name in ("monthly_due", "quarterly_due", "half_yearly_due", "yearly_due"):
            value = getattr(self, name)
            if value is not None and not _is_before_day(value):
                raise RuleDataError(
                    f"{name}: ngày phải từ {MIN_BEFORE_DAY} đến {MAX_BEFORE_DAY} "
                    f"(hoặc để trống: ngày làm việc cuối cùng của kỳ), không phải {value!r}."
                )
        if not _is_int(self.immediately_working_days) or self.immediately_working_days < 0:
            raise RuleDataError(
                "immediately_working_days phải là số nguyên không âm, không phải "
                f"{self.immediately_working_days!r}."
            )

    def due_day(self, freq: str) -> int | None:
        """The "trước ngày N" of an undated recurring obligation of `freq`, or None."""
        return getattr(self, f"{freq}_due")

    @classmethod
    def from_yaml(cls, path: str | Path) -> RuleSettings:
        """Settings from a YAML file; keys left out keep their defaults.

        ```yaml
        monthly_due: last_working_day      # the default
        quarterly_due: {before_day: 15}    # "trước ngày 15" of the quarter's last month
        immediately_working_days: 1
        ```
        Every problem is reported with its line (`DataFileError`).
        """
        data = load_yaml(path)
        problems = ProblemList(str(path))
        if data is None:
            return cls()
        if not isinstance(data, LineDict):
            problems.add(0, "tệp thiết lập phải là một bảng (mapping).")
            problems.raise_if_any()
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in data.items():
            line = data.line_of(key)
            if key not in known:
                problems.add(
                    line, f"khóa không hợp lệ '{key}' (chỉ dùng: {', '.join(sorted(known))})."
                )
            elif key == "immediately_working_days":
                if not _is_int(raw) or raw < 0:
                    problems.add(line, f"'{key}' phải là số nguyên không âm, không phải {raw!r}.")
                else:
                    values[key] = raw
            elif raw == "last_working_day":
                values[key] = None
            elif (
                isinstance(raw, dict)
                and set(raw) == {"before_day"}
                and _is_before_day(raw["before_day"])
            ):
                values[key] = raw["before_day"]
            else:
                problems.add(
                    line,
                    f"'{key}' phải là 'last_working_day' hoặc {{before_day: N}} với N từ "
                    f"{MIN_BEFORE_DAY} đến {MAX_BEFORE_DAY}, không phải {raw!r}.",
                )
        problems.raise_if_any()
        return cls(**values)


DEFAULT_SETTINGS = RuleSettings()


# ------------------------------------------------------------------------------- rules


class Rule(ABC):
    """A deadline rule. Subclasses are frozen dataclasses; `kind` names the subclass."""

    kind: ClassVar[str]
    # True for the kinds whose due dates come from the calendar alone (fixed, period,
    # recurring, annual): the engine creates their items ahead of time.
    dated: ClassVar[bool] = False

    @abstractmethod
    def due_dates(self, cal: WorkCalendar, *, year: int) -> list[date]:
        """Every due date of this rule that falls in `year`, sorted.

        Empty for rules with no date of their own: continuous, on_demand, reference and
        after_event (whose due date needs the event's date: see `due_after`).
        """

    def occurrences(self, cal: WorkCalendar, *, year: int) -> list[tuple[str, date]]:
        """The (period key, due date) pairs of the due dates in `year`, sorted by date.

        The key names the occurrence without the calendar ("2025-03" for March's report,
        "2025-Q3", "2025-03-05" for "trước ngày 05/3/2025"), so a calendar or swap change
        moves an occurrence's due date but never makes it a new occurrence.
        """
        return []

    def due_after(
        self, cal: WorkCalendar, event_date: date, *, event_code: str | None = None
    ) -> date | None:
        """The due date once the awaited event happened on `event_date`.

        None for rules that wait for no event. With `event_code`, only a rule waiting for
        that event answers.
        """
        return None

    @abstractmethod
    def describe(self, cal: WorkCalendar | None = None) -> str:
        """A short Vietnamese explanation of when this is due (and why, with `cal`)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict, "kind" first; `rule_from_dict` is its exact inverse."""


@dataclass(frozen=True)
class Fixed(Rule):
    """A fixed date: "Trước ngày 05/3/2025" (before=True), "Chậm nhất ngày 05/3/2025".

    before=True: done by the end of `day` - 1, rolled back to the previous working day
    (never past `day`). before=False ("chậm nhất ngày", by `day`): a day off rolls forward
    to the next working day (Art. 148(5)).
    """

    day: date
    before: bool
    kind: ClassVar[str] = "fixed"
    dated: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_type(self, "day", date)
        _check_type(self, "before", bool)
        if self.before and self.day == date.min:
            raise RuleDataError(f"Không có ngày nào trước ngày {vn_date(self.day)}.")

    def due_date(self, cal: WorkCalendar) -> date:
        if self.before:
            # The last working day strictly before `day`: day - 1, rolled back if a day off.
            return cal.add_working_days(self.day, -1)
        return cal.next_working_day(self.day)

    def due_dates(self, cal: WorkCalendar, *, year: int) -> list[date]:
        due = self.due_date(cal)
        return [due] if due.year == year else []

    def occurrences(self, cal: WorkCalendar, *, year: int) -> list[tuple[str, date]]:
        return [(self.day.isoformat(), due) for due in self.due_dates(cal, year=year)]

    def describe(self, cal: WorkCalendar | None = None) -> str:
        if self.before:
            last = self.day - timedelta(days=1)
            text = f"Hạn: trước ngày {vn_date(self.day)}, tức hết ngày {vn_date(last)}"
            if cal is None:
                return text + " (nếu là ngày nghỉ thì lùi về ngày làm việc liền trước)"
            due = self.due_date(cal)
            if due == last:
                return text
            return (
                f"{text}; {vn_date(last)} là ngày nghỉ nên lùi về ngày làm việc liền trước "
                f"{vn_date(due)} (không được vượt quá ngày {vn_date(self.day)})"
            )
        text = f"Hạn: chậm nhất ngày {vn_date(self.day)}"
        if cal is None:
            return (
                text + f" (nếu là ngày nghỉ thì chuyển sang ngày làm việc tiếp theo, {ART_148_5})"
            )
        due = self.due_date(cal)
        if due == self.day:
            return text
        return (
            f"{text}; đó là ngày nghỉ nên hạn chuyển sang ngày làm việc tiếp theo "
            f"{vn_date(due)} ({ART_148_5})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "day": self.day.isoformat(), "before": self.before}


@dataclass(frozen=True)
class Period(Rule):
    """Work to do within a period: a month, consecutive quarters, a half-year, a year.

    Due on the last working day of the period (its end rolled back if a day off).
    `label` names the period in Vietnamese ("Quý III/2025").
    """

    start: date
    end: date
    label: str
    kind: ClassVar[str] = "period"
    dated: ClassVar[bool] = True

    def __post_init__(self) -> None:
        _check_type(self, "start", date)
        _check_type(self, "end", date)
        _check_text(self, "label")
        if self.end < self.start:
            raise RuleDataError(f"Kỳ {self.label!r}: ngày kết thúc trước ngày bắt đầu.")

    def due_date(self, cal: WorkCalendar) -> date:
        return cal.previous_working_day(self.end)

    def due_dates(self, cal: WorkCalendar, *, year: int) -> list[date]:
        due = self.due_date(cal)
        return [due] if due.year == year else []

    def occurrences(self, cal: WorkCalendar, *, year: int) -> list[tuple[str, date]]:
        key = f"{self.start.isoformat()}/{self.end.isoformat()}"
        return [(key, due) for due in self.due_dates(cal, year=year)]

    def describe(self, cal: WorkCalendar | None = None) -> str:
        text = f"Hạn: ngày làm việc cuối cùng của {self.label}"
        if cal is None:
            return f"{text} (kỳ từ {vn_date(self.start)} đến {vn_date(self.end)})"
        return f"{text} ({vn_date(self.due_date(cal))})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "label": self.label,
        }


@dataclass(frozen=True)
class Recurring(Rule):
    """Work repeated every month, quarter, half-year or year.

    before_day=None: due on the last working day of each period. before_day=N: due
    "trước ngày N" of the period's last month, i.e. day N-1 rolled back to a working day
    ("Trước ngày 23 hàng tháng": the 22nd of each month, or the working day before it).
    """

    freq: str
    before_day: int | None = None
    kind: ClassVar[str] = "recurring"
    dated: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.freq not in MONTHS_PER_PERIOD:
            raise RuleDataError(
                f"Tần suất không hợp lệ {self.freq!r} (chỉ dùng: {', '.join(MONTHS_PER_PERIOD)})."
            )
        if self.before_day is not None and not _is_before_day(self.before_day):
            raise RuleDataError(
                f"'trước ngày N' của kỳ lặp lại phải có N từ {MIN_BEFORE_DAY} đến "
                f"{MAX_BEFORE_DAY}, không phải {self.before_day!r}."
            )

    def _due_in_period(self, cal: WorkCalendar, year: int, index: int) -> date:
        """The due date of the `index`-th period (0-based) of `year`."""
        months = MONTHS_PER_PERIOD[self.freq]
        last_month = (index + 1) * months
        if self.before_day is None:
            return cal.previous_working_day(last_day_of_month(year, last_month))
        return cal.previous_working_day(date(year, last_month, self.before_day - 1))

    def due_dates(self, cal: WorkCalendar, *, year: int) -> list[date]:
        return [due for _, due in self.occurrences(cal, year=year)]

    def occurrences(self, cal: WorkCalendar, *, year: int) -> list[tuple[str, date]]:
        periods = 12 // MONTHS_PER_PERIOD[self.freq]
        dues = [
            (self._period_key(year, i), self._due_in_period(cal, year, i)) for i in range(periods)
        ]
        if self.before_day is not None:
            # Rolling back can carry next year's first due date into this year (a "trước
            # ngày 3" of January when 1-2 January are days off), so that date is needed too.
            try:
                dues.append((self._period_key(year + 1, 0), self._due_in_period(cal, year + 1, 0)))
            except OutOfRangeError as exc:
                raise OutOfRangeError(
                    f"Không tính đủ được các hạn năm {year}: hạn đầu tiên của năm {year + 1} "
                    f"có thể lùi về năm {year}, nhưng lịch chưa có dữ liệu năm {year + 1}. "
                    f"({exc})"
                ) from None
        return sorted(((k, d) for k, d in dues if d.year == year), key=lambda kd: kd[1])

    def _period_key(self, year: int, index: int) -> str:
        """ "2025-03" (monthly), "2025-Q1", "2025-H2", "2025" (yearly)."""
        if self.freq == "monthly":
            return f"{year}-{index + 1:02d}"
        if self.freq == "quarterly":
            return f"{year}-Q{index + 1}"
        if self.freq == "half_yearly":
            return f"{year}-H{index + 1}"
        return str(year)

    def describe(self, cal: WorkCalendar | None = None) -> str:
        freq = FREQ_VI[self.freq]
        if self.before_day is None:
            return f"Hạn: {freq}, vào ngày làm việc cuối cùng của mỗi {PERIOD_VI[self.freq]}"
        where = "" if self.freq == "monthly" else f" của tháng cuối mỗi {PERIOD_VI[self.freq]}"
        return (
            f"Hạn: {freq}, trước ngày {self.before_day}{where}, tức hết ngày "
            f"{self.before_day - 1} (nếu là ngày nghỉ thì lùi về ngày làm việc liền trước)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "freq": self.freq, "before_day": self.before_day}


@dataclass(frozen=True)
class Annual(Rule):
    """A day or a month that comes back every year: "Trước ngày 01/6 hằng năm",
    "Chậm nhất ngày 15/12 hằng năm", "Tháng 12 hằng năm".

    day=None: work within `month` of each year, due on the month's last working day (its
    end rolled back, like a period). With a day, before=True ("trước ngày D/M") is due by
    the end of D-1, rolled back to a working day; before=False ("chậm nhất ngày D/M",
    "ngày D/M hằng năm") is due on D/M, rolled forward when a day off (Art. 148(5)).
    29 February is refused: not every year has it. Several days a year ("trước ngày 01/6
    và 15/11 hằng năm") are a combined rule of one `Annual` each.

    Occurrence key: the stated day of that year ("2025-06-01") or the month ("2025-12"),
    so a calendar change moves a due date and never makes a new occurrence.
    """

    month: int
    day: int | None = None
    before: bool = False
    kind: ClassVar[str] = "annual"
    dated: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if not _is_int(self.month) or not 1 <= self.month <= 12:
            raise RuleDataError(f"Tháng phải từ 1 đến 12, không phải {self.month!r}.")
        _check_type(self, "before", bool)
        if self.day is None:
            if self.before:
                raise RuleDataError("Hạn cả tháng hằng năm không có 'trước ngày' (before=false).")
            return
        if not _is_int(self.day) or not 1 <= self.day <= monthrange(2001, self.month)[1]:
            raise RuleDataError(
                f"Ngày {self.day!r}/{self.month} không có trong mọi năm (29/2 không dùng được)."
            )

    def _anchor(self, year: int) -> date:
        return date(year, self.month, self.day or 1)

    def _due_for(self, cal: WorkCalendar, year: int) -> date:
        """The due date of the occurrence anchored in `year`."""
        if self.day is None:
            return cal.previous_working_day(last_day_of_month(year, self.month))
        if self.before:
            return cal.add_working_days(self._anchor(year), -1)
        return cal.next_working_day(self._anchor(year))

    def _key(self, year: int) -> str:
        if self.day is None:
            return f"{year}-{self.month:02d}"
        return self._anchor(year).isoformat()

    def occurrences(self, cal: WorkCalendar, *, year: int) -> list[tuple[str, date]]:
        anchors = [year]
        # Rolling back from early January can reach December; rolling forward from late
        # December can reach January: the neighbouring year's occurrence is needed too.
        if self.before and self.month == 1:
            anchors.append(year + 1)
        if not self.before and self.day is not None and self.month == 12:
            anchors.append(year - 1)
        pairs = []
        for anchor in anchors:
            try:
                due = self._due_for(cal, anchor)
            except OutOfRangeError as exc:
                if anchor == year:
                    raise
                raise OutOfRangeError(
                    f"Không tính đủ được các hạn năm {year}: hạn của năm {anchor} có thể rơi "
                    f"vào năm {year}, nhưng lịch chưa có dữ liệu năm {anchor}. ({exc})"
                ) from None
            if due.year == year:
                pairs.append((self._key(anchor), due))
        return sorted(pairs, key=lambda kd: kd[1])

    def due_dates(self, cal: WorkCalendar, *, year: int) -> list[date]:
        return [due for _, due in self.occurrences(cal, year=year)]

    def describe(self, cal: WorkCalendar | None = None) -> str:
        if self.day is None:
            return f"Hạn: hằng năm, ngày làm việc cuối cùng của tháng {self.month}"
        when = f"{self.day}/{self.month}"
        if self.before:
            return (
                f"Hạn: hằng năm, trước ngày {when} (nếu ngày liền trước là ngày nghỉ thì lùi về "
                "ngày làm việc liền trước)"
            )
        return (
            f"Hạn: hằng năm, chậm nhất ngày {when} (nếu là ngày nghỉ thì chuyển sang ngày làm "
            f"việc tiếp theo, {ART_148_5})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "month": self.month, "day": self.day, "before": self.before}


@dataclass(frozen=True)
class AfterEvent(Rule):
    """Work due a set time after an event: "Sau 03 ngày làm việc kể từ ngày nhận được …".

    `event` is the event as the plan words it; `event_code` its stable ASCII code
    (`event_code_for(event)`), which is what identifies the event: two rules that differ
    only in the wording's case or diacritics are equal. `unit`:
    - working_days: the `amount`-th working day after the event (Art. 147);
    - days: the event date + `amount` calendar days, rolled forward to a working day
      (Art. 148(5));
    - immediately ("ngay sau khi"): the `amount`-th working day after the event, `amount`
      taken from `RuleSettings.immediately_working_days` when parsed (0: the event day,
      or the next working day if it is a day off);
    - unspecified ("Sau kiểm tra", "Sau khi nhận được phản ánh, kiến nghị"): the plan sets
      no limit, so there is no due date to compute (`amount` is 0).
    """

    event: str = field(compare=False)
    amount: int
    unit: str
    event_code: str = ""
    kind: ClassVar[str] = "after_event"

    def __post_init__(self) -> None:
        _check_text(self, "event")
        if self.unit not in UNITS:
            raise RuleDataError(
                f"Đơn vị không hợp lệ {self.unit!r} (chỉ dùng: {', '.join(UNITS)})."
            )
        if not _is_int(self.amount):
            raise RuleDataError(f"Số lượng phải là số nguyên, không phải {self.amount!r}.")
        if self.unit in UNIT_VI and self.amount < 1:
            raise RuleDataError(f"Số {UNIT_VI[self.unit]} phải từ 1 trở lên.")
        if self.unit == "immediately" and self.amount < 0:
            raise RuleDataError("Số ngày làm việc của 'ngay sau khi' phải không âm.")
        if self.unit == "unspecified" and self.amount != 0:
            raise RuleDataError("Thời hạn không nêu cụ thể thì số lượng phải là 0.")
        _set_code(self, "event_code", self.event)

    def due_after(
        self, cal: WorkCalendar, event_date: date, *, event_code: str | None = None
    ) -> date | None:
        if event_code is not None and event_code != self.event_code:
            return None
        if self.unit == "working_days":
            return cal.add_working_days(event_date, self.amount)
        if self.unit == "days":
            try:
                last = event_date + timedelta(days=self.amount)
            except OverflowError:
                raise OutOfRangeError(
                    f"{event_date.isoformat()} + {self.amount} ngày vượt quá ngày lớn nhất có thể."
                ) from None
            return cal.next_working_day(last)
        if self.unit == "immediately":
            if self.amount == 0:
                return cal.next_working_day(event_date)
            return cal.add_working_days(event_date, self.amount)
        return None

    def due_dates(self, cal: WorkCalendar, *, year: int) -> list[date]:
        return []

    def describe(self, cal: WorkCalendar | None = None) -> str:
        if self.unit == "working_days":
            return (
                f"Hạn: {self.amount} ngày làm việc kể từ ngày {self.event}, tức ngày làm việc "
                f"thứ {self.amount} sau ngày đó (không tính ngày xảy ra sự kiện, {ART_147})"
            )
        if self.unit == "days":
            return (
                f"Hạn: {self.amount} ngày kể từ ngày {self.event} (không tính ngày xảy ra sự "
                f"kiện, {ART_147}; ngày cuối là ngày nghỉ thì chuyển sang ngày làm việc tiếp "
                f"theo, {ART_148_5})"
            )
        if self.unit == "immediately":
            when = (
                "trong ngày xảy ra sự kiện (hoặc ngày làm việc tiếp theo nếu là ngày nghỉ)"
                if self.amount == 0
                else f"tức ngày làm việc thứ {self.amount} sau ngày xảy ra sự kiện"
            )
            return f"Hạn: ngay sau khi {self.event}, {when} (theo thiết lập)"
        return (
            f"Thực hiện sau khi {self.event}; kế hoạch không nêu thời hạn cụ thể nên không "
            "tính được ngày hạn"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "event": self.event,
            "event_code": self.event_code,
            "amount": self.amount,
            "unit": self.unit,
        }


@dataclass(frozen=True)
class Starting(Rule):
    """Work that starts at a point and goes on with no end: "Từ năm 2025", "Từ tháng
    6/2025", "Năm 2023 và những năm tiếp theo".

    The plan sets no due date, only when the work begins (`start`, the first day of the
    period named); `label` says it in the plan's words ("từ tháng 6/2025").
    """

    start: date
    label: str
    kind: ClassVar[str] = "starting"

    def __post_init__(self) -> None:
        _check_type(self, "start", date)
        _check_text(self, "label")

    def due_dates(self, cal: WorkCalendar, *, year: int) -> list[date]:
        return []

    def describe(self, cal: WorkCalendar | None = None) -> str:
        return (
            f"Thực hiện {self.label} trở đi (bắt đầu ngày {vn_date(self.start)}), thường xuyên; "
            "không có ngày hạn riêng"
        )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start.isoformat(), "label": self.label}


@dataclass(frozen=True)
class Continuous(Rule):
    """Ongoing work with no due date of its own: "Thường xuyên"."""

    kind: ClassVar[str] = "continuous"

    def due_dates(self, cal: WorkCalendar, *, year: int) -> list[date]:
        return []

    def describe(self, cal: WorkCalendar | None = None) -> str:
        return "Thực hiện thường xuyên, không có ngày hạn riêng"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}


@dataclass(frozen=True)
class OnDemand(Rule):
    """Work done when asked: "đột xuất khi có yêu cầu"; the request sets its own date."""

    kind: ClassVar[str] = "on_demand"

    def due_dates(self, cal: WorkCalendar, *, year: int) -> list[date]:
        return []

    def describe(self, cal: WorkCalendar | None = None) -> str:
        return "Thực hiện đột xuất khi có yêu cầu; hạn theo văn bản yêu cầu"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind}


@dataclass(frozen=True)
class Reference(Rule):
    """Timing set by another document: "Theo Kế hoạch của UBND tỉnh".

    A date inside the reference ("Quyết định số 1085/QĐ-TTg ngày 15/9/2022") dates the
    document, not the work, so it is no deadline. `code` identifies the reference like
    `AfterEvent.event_code` does an event.
    """

    text: str = field(compare=False)
    code: str = ""
    kind: ClassVar[str] = "reference"

    def __post_init__(self) -> None:
        _check_text(self, "text")
        _set_code(self, "code", self.text)

    def due_dates(self, cal: WorkCalendar, *, year: int) -> list[date]:
        return []

    def describe(self, cal: WorkCalendar | None = None) -> str:
        return f"Hạn theo văn bản dẫn chiếu: {self.text}; không tự tính được ngày hạn"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "code": self.code}


@dataclass(frozen=True)
class Combined(Rule):
    """Several rules for one piece of work: "Hàng quý và đột xuất khi có yêu cầu".

    Its due dates are the union of its parts'; after an event, the earliest due date of
    the parts that wait for it.
    """

    parts: tuple[Rule, ...]
    kind: ClassVar[str] = "combined"

    def __post_init__(self) -> None:
        if not isinstance(self.parts, tuple) or len(self.parts) < 2:
            raise RuleDataError("Quy tắc kết hợp phải có ít nhất hai phần (tuple).")
        for part in self.parts:
            if not isinstance(part, Rule) or isinstance(part, Combined):
                raise RuleDataError(
                    f"Mỗi phần của quy tắc kết hợp phải là một quy tắc đơn, không phải {part!r}."
                )

    def due_dates(self, cal: WorkCalendar, *, year: int) -> list[date]:
        return sorted({d for part in self.parts for d in part.due_dates(cal, year=year)})

    def occurrences(self, cal: WorkCalendar, *, year: int) -> list[tuple[str, date]]:
        pairs = {kd for part in self.parts for kd in part.occurrences(cal, year=year)}
        return sorted(pairs, key=lambda kd: (kd[1], kd[0]))

    def due_after(
        self, cal: WorkCalendar, event_date: date, *, event_code: str | None = None
    ) -> date | None:
        dues = [
            due
            for part in self.parts
            if (due := part.due_after(cal, event_date, event_code=event_code)) is not None
        ]
        return min(dues, default=None)

    def describe(self, cal: WorkCalendar | None = None) -> str:
        return "; ".join(part.describe(cal) for part in self.parts)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "parts": [part.to_dict() for part in self.parts]}


RULE_KINDS: dict[str, type[Rule]] = {
    cls.kind: cls
    for cls in (
        Fixed,
        Period,
        Recurring,
        Annual,
        AfterEvent,
        Starting,
        Continuous,
        OnDemand,
        Reference,
        Combined,
    )
}
# The kinds whose items the engine creates ahead of time from the calendar alone.
DATED_KINDS = tuple(kind for kind, cls in RULE_KINDS.items() if cls.dated)


def due_dates_for(
    rule: Rule, cal: WorkCalendar, *, year: int, event_date: date | None = None
) -> list[date]:
    """The due dates someone asking "when is this due?" expects, sorted.

    - fixed and period: their own due date, whatever `year` is (the phrase names its date);
    - recurring and annual: the due dates falling in `year`;
    - after_event: the due date after `event_date` (none without it, or when the plan sets
      no limit);
    - starting, continuous, on_demand, reference: none;
    - combined: the union over its parts.
    """
    if isinstance(rule, Fixed | Period):
        return [rule.due_date(cal)]
    if isinstance(rule, AfterEvent):
        due = rule.due_after(cal, event_date) if event_date is not None else None
        return [] if due is None else [due]
    if isinstance(rule, Combined):
        dues = (due_dates_for(part, cal, year=year, event_date=event_date) for part in rule.parts)
        return sorted({d for part_dues in dues for d in part_dues})
    return rule.due_dates(cal, year=year)


# ------------------------------------------------------------------------ serialisation


def rule_from_dict(data: dict[str, Any]) -> Rule:
    """The rule `to_dict` produced; `RuleDataError` saying what is wrong otherwise."""
    if not isinstance(data, dict):
        raise RuleDataError(f"Quy tắc phải là một dict, không phải {data!r}.")
    kind = data.get("kind")
    if kind not in RULE_KINDS:
        raise RuleDataError(
            f"Loại quy tắc không hợp lệ {kind!r} (chỉ dùng: {', '.join(RULE_KINDS)})."
        )
    expected = {
        "fixed": {"day", "before"},
        "period": {"start", "end", "label"},
        "recurring": {"freq", "before_day"},
        "annual": {"month", "day", "before"},
        "after_event": {"event", "event_code", "amount", "unit"},
        "starting": {"start", "label"},
        "continuous": set(),
        "on_demand": set(),
        "reference": {"text", "code"},
        "combined": {"parts"},
    }[kind]
    keys = set(data) - {"kind"}
    if keys != expected:
        raise RuleDataError(
            f"Quy tắc {kind!r}: cần đúng các khóa {sorted(expected)}, nhận được {sorted(keys)}."
        )
    if kind == "fixed":
        return Fixed(day=_iso_date(data, "day"), before=data["before"])
    if kind == "period":
        start, end = _iso_date(data, "start"), _iso_date(data, "end")
        return Period(start=start, end=end, label=data["label"])
    if kind == "recurring":
        return Recurring(freq=data["freq"], before_day=data["before_day"])
    if kind == "annual":
        return Annual(month=data["month"], day=data["day"], before=data["before"])
    if kind == "starting":
        return Starting(start=_iso_date(data, "start"), label=data["label"])
    if kind == "after_event":
        return AfterEvent(
            event=data["event"],
            amount=data["amount"],
            unit=data["unit"],
            event_code=data["event_code"],
        )
    if kind == "reference":
        return Reference(text=data["text"], code=data["code"])
    if kind == "combined":
        if not isinstance(data["parts"], list):
            raise RuleDataError("Quy tắc 'combined': 'parts' phải là một danh sách.")
        return Combined(parts=tuple(rule_from_dict(part) for part in data["parts"]))
    return RULE_KINDS[kind]()


def _iso_date(data: dict[str, Any], key: str) -> date:
    value = data[key]
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise RuleDataError(
            f"'{key}' phải là ngày dạng YYYY-MM-DD, không phải {value!r}."
        ) from None


def _check_type(rule: Rule, name: str, kind: type) -> None:
    value = getattr(rule, name)
    if not isinstance(value, kind) or (kind is date and type(value) is not date):
        raise RuleDataError(f"{rule.kind}.{name} phải là {kind.__name__}, không phải {value!r}.")


def _check_text(rule: Rule, name: str) -> None:
    value = getattr(rule, name)
    if not isinstance(value, str) or not event_code_for(value):
        raise RuleDataError(
            f"{rule.kind}.{name} phải là một chuỗi có nội dung, không phải {value!r}."
        )


def _set_code(rule: Rule, name: str, text: str) -> None:
    """Fill the derived code field, or check a given one matches the text it codes."""
    expected = event_code_for(text)
    given = getattr(rule, name)
    if not given:
        object.__setattr__(rule, name, expected)
    elif given != expected:
        raise RuleDataError(
            f"{rule.kind}.{name} {given!r} không khớp với nội dung {text!r} "
            f"(mã đúng: {expected!r})."
        )
