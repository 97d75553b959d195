"""The one-stop rules as data: one rule set per legal regime, chosen by a dossier's receipt.

`deadlines/one_stop.yaml` holds Decree 61/2018 (as amended by 107/2021) until 30/6/2025 and
Decree 118/2025 from 1/7/2025, each fact with its article and whether that article was
read in the decree's own text (`confirmed`). Nothing here computes a date: see
`deadlines.dossier`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from deadlines.datafile import FieldReader, LineDict, load_yaml

RULES_FILE = Path(__file__).with_name("one_stop.yaml")
END_OF_DAY = ("24:00", "close_of_business")
LAST_SECOND = 24 * 3600 - 1  # "24:00" kept as 23:59:59: seconds are the finest unit stored


@dataclass(frozen=True)
class Fact:
    """Where a rule comes from, and whether its article was read in the text itself."""

    source: str
    confirmed: bool
    note: str = ""

    def cite(self) -> str:
        return self.source if self.confirmed else f"{self.source} (chưa xác nhận)"


@dataclass(frozen=True)
class Regime:
    """One legal regime's rules (e.g. Decree 118/2025) for the dossiers received under it."""

    code: str
    name: str
    valid_from: date
    valid_to: date | None
    source: str
    next_session_outside_hours: bool
    end_of_day: str  # "24:00" | "close_of_business"
    restart_on_supplement: bool
    supplement_return_working_days: int | None
    close_after_days: int | None
    max_supplement_requests: int
    apology_days_before_due: int
    max_reschedules: int
    facts: dict[str, Fact]  # receipt, counting, supplement, supplement_once, apology

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def end_of_day_seconds(self, close_of_business: int) -> int:
        """Seconds after midnight at which a day-based limit ends."""
        return LAST_SECOND if self.end_of_day == "24:00" else close_of_business


@dataclass(frozen=True)
class Indicator766:
    """The national portal's on-time indicator (Decision 766/QĐ-TTg), as settings."""

    name: str
    supplement_wait_not_counted: bool
    max_requests: int
    pending_supplement_ends_at_request: bool
    rescheduled_date_counts: bool
    fact: Fact


@dataclass(frozen=True)
class OneStopRules:
    regimes: tuple[Regime, ...]  # by valid_from
    reminder_days_before_due: int
    reminder: Fact
    indicator: Indicator766
    path: str

    @classmethod
    def load(cls, path: str | Path | None = None) -> OneStopRules:
        return _Reader(str(path or RULES_FILE)).read()

    def regime(self, code: str) -> Regime:
        for regime in self.regimes:
            if regime.code == code:
                return regime
        raise KeyError(f"không có quy định một cửa mã {code!r} trong {self.path}")

    def regime_on(self, day: date) -> Regime | None:
        """The regime in force on `day` (a receipt date), or None."""
        for regime in self.regimes:
            if regime.covers(day):
                return regime
        return None

    def regime_index_many(self, days: np.ndarray) -> np.ndarray:
        """For each day (`datetime64`), the index in `regimes` of the regime in force, or -1."""
        days = np.asarray(days).astype("datetime64[D]")
        starts = np.array([r.valid_from for r in self.regimes], dtype="datetime64[D]")
        ends = np.array(
            [r.valid_to or date(9999, 12, 31) for r in self.regimes], dtype="datetime64[D]"
        )
        index = np.searchsorted(starts, days, side="right") - 1
        safe = np.clip(index, 0, len(self.regimes) - 1)
        inside = (index >= 0) & (days <= ends[safe]) & ~np.isnat(days)
        return np.where(inside, index, -1)

    def describe_coverage(self) -> str:
        """'21/06/2018 – 30/06/2025, từ 01/07/2025' for error messages."""
        parts = []
        for r in self.regimes:
            end = f" – {r.valid_to:%d/%m/%Y}" if r.valid_to else ""
            parts.append(f"{r.code}: {r.valid_from:%d/%m/%Y}{end}" + ("" if end else " trở đi"))
        return "; ".join(parts)


# ------------------------------------------------------------------------- reading

_TOP = {"regimes", "reminder", "indicator_766"}
_REGIME = {
    "code",
    "name",
    "valid_from",
    "valid_to",
    "source",
    "receipt",
    "counting",
    "supplement",
    "supplement_once",
    "apology",
}
_FACT = {"source", "confirmed", "note"}
_SECTIONS = {
    "receipt": {"next_session_outside_hours"},
    "counting": {"end_of_day"},
    "supplement": {"restarts", "return_within_working_days", "close_after_days"},
    "supplement_once": {"max_requests"},
    "apology": {"working_days_before_due", "max_reschedules"},
}
_INDICATOR = {
    "name",
    "supplement_wait_not_counted",
    "max_requests",
    "pending_supplement_ends_at_request",
    "rescheduled_date_counts",
}


