"""Rows encoded in PostgreSQL's binary COPY format are stored exactly as given."""

from __future__ import annotations

import os
from datetime import datetime

import numpy as np
import psycopg
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import make_url

from models import pg_binary
from tests.conftest import POSTGRES_ENV

# PostgreSQL's own COPY is what these tests check against; `.ci/run` points them at the
# machine's server (every other PostgreSQL test is parametrised the same way).
pytestmark = pytest.mark.skipif(
    not os.environ.get(POSTGRES_ENV),
    reason=f"needs a PostgreSQL server: set {POSTGRES_ENV} (.ci/run sets it)",
)

TABLE = (
    "CREATE TEMP TABLE t (n bigint NOT NULL, c integer, at timestamp, flag boolean, "
    "code varchar(64) NOT NULL, note text)"
)
COLUMNS = ("n", "c", "at", "flag", "code", "note")


@pytest.fixture(scope="module")
def connection():
    url = make_url(os.environ[POSTGRES_ENV])
    with psycopg.connect(
        host=url.host, port=url.port or 5432, user=url.username, dbname=url.database
    ) as conn:
        yield conn


def _stored(conn, columns: tuple[str, ...], values: list) -> list[tuple]:
    try:
        return _copied(conn, columns, values)
    finally:
        conn.rollback()


def _copied(conn, columns: tuple[str, ...], values: list) -> list[tuple]:
    conn.execute("DROP TABLE IF EXISTS t")
    conn.execute(TABLE)

    def fetch(sql, params=None):
        return conn.execute(sql, params).fetchall()

    order, types = pg_binary.copy_columns(fetch, "t", columns)
    data = pg_binary.encode(types, [values[columns.index(c)] for c in order])
    with conn.cursor().copy(f"COPY t ({', '.join(order)}) FROM STDIN (FORMAT binary)") as copy:
        copy.write(pg_binary.HEADER)
        copy.write(memoryview(data))
        copy.write(pg_binary.TRAILER)
    return fetch(f"SELECT {', '.join(columns)} FROM t ORDER BY n")


def test_every_type_with_nulls_unicode_and_empty_text(connection):
    at = np.array(["2025-01-02T00:02:00", "NaT", "1999-12-31T23:59:59"], dtype="datetime64[s]")
    rows = _stored(
        connection,
        COLUMNS,
        [
            np.array([3, 1, 2]),
            np.array([0, 12, 2**31 - 1]),
            at,
            np.array([1, -1, 0], dtype=np.int8),
            pa.array(["HS-1", "", "Đ-ấ/ộ"]),
            pa.array(["Nguyễn Thị Ánh", None, " x "]),
        ],
    )
    assert rows == [
        (1, 12, None, None, "", None),
        (2, 2**31 - 1, datetime(1999, 12, 31, 23, 59, 59), False, "Đ-ấ/ộ", " x "),
        (3, 0, datetime(2025, 1, 2, 0, 2), True, "HS-1", "Nguyễn Thị Ánh"),
    ]


def test_fixed_size_columns_go_first_texts_last_with_their_declared_types(connection):
    connection.execute("DROP TABLE IF EXISTS t")
    connection.execute(TABLE)

    def fetch(sql, params=None):
        return connection.execute(sql, params).fetchall()

    assert pg_binary.copy_columns(fetch, "t", COLUMNS)[0] == COLUMNS
    assert pg_binary.copy_columns(fetch, "t", ("note", "at", "code", "n")) == (
        ("at", "n", "note", "code"),
        ["timestamp without time zone", "bigint", "text", "character varying"],
    )
    with pytest.raises(LookupError, match="no column nope"):
        pg_binary.copy_columns(fetch, "t", ("n", "nope"))
    connection.rollback()


_characters = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_text = st.text(_characters)
_code = st.text(_characters, max_size=64)  # the column is varchar(64)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 2**31 - 1),
            st.one_of(st.none(), st.integers(-2_208_988_800, 7_258_118_399)),  # 1900–2199
            st.integers(-1, 1),
            _code,
            st.one_of(st.none(), _text),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_any_rows_are_stored_as_given(connection, rows):
    counts, seconds, flags, codes, notes = zip(*rows, strict=True)
    at = np.array(
        [np.datetime64("NaT") if s is None else np.datetime64(s, "s") for s in seconds],
        dtype="datetime64[s]",
    )
    stored = _stored(
        connection,
        COLUMNS,
        [
            np.arange(len(rows)),
            np.array(counts),
            at,
            np.array(flags, dtype=np.int8),
            pa.array(codes),
            pa.array(notes, pa.string()),
        ],
    )
    expected = [
        (
            i,
            counts[i],
            None if seconds[i] is None else at[i].astype(datetime),
            None if flags[i] < 0 else bool(flags[i]),
            codes[i],
            notes[i],
        )
        for i in range(len(rows))
    ]
    assert stored == expected
