"""A chunk of rows handed to SQLite as one value: fixed-width records in a blob.

Python's sqlite3 binds one value at a time and holds the GIL while it does (about 0.2 µs
a value, 6 µs a row of dossier), and `executemany` gives the GIL back to the reading
thread between every two rows. Here numpy lays a chunk's rows out as records of one
width, every column at a fixed place in its record, and one `INSERT … SELECT` per chunk
takes each column back with `substr` over a sequence of row numbers. The whole chunk is
written by one `sqlite3_step`, which runs without the GIL, while the next chunk is read
and checked.

A record is a numpy structured value; a column's place in it, by kind:
- text: its length in bytes (4 decimal digits), then its UTF-8 bytes; no length when
  every value of the chunk has the same;
- time: `YYYY-MM-DD HH:MM:SS.000000`, the text SQLAlchemy stores for a SQLite DATETIME,
  or a space first for none;
- flag: `1`, `0` or a space for none; integer (a count): decimal digits.
A column with one value throughout the chunk (none, say) takes no place: the value is a
parameter. Each `substr` costs SQLite about 0.1 µs, so a column is read with as few as
its chunk needs: its mode (the same value, one read, or the general case) is a
parameter too. Places, widths and modes being parameters, every chunk runs the same
prepared statement (one statement per chunk's layout would fill the driver's statement
cache with programs of a megabyte each).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

BLOB = "?1"
ROW = "r"  # the record's first byte in the blob (1-based), over the row-number sequence


class Kind(Enum):
    TEXT = "text"
    TEXT_OR_NULL = "text, blank is NULL"
    TIME = "time"
    FLAG = "flag"
    INTEGER = "integer"
    CONSTANT = "one value for every row"


@dataclass
class Packed:
    blob: np.ndarray  # the records' bytes
    rows: int
    width: int  # bytes per record
    expressions: list[str]  # SQL per column, over ROW and the parameters
    params: list  # ?1 the blob, ?2 the record width, ?3 the rows, then the columns'

    def select(self, sequence: str) -> str:
        """SELECT of the chunk's rows, in order, over `sequence`: a table whose INTEGER
        PRIMARY KEY `i` holds 0 … at least `rows` - 1. The same text for every chunk of
        the same columns (one prepared statement): sizes are parameters."""
        return (
            f"SELECT {', '.join(self.expressions)} FROM "
            f"(SELECT i * ?2 + 1 AS {ROW} FROM {sequence} WHERE i < ?3) "
            "WHERE true"  # an upsert may follow: no ON ambiguity
        )


def pack(columns: list[tuple[Kind, pa.Array | np.ndarray | object]]) -> Packed:
    """The rows of `columns` as fixed-width records. A CONSTANT column's value is one
    Python value for every row; every other column's values are as long as the rows."""
    rows = next((len(v) for k, v in columns if k is not Kind.CONSTANT), 0)
    layouts: list[tuple[_Layout, int]] = []
    expressions: list[str] = []
    params: list = [None, 0, rows]
    width = 0

    def place(value) -> str:
        params.append(value)
        return f"?{len(params)}"

    for kind, values in columns:
        if kind is Kind.CONSTANT:
            expressions.append(place(values))
            continue
        layout = _LAYOUTS[kind](values) if rows else _same(None)
        slots = {"at": f"{ROW} + {place(width)}", "size": place(layout.size)}
        slots.update(mode=place(layout.mode), value=place(layout.value))
        expressions.append(_TEMPLATES[kind].format(**slots))
        if layout.width:
            layouts.append((layout, width))
            width += layout.width
    blob = _records(rows, width, layouts) if rows and width else np.zeros(0, np.uint8)
    params[0], params[1] = blob, width
    return Packed(blob, rows, width, expressions, params)


def _records(rows: int, width: int, layouts: list[tuple[_Layout, int]]) -> np.ndarray:
    names, formats, offsets = [], [], []
    blank = bytearray(b" " * width)
    for number, (layout, offset) in enumerate(layouts):
        for part, (kind, at) in layout.parts.items():
            names.append(f"{number}.{part}")
            formats.append(kind)
            offsets.append(offset + at)
        for at, text in layout.fixed:
            blank[offset + at : offset + at + len(text)] = text
    shape = {"names": names, "formats": formats, "offsets": offsets, "itemsize": width}
    records = np.empty(rows, dtype=shape)
    records.view(np.uint8).reshape(rows, width)[:] = np.frombuffer(bytes(blank), np.uint8)
    for number, (layout, _) in enumerate(layouts):
        layout.fill({part: records[f"{number}.{part}"] for part in layout.parts})
    return records.view(np.uint8)


SAME, PLAIN, FULL = 0, 1, 2  # a column's mode in a chunk


@dataclass
class _Layout:
    mode: int
    width: int = 0  # bytes in the record
    size: int = 0  # bytes the plain reading takes
    value: object = None  # the value of every row (SAME)
    parts: dict[str, tuple[str, int]] = field(default_factory=dict)  # numpy format, offset
    fill: Callable[[dict[str, np.ndarray]], None] | None = None  # assigns the parts
    fixed: list[tuple[int, bytes]] = field(default_factory=list)  # the same in every record