class _Reader(FieldReader):
    def read(self) -> OneStopRules:
        data = self._top_level(load_yaml(self.path), _TOP, "regimes")
        regimes = [self._regime(item) for item in self._list(data, "regimes", required=True)]
        regimes = [r for r in regimes if r is not None]
        regimes.sort(key=lambda r: r.valid_from)
        for earlier, later in itertools.pairwise(regimes):
            if earlier.valid_to is None or earlier.valid_to >= later.valid_from:
                self.problems.add(
                    0,
                    f"quy định {earlier.code} và {later.code} có hiệu lực chồng nhau: mỗi hồ sơ "
                    "phải thuộc đúng một quy định theo ngày tiếp nhận",
                )
        if len({r.code for r in regimes}) != len(regimes):
            self.problems.add(0, "mã quy định (code) bị lặp")
        reminder = self._section(data, "reminder", {"working_days_before_due"})
        indicator = self._section(data, "indicator_766", _INDICATOR)
        self.problems.raise_if_any()
        assert reminder is not None and indicator is not None
        return OneStopRules(
            regimes=tuple(regimes),
            reminder_days_before_due=self._int(reminder, "working_days_before_due"),
            reminder=self._fact(reminder),
            indicator=Indicator766(
                name=str(indicator.get("name") or ""),
                supplement_wait_not_counted=self._bool(indicator, "supplement_wait_not_counted"),
                max_requests=self._int(indicator, "max_requests", minimum=1),
                pending_supplement_ends_at_request=self._bool(
                    indicator, "pending_supplement_ends_at_request"
                ),
                rescheduled_date_counts=self._bool(indicator, "rescheduled_date_counts"),
                fact=self._fact(indicator),
            ),
            path=self.path,
        )

    def _regime(self, item: LineDict) -> Regime | None:
        code = self._text(item, "code", "quy định", required=True) or "?"
        what = f"quy định {code}"
        self._unknown_keys(item, _REGIME, what)
        name = self._text(item, "name", what, required=True)
        source = self._text(item, "source", what, required=True)
        valid_from = self._date(item, "valid_from", what, required=True)
        valid_to = self._date(item, "valid_to", what, required=False)
        if valid_from and valid_to and valid_to < valid_from:
            self.problems.add(item.line_of("valid_to"), f"{what}: valid_to trước valid_from")
        sections = {
            key: self._section(item, key, fields, what) for key, fields in _SECTIONS.items()
        }
        if any(s is None for s in sections.values()) or not (name and source and valid_from):
            return None
        receipt, counting = sections["receipt"], sections["counting"]
        supplement, once, apology = (
            sections["supplement"],
            sections["supplement_once"],
            sections["apology"],
        )
        end_of_day = counting.get("end_of_day")
        if end_of_day not in END_OF_DAY:
            self.problems.add(
                counting.line_of("end_of_day"),
                f"{what}: end_of_day phải là {' hoặc '.join(END_OF_DAY)} "
                f"(không phải {end_of_day!r})",
            )
        return Regime(
            code=code,
            name=name,
            valid_from=valid_from,
            valid_to=valid_to,
            source=source,
            next_session_outside_hours=self._bool(receipt, "next_session_outside_hours"),
            end_of_day=str(end_of_day),
            restart_on_supplement=self._bool(supplement, "restarts"),
            supplement_return_working_days=self._int(
                supplement, "return_within_working_days", optional=True
            ),
            close_after_days=self._int(supplement, "close_after_days", optional=True),
            max_supplement_requests=self._int(once, "max_requests", minimum=1),
            apology_days_before_due=self._int(apology, "working_days_before_due"),
            max_reschedules=self._int(apology, "max_reschedules", minimum=1),
            facts={key: self._fact(section) for key, section in sections.items()},
        )

    def _section(
        self, parent: LineDict, key: str, fields: set[str], what: str = ""
    ) -> LineDict | None:
        section = parent.get(key)
        label = f"{what}: {key}" if what else key
        if not isinstance(section, LineDict):
            self.problems.add(parent.line_of(key), f"{label}: thiếu bảng {key!r}")
            return None
        self._unknown_keys(section, fields | _FACT, label)
        for name in fields:
            if name not in section:
                self.problems.add(section.line, f"{label}: thiếu trường {name!r}")
        self._text(section, "source", label, required=True)
        if not isinstance(section.get("confirmed"), bool):
            self.problems.add(
                section.line_of("confirmed"), f"{label}: 'confirmed' phải là true hoặc false"
            )
        elif section.get("confirmed") is False and not section.get("note"):
            self.problems.add(
                section.line_of("confirmed"),
                f"{label}: điều chưa xác nhận cần 'note' nói điều gì còn thiếu",
            )
        return section

    def _fact(self, section: LineDict) -> Fact:
        return Fact(
            str(section.get("source") or "").strip(),
            bool(section.get("confirmed")),
            " ".join(str(section.get("note") or "").split()),
        )

    def _bool(self, section: LineDict, key: str) -> bool:
        value = section.get(key)
        if not isinstance(value, bool):
            self.problems.add(section.line_of(key), f"{key!r} phải là true hoặc false")
            return False
        return value

    def _int(self, section: LineDict, key: str, *, optional: bool = False, minimum: int = 0) -> int:
        value = section.get(key)
        if value is None and optional:
            return None  # type: ignore[return-value]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.problems.add(
                section.line_of(key),
                f"{key!r} phải là số nguyên ≥ {minimum} (không phải {value!r})",
            )
            return minimum
        return value
