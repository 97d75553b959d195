"""A chunk of rows in PostgreSQL's binary COPY format, built with numpy and Arrow.

PostgreSQL parses a timestamp written as text in about half a microsecond; a dossier has
twelve, and a COPY of our rows as CSV spent most of its time there (measured on a million
dossiers into a table without keys: 5.7–7.0 s as CSV, 2.6 s in binary). In the binary
format a timestamp is its microseconds since 2000-01-01 as a big-endian int64, a boolean
one byte, an integer four or eight, a text its UTF-8 bytes; every field is preceded by
its length (-1 for NULL), every row by its number of fields.

Each column's fields are built for the whole chunk at once (numpy's big-endian records,
Arrow's binary arrays) and Arrow joins them row by row: no Python object per value. The
encoder of a column follows the type the table declares (`column_types`), so a column
declared `bigint` gets eight bytes and one declared `integer` four.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_EPOCH_2000 = np.datetime64("2000-01-01T00:00:00", "us")


def column_types(fetch, table: str, columns: tuple[str, ...]) -> list[str]:
    """The declared type of each of `columns` of `table` (temporary tables included)."""
    found = dict(
        fetch(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (table,),
        )
    )
    missing = [c for c in columns if c not in found]
    if missing:
        raise LookupError(f"table {table} has no column {', '.join(missing)}")
    unknown = sorted({found[c] for c in columns} - set(_ENCODERS))
    if unknown:
        raise TypeError(f"no binary COPY encoder for {', '.join(unknown)} (table {table})")
    return [found[c] for c in columns]


def encode(types: list[str], columns: list) -> pa.Buffer:
    """The rows of `columns` (one array per column, as `types` declare them; a blank
    text of a `text_or_null` column is given as None) as binary COPY tuples."""
    rows = len(columns[0])
    count = np.full(rows, len(columns), dtype=">i2").view(np.uint8).reshape(rows, 2)
    pieces = [_fixed(count)]
    for kind, values in zip(types, columns, strict=True):
        pieces.extend(_ENCODERS[kind](values, rows))
    joined = pc.binary_join_element_wise(*pieces, pa.scalar(b"", pa.binary()))
    starts = np.frombuffer(joined.buffers()[1], dtype=np.int32)
    begin, end = int(starts[joined.offset]), int(starts[joined.offset + rows])
    return joined.buffers()[2].slice(begin, end - begin)


def _fixed(matrix: np.ndarray) -> pa.Array:
    """Each row of a byte matrix as one binary value."""
    rows, width = matrix.shape
    offsets = pa.py_buffer(np.arange(0, (rows + 1) * width, width, dtype=np.int32))
    data = pa.py_buffer(np.ascontiguousarray(matrix))
    return pa.Array.from_buffers(pa.binary(), rows, [None, offsets, data])


def _ragged(matrix: np.ndarray, lengths: np.ndarray) -> pa.Array:
    """Each row of a byte matrix, its first `lengths` bytes, as one binary value."""
    rows, width = matrix.shape
    data = matrix[np.arange(width) < lengths[:, None]]
    offsets = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.Array.from_buffers(
        pa.binary(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )


def _number(kind: str, size: int) -> Callable[[np.ndarray, int], list[pa.Array]]:
    """Fixed-size values: a length and the big-endian value, or -1 for NULL (the
    missing values are a masked array, NaT or negative flags, by the encoder)."""

    def encode_values(values: np.ndarray, missing: np.ndarray | None, rows: int):
        records = np.empty(rows, dtype=[("length", ">i4"), ("value", kind)])
        records["value"] = values
        if missing is None or not missing.any():
            records["length"] = size
            return [_fixed(records.view(np.uint8).reshape(rows, 4 + size))]
        records["length"] = np.where(missing, -1, size)
        lengths = np.where(missing, 4, 4 + size)
        return [_ragged(records.view(np.uint8).reshape(rows, 4 + size), lengths)]

    return encode_values


_int4, _int8, _byte = _number(">i4", 4), _number(">i8", 8), _number("u1", 1)


def _timestamps(values, rows: int) -> list[pa.Array]:
    stamps = np.asarray(values).astype("datetime64[us]")
    missing = np.isnat(stamps)
    micros = np.where(missing, 0, (stamps - _EPOCH_2000).astype(np.int64))
    return _int8(micros, missing, rows)


def _booleans(values, rows: int) -> list[pa.Array]:
    """Booleans, or flags (1, 0, -1 for none)."""
    flags = np.asarray(values).astype(np.int8)
    return _byte(flags.clip(0, 1).astype(np.uint8), flags < 0, rows)


def _integers(values, rows: int) -> list[pa.Array]:
    return _int4(np.asarray(values, dtype=np.int64), None, rows)


def _bigints(values, rows: int) -> list[pa.Array]:
    return _int8(np.asarray(values, dtype=np.int64), None, rows)


def _texts(values, rows: int) -> list[pa.Array]:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    missing = values.is_null().to_numpy(zero_copy_only=False)
    data = pc.cast(pc.fill_null(values, ""), pa.binary())
    lengths = pc.binary_length(data).to_numpy(zero_copy_only=False).astype(np.int64)
    lengths = np.where(missing, -1, lengths).astype(">i4")
    return [_fixed(lengths.view(np.uint8).reshape(rows, 4)), data]


_ENCODERS: dict[str, Callable[..., list[pa.Array]]] = {
    "timestamp without time zone": _timestamps,
    "boolean": _booleans,
    "integer": _integers,
    "bigint": _bigints,
    "character varying": _texts,
    "text": _texts,
}
