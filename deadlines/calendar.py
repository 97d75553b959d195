"""The Vietnamese working-day calendar (lịch ngày làm việc).

A `WorkCalendar` answers, for any day in its supported range, whether civil servants work
that day and why, and counts time limits the way the Civil Code does (Arts. 147-148): the
day of the triggering event is not counted, and a limit ends at the end of its last day.

It is built from three layers, each later one winning over the earlier:
1. the `holidays` package (country VN): lunar and fixed holidays, compensatory days,
   substituted days off and worked Saturdays (`weekend_workdays`);
2. the shipped table `vn_calendar.yaml` beside this module: official decisions the
   package does not carry yet, each with its source;
3. optional user override files (a province's own days off or extra working days).

Everything is precomputed once into day-indexed arrays, so every question is O(1) and the
bulk form answers a million (date, n) pairs in one vectorised step. The calendar is pure:
it never reads the clock, and "today" is always a parameter.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import numpy as np

from deadlines.datafile import LineDict, ProblemList, load_yaml

SHIPPED_DATA = Path(__file__).with_name("vn_calendar.yaml")
OVERRIDES_ENV = "DUNGHAN_CALENDAR_OVERRIDES"

# The supported range: wide enough for any plan of the decade and for limits that start
# near its end. Outside it the calendar refuses to answer rather than guess.
FIRST_YEAR = 2015
LAST_YEAR = 2035

WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEEKDAY_VI = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật")
HOLIDAYS_SOURCE = (
    f"Bộ luật Lao động 2019, Điều 112 (ngày cụ thể theo gói holidays {holidays.__version__})"
)


class CalendarError(ValueError):
    """A question the calendar cannot answer correctly."""


class OutOfRangeError(CalendarError):
    """A date (or a result) outside the calendar's supported range."""


@dataclass(frozen=True)
class DayNote:
    """Why one day differs from an ordinary weekday or weekend day."""

    day: date
    working: bool
    name: str
    source: str
    origin: str  # "holidays", the shipped table, or a user override file
    swapped_with: date | None = None
    confirmed: bool = True


@dataclass(frozen=True)
class Session:
    """One working session of a day, [start, end) in local time."""

    start: time
    end: time

    @property
    def seconds(self) -> int:
        return _seconds(self.end) - _seconds(self.start)

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True)
class WorkingHours:
    sessions: tuple[Session, ...]
    timezone: ZoneInfo
    source: str


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


