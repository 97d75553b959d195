"""A chunk of rows handed to SQLite as one value: fixed-width records in a blob.

Python's sqlite3 binds one value at a time and holds the GIL while it does (about 0.2 µs
a value, 6 µs a row of dossier), and `executemany` gives the GIL back to the reading
thread between every two rows. Here numpy lays a chunk's rows out as records of one
width, every column at a fixed place in its record, and one `INSERT … SELECT` per chunk
takes each column back with `substr` over a sequence of row numbers. The whole chunk is
written by one `sqlite3_step`, which runs without the GIL, while the next chunk is read
and checked.

A record is a numpy structured value; a column's place in it, by kind:
- text: its length in bytes (4 decimal digits), then its UTF-8 bytes;
- time: `YYYY-MM-DD HH:MM:SS.000000`, the text SQLAlchemy stores for a SQLite DATETIME,
  or a space first for none;
- flag: `1`, `0` or a space for none; integer (a count): decimal digits.
Places and widths are parameters, so every chunk runs the same prepared statement (one
statement per chunk's layout would fill the driver's statement cache with programs of a
megabyte each); a column with one value for the whole import is bound once.
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
        layout = _LAYOUTS[kind](values)
        layouts.append((layout, width))
        at = f"{ROW} + {place(width)}"
        size = place(layout.width) if "{size}" in layout.template else ""
        expressions.append(layout.template.format(at=at, size=size))
        width += layout.width
    names, formats, offsets = [], [], []
    blank = bytearray(b" " * width)
    for number, (layout, offset) in enumerate(layouts):
        for part, (kind, at) in layout.parts.items():
            names.append(f"{number}.{part}")
            formats.append(kind)
            offsets.append(offset + at)
        for at, text in layout.fixed:
            blank[offset + at : offset + at + len(text)] = text
    if not rows:
        return Packed(
            np.zeros(0, np.uint8),
            0,
            width,
            expressions,
            [np.zeros(0, np.uint8), width, 0, *params[3:]],
        )
    records = np.empty(
        rows,
        dtype={"names": names, "formats": formats, "offsets": offsets, "itemsize": max(width, 1)},
    )
    records.view(np.uint8).reshape(rows, -1)[:] = np.frombuffer(bytes(blank or b" "), np.uint8)
    for number, (layout, _) in enumerate(layouts):
        layout.fill({part: records[f"{number}.{part}"] for part in layout.parts})
    params[0], params[1] = records.view(np.uint8)[: rows * width], width
    return Packed(params[0], rows, width, expressions, params)


@dataclass
class _Layout:
    width: int
    template: str  # SQL; the column's bytes start at {at} and take {size}
    parts: dict[str, tuple[str, int]]  # numpy format and offset of each part
    fill: Callable[[dict[str, np.ndarray]], None]  # assigns the parts, every row
    fixed: list[tuple[int, bytes]] = field(default_factory=list)  # the same in every row


def _table(texts: list[bytes]) -> np.ndarray:
    return np.array(texts, dtype=f"S{max(1, max(map(len, texts)))}")


_TWO = _table([b"%02d" % i for i in range(100)])
LENGTH_DIGITS = 4  # a text's length in bytes, before its bytes
_LENGTHS = _table([b"%04d" % i for i in range(10**LENGTH_DIGITS)])
_FLAGS = _table([b" ", b"0", b"1"])  # none, 0, 1

# ----------------------------------------------------------------------------- time

TIME_WIDTH = 26  # YYYY-MM-DD HH:MM:SS.000000
_TIME = (
    f"CASE WHEN substr({BLOB}, {{at}}, 1) = x'20' THEN NULL "
    f"ELSE CAST(substr({BLOB}, {{at}}, {{size}}) AS TEXT) END"
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
    days, of_day = np.divmod(np.where(missing, 0, stamps.astype(np.int64)), 86400)

    def fill(parts: dict[str, np.ndarray]) -> None:
        if missing.all():
            parts["date"][:] = b" "
            return
        table, start = _dates(int(days[~missing].min()), int(days[~missing].max()))
        parts["date"][:] = table.take(np.where(missing, len(table) - 1 + start, days) - start)
        parts["hours"][:] = _TWO.take(of_day // 3600)
        parts["minutes"][:] = _TWO.take(of_day // 60 % 60)
        parts["seconds"][:] = _TWO.take(of_day % 60)

    parts = {"date": ("S10", 0), "hours": ("S2", 11), "minutes": ("S2", 14), "seconds": ("S2", 17)}
    fixed = [(10, b" "), (13, b":"), (16, b":"), (19, b".000000")]
    return _Layout(TIME_WIDTH, _TIME, parts, fill, fixed)


# ------------------------------------------------------------------ flags, integers

_FLAG = f"CASE substr({BLOB}, {{at}}, {{size}}) WHEN x'31' THEN 1 WHEN x'30' THEN 0 END"
_INTEGER = f"CAST(substr({BLOB}, {{at}}, {{size}}) AS INTEGER)"


def _flag(values: np.ndarray) -> _Layout:
    flags = np.clip(np.asarray(values).astype(np.int64), -1, 1) + 1

    def fill(parts: dict[str, np.ndarray]) -> None:
        parts["flag"][:] = _FLAGS.take(flags)

    return _Layout(1, _FLAG, {"flag": ("S1", 0)}, fill)


def _integer(values: np.ndarray) -> _Layout:
    numbers = np.asarray(values, dtype=np.int64)
    if len(numbers) and numbers.min() < 0:
        raise ValueError("packed integers are counts, never negative")
    digits = len(str(int(numbers.max()))) if len(numbers) else 1

    def fill(parts: dict[str, np.ndarray]) -> None:
        text = np.empty((len(numbers), digits), np.uint8)
        for k in range(digits):
            text[:, digits - 1 - k] = ord("0") + numbers // 10**k % 10
        parts["digits"][:] = text.view(f"S{digits}").ravel()

    return _Layout(digits, _INTEGER, {"digits": (f"S{digits}", 0)}, fill)


# ----------------------------------------------------------------------------- text

_TEXT = (
    f"CAST(substr({BLOB}, {{at}} + {LENGTH_DIGITS}, "
    f"CAST(substr({BLOB}, {{at}}, {LENGTH_DIGITS}) AS INTEGER)) AS TEXT)"
)
# A column with at most this share of distinct values is laid out from its dictionary.
DICTIONARY_SHARE = 0.25


def _text(values: pa.Array, blank_is_null: bool = False) -> _Layout:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        raise TypeError(f"packed text must be a string array, not {values.type}")
    values = pc.fill_null(values, "")
    longest = pc.max(pc.binary_length(values)).as_py() or 0
    if longest >= 10**LENGTH_DIGITS:
        raise ValueError(f"a text of {longest} bytes is longer than a packed field holds")
    encoded = pc.dictionary_encode(values)
    if len(encoded.dictionary) <= max(1, DICTIONARY_SHARE * len(values)):
        texts = [s.encode() for s in encoded.dictionary.to_pylist()] or [b""]
        table = _table(texts)
        lengths = _LENGTHS.take(np.fromiter(map(len, texts), np.int64, len(texts)))
        indices = encoded.indices.to_numpy(zero_copy_only=False)

        def fill(parts: dict[str, np.ndarray]) -> None:
            parts["length"][:] = lengths.take(indices)
            parts["bytes"][:] = table.take(indices)

        width = table.dtype.itemsize
    else:
        fill, width = _unique_text(values)
    parts = {"length": (f"S{LENGTH_DIGITS}", 0), "bytes": (f"S{width}", LENGTH_DIGITS)}
    template = f"nullif({_TEXT}, '')" if blank_is_null else _TEXT
    return _Layout(LENGTH_DIGITS + width, template, parts, fill)


def _unique_text(values: pa.Array) -> tuple[Callable[[dict[str, np.ndarray]], None], int]:
    """Values mostly distinct (ids): their bytes gathered from Arrow's buffers."""
    kind = np.int64 if pa.types.is_large_string(values.type) else np.int32
    count = len(values)
    starts = np.frombuffer(values.buffers()[1], dtype=kind)[values.offset :][: count + 1]
    data = values.buffers()[2]
    data = (
        np.frombuffer(data, np.uint8) if data is not None and len(data) else np.zeros(1, np.uint8)
    )
    lengths = np.diff(starts)
    width = max(1, int(lengths.max()) if count else 0)

    def fill(parts: dict[str, np.ndarray]) -> None:
        parts["length"][:] = _LENGTHS.take(lengths)
        at = np.minimum(starts[:-1, None] + np.arange(width), len(data) - 1)
        gathered = data.take(at)
        gathered[np.arange(width) >= lengths[:, None]] = 0
        parts["bytes"][:] = gathered.view(f"S{width}").ravel()

    return fill, width


_LAYOUTS: dict[Kind, Callable[..., _Layout]] = {
    Kind.TEXT: _text,
    Kind.TEXT_OR_NULL: lambda values: _text(values, blank_is_null=True),
    Kind.TIME: _time,
    Kind.FLAG: _flag,
    Kind.INTEGER: _integer,
}