def _same(value) -> _Layout:
    return _Layout(SAME, value=value)


def _case(plain: str, full: str) -> str:
    """SQL: the column by its mode. {at}: its first byte; {size}: the plain reading's."""
    return f"CASE {{mode}} WHEN {SAME} THEN {{value}} WHEN {PLAIN} THEN {plain} ELSE {full} END"


def _table(texts: list[bytes]) -> np.ndarray:
    return np.array(texts, dtype=f"S{max(1, max(map(len, texts)))}")


_TWO = _table([b"%02d" % i for i in range(100)])
LENGTH_DIGITS = 4  # a text's length in bytes, before its bytes
_LENGTHS = _table([b"%04d" % i for i in range(10**LENGTH_DIGITS)])
_FLAGS = _table([b" ", b"0", b"1"])  # none, 0, 1

# ----------------------------------------------------------------------------- time

TIME_WIDTH = 26  # YYYY-MM-DD HH:MM:SS.000000
_TIME_TEXT = f"CAST(substr({BLOB}, {{at}}, {{size}}) AS TEXT)"
_TIME = _case(
    _TIME_TEXT, f"CASE WHEN substr({BLOB}, {{at}}, 1) = x'20' THEN NULL ELSE {_TIME_TEXT} END"
)
_DATES_SPAN = (np.datetime64("2000-01-01", "D"), np.datetime64("2100-01-01", "D"))
_dates_cache: list[np.ndarray] = []


def _date_table(first: np.datetime64, end: np.datetime64) -> np.ndarray:
    """`YYYY-MM-DD` of every day from `first` to before `end`, then a blank."""
    dates = np.datetime_as_string(np.arange(first, end))
    if len(dates[0]) != 10 or len(dates[-1]) != 10:
        raise ValueError(f"a date outside the years 1000–9999: {dates[0]} … {dates[-1]}")
    return np.append(dates.astype("S10"), np.array([b" " * 10], dtype="S10"))


def _dates(first: int, last: int) -> tuple[np.ndarray, int]:
    """A table of dates covering the days `first` … `last` (since 1970) and the day of
    its first row: this century's, made once, or one made for a date outside it. Its
    last row is blank."""
    low, high = (int(d.astype(np.int64)) for d in _DATES_SPAN)
    if low <= first and last < high:
        if not _dates_cache:
            _dates_cache.append(_date_table(*_DATES_SPAN))
        return _dates_cache[0], low
    return _date_table(np.datetime64(first, "D"), np.datetime64(last + 1, "D")), first