class WorkCalendar:
    """Working days and working hours of Vietnamese civil servants.

    Build it with `WorkCalendar.vietnam()`. All dates are `datetime.date`; datetimes for
    working-hour arithmetic are interpreted in the calendar's time zone.
    """

    def __init__(
        self,
        first_year: int,
        last_year: int,
        weekly_rest: Sequence[int],
        weekly_rest_source: str,
        notes: dict[date, DayNote],
        hours: WorkingHours,
    ):
        self.first_day = date(first_year, 1, 1)
        self.last_day = date(last_year, 12, 31)
        self.weekly_rest = tuple(sorted(weekly_rest))
        self.weekly_rest_source = weekly_rest_source
        self.hours = hours
        self._notes = dict(notes)
        self._origin = self.first_day.toordinal()
        n_days = self.last_day.toordinal() - self._origin + 1

        # Monday of first_day's week aligns weekday arithmetic: weekday = (index + w0) % 7.
        weekday = (np.arange(n_days) + self.first_day.weekday()) % 7
        working = ~np.isin(weekday, self.weekly_rest)
        for day, note in self._notes.items():
            working[day.toordinal() - self._origin] = note.working
        self._working = working
        # _cum[i] = working days strictly before day index i; _cum[n_days] = total.
        self._cum = np.concatenate(([0], np.cumsum(working, dtype=np.int64)))
        self._workdays = np.flatnonzero(working).astype(np.int64)
        # The same tables as plain Python lists: scalar look-ups without numpy overhead.
        self._working_list = working.tolist()
        self._cum_list = self._cum.tolist()
        self._workdays_list = self._workdays.tolist()
        self._day_seconds = sum(s.seconds for s in hours.sessions)

    # ----------------------------------------------------------------- construction

    @classmethod
    def vietnam(
        cls,
        overrides: str | Path | Iterable[str | Path] | None = None,
        *,
        first_year: int = FIRST_YEAR,
        last_year: int = LAST_YEAR,
    ) -> WorkCalendar:
        """The Vietnamese calendar: `holidays` VN, the shipped table, then `overrides`.

        `overrides` is a path (or several) to a province's own override file, in the same
        format as the shipped `vn_calendar.yaml` (`overrides:` rows, optionally
        `working_hours:`). Invalid files raise `DataFileError` listing every problem.
        """
        package_days = holidays.country_holidays(
            "VN", years=range(first_year, last_year + 1), language="vi"
        )
        notes: dict[date, DayNote] = {}
        for day, name in package_days.items():
            notes[day] = DayNote(day, False, name, HOLIDAYS_SOURCE, "holidays")
        for day in package_days.weekend_workdays:
            if first_year <= day.year <= last_year:
                # The package names the weekday given off "... (thay cho ngày dd/mm/yyyy)".
                swapped = next(
                    (d for d, name in package_days.items() if f"{day:%d/%m/%Y}" in name), None
                )
                notes[day] = DayNote(
                    day, True, "Ngày làm bù", HOLIDAYS_SOURCE, "holidays", swapped_with=swapped
                )
                if swapped is not None:
                    off = notes[swapped]
                    notes[swapped] = DayNote(
                        swapped, False, off.name, off.source, off.origin, swapped_with=day
                    )

        shipped = _read_calendar_file(SHIPPED_DATA, first_year, last_year, shipped=True)
        weekly_rest, weekly_rest_source = shipped.weekly_rest
        hours = shipped.hours
        notes.update(shipped.notes)
        if overrides is not None:
            paths = [overrides] if isinstance(overrides, str | Path) else list(overrides)
            for path in paths:
                user = _read_calendar_file(Path(path), first_year, last_year, shipped=False)
                notes.update(user.notes)
                hours = user.hours or hours
        return cls(first_year, last_year, weekly_rest, weekly_rest_source, notes, hours)

    @classmethod
    def from_settings(cls, environ: dict[str, str] | None = None) -> WorkCalendar:
        """The calendar with the override files named in `DUNGHAN_CALENDAR_OVERRIDES`.

        The variable holds one path or several separated by the OS path separator.
        """
        value = (os.environ if environ is None else environ).get(OVERRIDES_ENV, "").strip()
        paths = [p for p in value.split(os.pathsep) if p.strip()]
        return cls.vietnam(paths or None)

    # ------------------------------------------------------------------- day queries

    def _index(self, d: date) -> int:
        if isinstance(d, datetime):
            d = d.date()
        if not self.first_day <= d <= self.last_day:
            raise OutOfRangeError(
                f"Ngày {d.isoformat()} nằm ngoài phạm vi lịch được hỗ trợ "
                f"({self.first_day.isoformat()} – {self.last_day.isoformat()})."
            )
        return d.toordinal() - self._origin

    def _day(self, index: int) -> date:
        return date.fromordinal(index + self._origin)

    def is_working_day(self, d: date) -> bool:
        return self._working_list[self._index(d)]

    def add_working_days(self, d: date, n: int) -> date:
        """The n-th working day strictly after `d` (n > 0) or strictly before it (n < 0).

        Civil Code Art. 147: the day of the event is not counted, so `d` itself never
        counts, working or not. `n == 0` returns `d` unchanged.
        """
        i = self._index(d)
        if n == 0:
            return self._day(i)
        k = self._cum_list[i + 1] + n - 1 if n > 0 else self._cum_list[i] + n
        if not 0 <= k < len(self._workdays_list):
            raise OutOfRangeError(
                f"{d.isoformat()} {n:+d} ngày làm việc vượt ra ngoài phạm vi lịch được hỗ trợ "
                f"({self.first_day.isoformat()} – {self.last_day.isoformat()})."
            )
        return self._day(self._workdays_list[k])

    def count_working_days(self, start: date, end: date) -> int:
        """Working days in [start, end], both ends included (0 when end < start)."""
        i, j = self._index(start), self._index(end)
        if j < i:
            return 0
        return self._cum_list[j + 1] - self._cum_list[i]

    def next_working_day(self, d: date) -> date:
        """`d` itself if it is a working day, else the first working day after it."""
        return d if self.is_working_day(d) else self.add_working_days(d, 1)

    def previous_working_day(self, d: date) -> date:
        """`d` itself if it is a working day, else the last working day before it."""
        return d if self.is_working_day(d) else self.add_working_days(d, -1)

    def working_days_between(self, start: date, end: date) -> list[date]:
        """The working days in [start, end], in order."""
        i, j = self._index(start), self._index(end)
        lo, hi = self._cum_list[i], self._cum_list[j + 1]
        return [self._day(k) for k in self._workdays_list[lo:hi]]

    def note(self, d: date) -> DayNote | None:
        """The recorded reason a day differs from the weekly pattern, if any."""
        self._index(d)
        return self._notes.get(d)

    def exceptions(self, year: int) -> list[DayNote]:
        """The weekdays off and the worked weekend days of a year, in date order.

        A holiday that falls on a weekly rest day changes nothing and is left out.
        """
        self._index(date(year, 1, 1))
        self._index(date(year, 12, 31))
        out = []
        for day in sorted(d for d in self._notes if d.year == year):
            note = self._notes[day]
            weekend = day.weekday() in self.weekly_rest
            if note.working == weekend:
                out.append(note)
        return out

    def explain(self, d: date) -> str:
        """Why `d` is or is not a working day, in Vietnamese, with the legal source."""
        self._index(d)
        head = f"{WEEKDAY_VI[d.weekday()]} {d:%d/%m/%Y}"
        working = self.is_working_day(d)
        status = "ngày làm việc" if working else "ngày nghỉ"
        note = self._notes.get(d)
        weekend = d.weekday() in self.weekly_rest
        if note is not None and note.working == weekend:  # differs from the weekly pattern
            text = f"{head}: {status} — {note.name}"
            if note.swapped_with and f"{note.swapped_with:%d/%m/%Y}" not in note.name:
                text += f" (hoán đổi với {WEEKDAY_VI[note.swapped_with.weekday()].lower()} "
                text += f"{note.swapped_with:%d/%m/%Y})"
            text += f". Nguồn: {note.source}."
            if not note.confirmed:
                text += " Lưu ý: chưa đối chiếu được với văn bản gốc."
            return text
        if weekend:
            text = f"{head}: ngày nghỉ hằng tuần. Nguồn: {self.weekly_rest_source}."
            if note is not None:
                text += f" Trùng với {note.name}; ngày nghỉ bù (nếu có) được ghi riêng."
            return text
        return f"{head}: ngày làm việc bình thường (từ thứ Hai đến thứ Sáu)."

    # --------------------------------------------------------------------- bulk form

    def add_working_days_many(
        self, days: np.ndarray | Sequence[date], n: np.ndarray | Sequence[int]
    ):
        """Vectorised `add_working_days` over arrays of (date, n) pairs.

        `days` is an array of `datetime64[D]` (or a sequence of dates); `n` an integer
        array of the same length (or a scalar). Returns `datetime64[D]`, element for
        element equal to the scalar form. Raises `OutOfRangeError` naming the first
        offending row.
        """
        days = np.asarray(days, dtype="datetime64[D]")
        n = np.broadcast_to(np.asarray(n, dtype=np.int64), days.shape)
        origin = np.datetime64(self.first_day, "D")
        idx = (days - origin).astype(np.int64)
        bad = (idx < 0) | (idx >= len(self._working))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise OutOfRangeError(
                f"Dòng {row}: ngày {days[row]} nằm ngoài phạm vi lịch được hỗ trợ "
                f"({self.first_day.isoformat()} – {self.last_day.isoformat()})."
            )
        k = np.where(n > 0, self._cum[idx + 1] + n - 1, self._cum[idx] + n)
        bad = (k < 0) | (k >= len(self._workdays))
        bad &= n != 0
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise OutOfRangeError(
                f"Dòng {row}: {days[row]} {int(n[row]):+d} ngày làm việc vượt ra ngoài phạm vi "
                f"lịch được hỗ trợ ({self.first_day.isoformat()} – {self.last_day.isoformat()})."
            )
        result_idx = np.where(n == 0, idx, self._workdays[np.clip(k, 0, len(self._workdays) - 1)])
        return origin + result_idx.astype("timedelta64[D]")

    def is_working_day_many(self, days: np.ndarray | Sequence[date]) -> np.ndarray:
        """Vectorised `is_working_day`."""
        days = np.asarray(days, dtype="datetime64[D]")
        idx = (days - np.datetime64(self.first_day, "D")).astype(np.int64)
        if ((idx < 0) | (idx >= len(self._working))).any():
            raise OutOfRangeError(
                f"Có ngày nằm ngoài phạm vi lịch được hỗ trợ "
                f"({self.first_day.isoformat()} – {self.last_day.isoformat()})."
            )
        return self._working[idx]

    def next_working_day_many(self, days: np.ndarray | Sequence[date]) -> np.ndarray:
        """Vectorised `next_working_day`."""
        days = np.asarray(days, dtype="datetime64[D]")
        return np.where(self.is_working_day_many(days), days, self.add_working_days_many(days, 1))

    # ------------------------------------------------- working hours, vectorised
    #
    # Arrays of local wall-clock times as `datetime64[s]` (Vietnam keeps one UTC offset
    # all year, so local time is a plain shift of UTC). Element for element equal to the
    # scalar forms below; tests tie them together.

    def _session_bounds(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        starts = np.array([_seconds(s.start) for s in self.hours.sessions], dtype=np.int64)
        ends = np.array([_seconds(s.end) for s in self.hours.sessions], dtype=np.int64)
        before = np.concatenate(([0], np.cumsum(ends - starts)[:-1]))
        return starts, ends, before

    def normalize_receipt_many(self, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised `normalize_receipt` on local `datetime64[s]` times.

        Returns (start times, working seconds of their day already elapsed at them).
        """
        local = np.asarray(local, dtype="datetime64[s]")
        day = local.astype("datetime64[D]")
        sod = (local - day.astype("datetime64[s]")).astype(np.int64)
        working = self.is_working_day_many(day)
        starts, ends, before = self._session_bounds()
        out_day = day.copy()
        out_sod = np.full(local.shape, -1, dtype=np.int64)
        elapsed = np.zeros(local.shape, dtype=np.int64)
        # Inside a session of a working day: unchanged.
        for s, e, b in zip(starts, ends, before, strict=True):
            inside = working & (sod >= s) & (sod < e) & (out_sod < 0)
            out_sod[inside] = sod[inside]
            elapsed[inside] = b + sod[inside] - s
        # Before a later session of a working day: that session's start.
        for s, b in zip(starts, before, strict=True):
            waiting = working & (out_sod < 0) & (sod < s)
            out_sod[waiting] = s
            elapsed[waiting] = b
        # After the last session, or a day off: the next working day's first session.
        rest = out_sod < 0
        if rest.any():
            out_day[rest] = self.add_working_days_many(day[rest], 1)
            out_sod[rest] = starts[0]
            elapsed[rest] = 0
        return out_day.astype("datetime64[s]") + out_sod.astype("timedelta64[s]"), elapsed

    def add_working_hours_many(self, local: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """Vectorised `add_working_hours` with the amount in whole seconds."""
        start, elapsed = self.normalize_receipt_many(local)
        seconds = np.broadcast_to(np.asarray(seconds, dtype=np.int64), start.shape)
        if (seconds < 0).any():
            raise CalendarError("Số giờ làm việc phải không âm.")
        total = elapsed + seconds
        days_ahead, rest = np.divmod(total, self._day_seconds)
        at_close = (rest == 0) & (days_ahead > 0)
        days_ahead = np.where(at_close, days_ahead - 1, days_ahead)
        rest = np.where(at_close, self._day_seconds, rest)
        day = start.astype("datetime64[D]")
        target = self.add_working_days_many(day, days_ahead)
        starts, ends, before = self._session_bounds()
        sod = np.zeros(start.shape, dtype=np.int64)
        placed = np.zeros(start.shape, dtype=bool)
        for s, e, b in zip(starts, ends, before, strict=True):
            here = ~placed & (rest <= b + (e - s))
            sod[here] = s + rest[here] - b
            placed |= here
        due = target.astype("datetime64[s]") + sod.astype("timedelta64[s]")
        return np.where(seconds == 0, start, due)

    def close_of_day_seconds(self) -> int:
        """Seconds after midnight at which the working day ends (the last session's end)."""
        return _seconds(self.hours.sessions[-1].end)

    # ----------------------------------------------------------------- working hours

    def _local(self, dt: datetime) -> datetime:
        tz = self.hours.timezone
        return dt.replace(tzinfo=tz) if dt.tzinfo is None else dt.astimezone(tz)

    def _at(self, d: date, seconds: int) -> datetime:
        return datetime.combine(d, time(), tzinfo=self.hours.timezone) + timedelta(seconds=seconds)

    def _worked_before(self, seconds_of_day: int) -> int | None:
        """Working seconds of a working day elapsed at `seconds_of_day`; None if outside
        every session."""
        done = 0
        for s in self.hours.sessions:
            start, end = _seconds(s.start), _seconds(s.end)
            if start <= seconds_of_day < end:
                return done + seconds_of_day - start
            done += end - start
        return None

    def _position(self, d: date, worked: int) -> datetime:
        """The instant of day `d` after `worked` seconds of work (0 < worked <= a day)."""
        for s in self.hours.sessions:
            if worked <= s.seconds:
                return self._at(d, _seconds(s.start) + worked)
            worked -= s.seconds
        raise AssertionError("worked exceeds a working day")  # pragma: no cover

    def normalize_receipt(self, dt: datetime) -> datetime:
        """When a dossier received at `dt` starts counting.

        A time inside a working session of a working day stays as it is; a time outside
        working hours or on a day off moves to the start of the next working session.
        """
        local = self._local(dt)
        d = local.date()
        if self.is_working_day(d):
            sod = local.hour * 3600 + local.minute * 60 + local.second
            if self._worked_before(sod) is not None:
                return local
            for s in self.hours.sessions:
                if sod < _seconds(s.start):
                    return self._at(d, _seconds(s.start))
        nxt = self.add_working_days(d, 1)
        return self._at(nxt, _seconds(self.hours.sessions[0].start))

    def add_working_hours(self, dt: datetime, hours: float | timedelta) -> datetime:
        """The instant `hours` working hours after `dt`, counting only working sessions.

        `dt` is first normalised like a receipt. A limit that ends exactly at the close of
        a day ends then (17:00), not at the next morning's opening.
        """
        amount = hours if isinstance(hours, timedelta) else timedelta(hours=hours)
        if amount < timedelta(0):
            raise CalendarError("Số giờ làm việc phải không âm.")
        start = self.normalize_receipt(dt)
        sod = start.hour * 3600 + start.minute * 60 + start.second
        elapsed = self._worked_before(sod)
        assert elapsed is not None
        total = elapsed + amount.total_seconds()
        if amount == timedelta(0):
            return start
        days_ahead, rest = divmod(total, self._day_seconds)
        days_ahead = int(days_ahead)
        if rest == 0:  # ends exactly at the close of a working day
            days_ahead -= 1
            rest = self._day_seconds
        day = start.date() if days_ahead == 0 else self.add_working_days(start.date(), days_ahead)
        whole = int(rest)
        return self._position(day, whole) + timedelta(seconds=rest - whole)


# --------------------------------------------------------------------------- data files


@dataclass
class _CalendarFile:
    notes: dict[date, DayNote]
    hours: WorkingHours | None
    weekly_rest: tuple[list[int], str]


def _read_calendar_file(path: Path, first_year: int, last_year: int, *, shipped: bool):
    data = load_yaml(path)
    problems = ProblemList(str(path))
    if not isinstance(data, dict):
        problems.add(0, "tệp phải là một bảng (mapping) có khóa 'overrides'.")
        problems.raise_if_any()
    allowed = {"overrides", "working_hours"} | ({"weekly_rest"} if shipped else set())
    for key in data:
        if key not in allowed:
            problems.add(
                data.line_of(key),
                f"khóa không hợp lệ '{key}' (chỉ dùng: {', '.join(sorted(allowed))}).",
            )
    notes = _read_overrides(data.get("overrides") or [], path, problems, first_year, last_year)
    hours = _read_hours(data["working_hours"], problems) if "working_hours" in data else None
    weekly = ([], "")
    if shipped:
        weekly = _read_weekly_rest(data.get("weekly_rest"), problems, data.line)
        if hours is None:
            problems.add(data.line, "thiếu 'working_hours'.")
    problems.raise_if_any()
    return _CalendarFile(notes, hours, weekly)


_ROW_KEYS = {"date", "kind", "name", "source", "swapped_with", "status"}


def _read_overrides(rows, path: Path, problems: ProblemList, first_year: int, last_year: int):
    origin = path.name
    notes: dict[date, DayNote] = {}
    if not isinstance(rows, list):
        problems.add(getattr(rows, "line", 0), "'overrides' phải là một danh sách.")
        return notes
    for row in rows:
        if not isinstance(row, LineDict):
            problems.add(0, f"mỗi dòng của 'overrides' phải là một bảng, không phải {row!r}.")
            continue
        line = row.line
        for key in row:
            if key not in _ROW_KEYS:
                problems.add(row.line_of(key), f"khóa không hợp lệ '{key}'.")
        day = _as_date(row.get("date"))
        if day is None:
            problems.add(
                row.line_of("date"), f"'date' phải là ngày dạng YYYY-MM-DD: {row.get('date')!r}."
            )
        elif not first_year <= day.year <= last_year:
            problems.add(
                row.line_of("date"),
                f"ngày {day.isoformat()} nằm ngoài phạm vi lịch ({first_year}–{last_year}).",
            )
            day = None
        kind = row.get("kind")
        if kind not in ("off", "work"):
            problems.add(
                row.line_of("kind"), f"'kind' phải là 'off' hoặc 'work', không phải {kind!r}."
            )
        for key in ("name", "source"):
            if not isinstance(row.get(key), str) or not row.get(key).strip():
                problems.add(row.line_of(key), f"thiếu '{key}' (bắt buộc, ghi rõ văn bản căn cứ).")
        swapped = row.get("swapped_with")
        if swapped is not None and _as_date(swapped) is None:
            problems.add(row.line_of("swapped_with"), f"'swapped_with' phải là ngày: {swapped!r}.")
        status = row.get("status", "confirmed")
        if status not in ("confirmed", "unconfirmed"):
            problems.add(
                row.line_of("status"), f"'status' phải là confirmed/unconfirmed: {status!r}."
            )
        if day is not None and day in notes and notes[day].working != (kind == "work"):
            problems.add(line, f"ngày {day.isoformat()} được khai hai lần với hai loại khác nhau.")
        if day is None or kind not in ("off", "work"):
            continue
        notes[day] = DayNote(
            day=day,
            working=kind == "work",
            name=str(row.get("name", "")).strip(),
            source=str(row.get("source", "")).strip(),
            origin=origin,
            swapped_with=_as_date(swapped),
            confirmed=status != "unconfirmed",
        )
    return notes


def _read_hours(raw, problems: ProblemList) -> WorkingHours | None:
    if not isinstance(raw, LineDict):
        problems.add(0, "'working_hours' phải là một bảng.")
        return None
    tz_name = raw.get("timezone", "Asia/Ho_Chi_Minh")
    try:
        tz = ZoneInfo(str(tz_name))
    except Exception:
        problems.add(raw.line_of("timezone"), f"múi giờ không hợp lệ: {tz_name!r}.")
        return None
    sessions: list[Session] = []
    raw_sessions = raw.get("sessions")
    if not isinstance(raw_sessions, list) or not raw_sessions:
        problems.add(raw.line_of("sessions"), "'sessions' phải là danh sách dạng \"07:00-11:30\".")
        return None
    for text in raw_sessions:
        session = _parse_session(text)
        if session is None or session.end <= session.start:
            problems.add(raw.line_of("sessions"), f"phiên làm việc không hợp lệ: {text!r}.")
            return None
        if sessions and session.start < sessions[-1].end:
            problems.add(raw.line_of("sessions"), f"phiên {text!r} chồng lên phiên trước.")
            return None
        sessions.append(session)
    return WorkingHours(tuple(sessions), tz, str(raw.get("source", "")))


def _read_weekly_rest(raw, problems: ProblemList, line: int) -> tuple[list[int], str]:
    if not isinstance(raw, LineDict):
        problems.add(line, "thiếu 'weekly_rest'.")
        return [], ""
    days = []
    for name in raw.get("days") or []:
        if name not in WEEKDAY_NAMES:
            problems.add(raw.line_of("days"), f"tên thứ không hợp lệ: {name!r}.")
        else:
            days.append(WEEKDAY_NAMES.index(name))
    return days, str(raw.get("source", ""))


def _parse_session(text) -> Session | None:
    try:
        start, end = str(text).split("-")
        return Session(time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))
    except ValueError:
        return None


def _as_date(value) -> date | None:
    if isinstance(value, datetime):
        return None
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None
