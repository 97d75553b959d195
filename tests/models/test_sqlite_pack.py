"""Rows packed into one blob come back out of SQLite exactly as bound one by one."""

from __future__ import annotations

import sqlite3

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.sqlite_pack import Kind, pack


def _database(rows: int) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE seq (i INTEGER PRIMARY KEY)")
    db.executemany("INSERT INTO seq VALUES (?)", [(i,) for i in range(rows)])
    return db


def _expected(kind: Kind, value):
    """What one-by-one binding stores (the importer's former path)."""
    if kind is Kind.TIME:
        if np.isnat(value):
            return None
        return str(value.astype("datetime64[s]")).replace("T", " ") + ".000000"
    if kind is Kind.FLAG:
        return None if value < 0 else int(value)
    if kind is Kind.INTEGER:
        return int(value)
    if kind is Kind.TEXT_OR_NULL:
        return value or None
    return value


def _unpacked(columns) -> list[tuple]:
    packed = pack(columns)
    db = _database(max(packed.rows, 1))
    return db.execute(packed.select("seq"), packed.params).fetchall()


def _rows(columns) -> list[tuple]:
    n = next(len(v) for k, v in columns if k is not Kind.CONSTANT)
    out = []
    for i in range(n):
        row = []
        for kind, values in columns:
            if kind is Kind.CONSTANT:
                row.append(values)
            elif isinstance(values, pa.Array | pa.ChunkedArray):
                row.append(_expected(kind, values[i].as_py() or ""))
            else:
                row.append(_expected(kind, values[i]))
        out.append(tuple(row))
    return out


def test_every_kind_round_trips_with_unicode_blanks_and_missing_values():
    times = np.array(
        ["2025-01-02T00:02:00", "NaT", "2025-12-31T23:59:59", "1999-12-31T07:05:09"],
        dtype="datetime64[s]",
    )
    columns = [
        (Kind.TEXT, pa.array(["HS-1", "HS-22", "Đ-ấ/ộ", ""])),
        (Kind.TEXT_OR_NULL, pa.array(["Nguyễn Thị Ánh", "", "x ", None])),
        (Kind.TEXT, pa.array(["online"] * 4)),
        (Kind.TIME, times),
        (Kind.TIME, np.array(["NaT"] * 4, dtype="datetime64[s]")),
        (Kind.FLAG, np.array([1, 0, -1, 1], dtype=np.int8)),
        (Kind.INTEGER, np.array([0, 12, 3, 0])),
        (Kind.CONSTANT, "2026-11-29 08:00:00.000000"),
    ]
    assert _unpacked(columns) == _rows(columns)
    # A date outside this century's table (made for the chunk) and the year 2100.
    far = np.array(["2100-01-01T00:00:00", "1970-01-01T00:00:01"], dtype="datetime64[s]")
    assert _unpacked([(Kind.TIME, far)]) == [
        ("2100-01-01 00:00:00.000000",),
        ("1970-01-01 00:00:01.000000",),
    ]


def test_sliced_and_chunked_arrays_and_mostly_distinct_text():
    ids = pa.array([f"HS-{i}" for i in range(50)] + ["Mã-số-dài-" + "ư" * 40])
    sliced = ids.slice(7, 30)  # an Arrow array with an offset
    chunked = pa.chunked_array([ids.slice(0, 10), ids.slice(10, 20)])
    assert _unpacked([(Kind.TEXT, sliced)]) == [(f"HS-{i}",) for i in range(7, 37)]
    assert _unpacked([(Kind.TEXT, chunked)]) == [(f"HS-{i}",) for i in range(30)]
    assert _unpacked([(Kind.TEXT, ids)])[-1] == ("Mã-số-dài-" + "ư" * 40,)


def test_refuses_what_it_cannot_hold():
    with pytest.raises(ValueError, match="never negative"):
        pack([(Kind.INTEGER, np.array([1, -1]))])
    with pytest.raises(ValueError, match="longer than a packed field"):
        pack([(Kind.TEXT, pa.array(["x" * 10_000]))])
    with pytest.raises(TypeError, match="string array"):
        pack([(Kind.TEXT, pa.array([1, 2]))])


def test_the_statement_is_the_same_for_every_chunk():
    """Widths are parameters: the driver prepares one statement for the whole import."""
    a = pack([(Kind.TEXT, pa.array(["a", "bb"])), (Kind.INTEGER, np.array([1, 2]))])
    b = pack([(Kind.TEXT, pa.array(["long text", "c"])), (Kind.INTEGER, np.array([1000]))])
    assert a.select("seq") == b.select("seq")
    assert a.width != b.width


_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=500
)  # a packed text holds up to 9,999 bytes


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            _text,
            _text,
            st.integers(-1, 1),
            st.integers(0, 10**12),
            st.one_of(st.none(), st.integers(946_684_800, 4_102_444_799)),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_any_rows_round_trip(rows):
    ids, handlers, flags, counts, stamps = zip(*rows, strict=True)
    times = np.array(
        [np.datetime64("NaT") if s is None else np.datetime64(s, "s") for s in stamps],
        dtype="datetime64[s]",
    )
    columns = [
        (Kind.TEXT, pa.array(ids)),
        (Kind.TEXT_OR_NULL, pa.array(handlers)),
        (Kind.FLAG, np.array(flags, dtype=np.int8)),
        (Kind.INTEGER, np.array(counts)),
        (Kind.TIME, times),
    ]
    assert _unpacked(columns) == _rows(columns)


def test_a_chunk_without_rows_selects_none():
    columns = [
        (Kind.TEXT, pa.array([], pa.string())),
        (Kind.TIME, np.array([], dtype="datetime64[s]")),
        (Kind.CONSTANT, "x"),
    ]
    assert _unpacked(columns) == []