def _time(values: np.ndarray) -> _Layout:
    stamps = np.asarray(values).astype("datetime64[s]")
    missing = np.isnat(stamps)
    if missing.all():
        return _same(None)
    if not missing.any() and (stamps == stamps[0]).all():
        return _same(str(stamps[0]).replace("T", " ") + ".000000")
    days, of_day = np.divmod(np.where(missing, 0, stamps.astype(np.int64)), 86400)

    def fill(parts: dict[str, np.ndarray]) -> None:
        table, start = _dates(int(days[~missing].min()), int(days[~missing].max()))
        parts["date"][:] = table.take(np.where(missing, len(table) - 1 + start, days) - start)
        parts["hours"][:] = _TWO.take(of_day // 3600)
        parts["minutes"][:] = _TWO.take(of_day // 60 % 60)
        parts["seconds"][:] = _TWO.take(of_day % 60)

    parts = {"date": ("S10", 0), "hours": ("S2", 11), "minutes": ("S2", 14), "seconds": ("S2", 17)}
    fixed = [(10, b" "), (13, b":"), (16, b":"), (19, b".000000")]
    mode = FULL if missing.any() else PLAIN
    return _Layout(mode, TIME_WIDTH, TIME_WIDTH, None, parts, fill, fixed)


# ------------------------------------------------------------------ flags, integers

_FLAG = _case(
    f"(substr({BLOB}, {{at}}, 1) = x'31')",
    f"CASE substr({BLOB}, {{at}}, 1) WHEN x'31' THEN 1 WHEN x'30' THEN 0 END",
)
_INTEGER_TEXT = f"CAST(substr({BLOB}, {{at}}, {{size}}) AS INTEGER)"
_INTEGER = _case(_INTEGER_TEXT, _INTEGER_TEXT)


def _flag(values: np.ndarray) -> _Layout:
    flags = np.clip(np.asarray(values).astype(np.int64), -1, 1)
    if (flags == flags[0]).all():
        return _same(None if flags[0] < 0 else int(flags[0]))

    def fill(parts: dict[str, np.ndarray]) -> None:
        parts["flag"][:] = _FLAGS.take(flags + 1)

    mode = FULL if (flags < 0).any() else PLAIN
    return _Layout(mode, 1, 1, None, {"flag": ("S1", 0)}, fill)


def _integer(values: np.ndarray) -> _Layout:
    numbers = np.asarray(values, dtype=np.int64)
    if numbers.min() < 0:
        raise ValueError("packed integers are counts, never negative")
    if (numbers == numbers[0]).all():
        return _same(int(numbers[0]))
    digits = len(str(int(numbers.max())))

    def fill(parts: dict[str, np.ndarray]) -> None:
        text = np.empty((len(numbers), digits), np.uint8)
        for k in range(digits):
            text[:, digits - 1 - k] = ord("0") + numbers // 10**k % 10
        parts["digits"][:] = text.view(f"S{digits}").ravel()

    return _Layout(PLAIN, digits, digits, None, {"digits": (f"S{digits}", 0)}, fill)


# ----------------------------------------------------------------------------- text

_TEXT_PLAIN = f"CAST(substr({BLOB}, {{at}}, {{size}}) AS TEXT)"
_TEXT_FULL = (
    f"CAST(substr({BLOB}, {{at}} + {LENGTH_DIGITS}, "
    f"CAST(substr({BLOB}, {{at}}, {LENGTH_DIGITS}) AS INTEGER)) AS TEXT)"
)
_TEXT = _case(_TEXT_PLAIN, _TEXT_FULL)
_TEXT_OR_NULL = _case(_TEXT_PLAIN, f"nullif({_TEXT_FULL}, '')")
# A column with at most this share of distinct values is laid out from its dictionary.
DICTIONARY_SHARE = 0.25


def _text(values: pa.Array, blank_is_null: bool = False) -> _Layout:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        raise TypeError(f"packed text must be a string array, not {values.type}")
    values = pc.fill_null(values, "")
    lengths = pc.binary_length(values)
    shortest, longest = (v.as_py() for v in pc.min_max(lengths).values())
    if longest >= 10**LENGTH_DIGITS:
        raise ValueError(f"a text of {longest} bytes is longer than a packed field holds")
    encoded = pc.dictionary_encode(values)
    if len(encoded.dictionary) == 1:
        value = encoded.dictionary[0].as_py()
        return _same(None if blank_is_null and not value else value)
    # One reading when every value has the same length (none blank if blank is NULL).
    plain = shortest == longest and not (blank_is_null and longest == 0)
    if len(encoded.dictionary) <= DICTIONARY_SHARE * len(values):
        texts = [s.encode() for s in encoded.dictionary.to_pylist()]
        table, counts = _table(texts), np.fromiter(map(len, texts), np.int64, len(texts))
        indices = encoded.indices.to_numpy(zero_copy_only=False)

        def text_bytes() -> np.ndarray:
            return table.take(indices)

        def text_lengths() -> np.ndarray:
            return _LENGTHS.take(counts.take(indices))

    else:
        text_bytes, text_lengths = _gathered(values, longest)
    if plain:
        parts = {"bytes": (f"S{max(longest, 1)}", 0)}

        def fill(parts: dict[str, np.ndarray]) -> None:
            parts["bytes"][:] = text_bytes()

        return _Layout(PLAIN, max(longest, 1), longest, None, parts, fill)
    parts = {"length": (f"S{LENGTH_DIGITS}", 0), "bytes": (f"S{max(longest, 1)}", LENGTH_DIGITS)}

    def fill_full(parts: dict[str, np.ndarray]) -> None:
        parts["length"][:] = text_lengths()
        parts["bytes"][:] = text_bytes()

    return _Layout(FULL, LENGTH_DIGITS + max(longest, 1), longest, None, parts, fill_full)


def _gathered(values: pa.Array, longest: int):
    """Values mostly distinct (ids): their bytes gathered from Arrow's buffers."""
    kind = np.int64 if pa.types.is_large_string(values.type) else np.int32
    count = len(values)
    starts = np.frombuffer(values.buffers()[1], dtype=kind)[values.offset :][: count + 1]
    data = values.buffers()[2]
    data = (
        np.frombuffer(data, np.uint8) if data is not None and len(data) else np.zeros(1, np.uint8)
    )
    lengths = np.diff(starts)
    width = max(longest, 1)

    def text_bytes() -> np.ndarray:
        at = np.minimum(starts[:-1, None] + np.arange(width), len(data) - 1)
        gathered = data.take(at)
        gathered[np.arange(width) >= lengths[:, None]] = 0
        return gathered.view(f"S{width}").ravel()

    def text_lengths() -> np.ndarray:
        return _LENGTHS.take(lengths)

    return text_bytes, text_lengths


_LAYOUTS: dict[Kind, Callable[..., _Layout]] = {
    Kind.TEXT: _text,
    Kind.TEXT_OR_NULL: lambda values: _text(values, blank_is_null=True),
    Kind.TIME: _time,
    Kind.FLAG: _flag,
    Kind.INTEGER: _integer,
}
_TEMPLATES = {
    Kind.TEXT: _TEXT,
    Kind.TEXT_OR_NULL: _TEXT_OR_NULL,
    Kind.TIME: _TIME,
    Kind.FLAG: _FLAG,
    Kind.INTEGER: _INTEGER,
}
