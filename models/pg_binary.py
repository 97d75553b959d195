"""A chunk of rows in PostgreSQL's binary COPY format, built with numpy and Arrow.

PostgreSQL parses a timestamp written as text in about half a microsecond; a dossier has
twelve, and a COPY of our rows as CSV spent most of its time there (measured on a million
dossiers into a table without keys: 5.7–7.0 s as CSV, 2.6 s in binary). In the binary
format a timestamp is its microseconds since 2000-01-01 as a big-endian int64, a boolean
one byte, an integer four or eight, a text its UTF-8 bytes; every field is preceded by
its length (-1 for NULL), every row by its number of fields.

Each column's fields are built for the whole chunk at once (numpy's big-endian records,
Arrow's binary arrays) and Arrow joins them row by row: no Python object per value. The
encoder of a column follows the type the table declares, so a column
declared `bigint` gets eight bytes and one declared `integer` four (`copy_columns`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
TRAILER = b"\xff\xff"
_EPOCH_2000 = np.datetime64("2000-01-01T00:00:00", "us")


def copy_columns(fetch, table: str, columns: tuple[str, ...]) -> tuple[tuple[str, ...], list[str]]:
    """`columns` in the order to COPY them — the fixed-size ones first, the texts last,
    so that a row's fixed-size fields make one record (`_record`) — and the type `table`
    declares for each (temporary tables included)."""
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
    unknown = sorted({found[c] for c in columns} - set(_FIELDS))
    if unknown:
        raise TypeError(f"no binary COPY encoder for {', '.join(unknown)} (table {table})")
    ordered = tuple(sorted(columns, key=lambda c: found[c] in _TEXT_TYPES))
    return ordered, [found[c] for c in ordered]


def encode(types: list[str], columns: list) -> pa.Buffer:
    """The rows of `columns` (one array per column, as `types` declare them; a NULL
    text as None) as binary COPY tuples."""
    rows = len(columns[0])
    pieces: list[pa.Array] = []
    run: list[tuple[str, np.ndarray, np.ndarray | None]] = [
        (">i2", np.full(rows, len(columns), dtype=np.int16), None)
    ]
    for kind, values in zip(types, columns, strict=True):
        fields = _FIELDS[kind](values)
        if len(fields) == 2:  # a text: its length ends the run, its bytes follow
            lengths, data = fields
            run.append((">i4", lengths, None))
            pieces.append(_record(run, rows))
            pieces.append(data)
            run = []
            continue
        value_type, value, missing = fields
        length = np.full(rows, np.dtype(value_type).itemsize, dtype=np.int32)
        if missing is not None and missing.any():
            length[missing] = -1
        else:
            missing = None
        run += [(">i4", length, None), (value_type, value, missing)]
    if run:
        pieces.append(_record(run, rows))
    joined = pc.binary_join_element_wise(*pieces, pa.scalar(b"", pa.binary()))
    starts = np.frombuffer(joined.buffers()[1], dtype=np.int32)
    begin, end = int(starts[joined.offset]), int(starts[joined.offset + rows])
    return joined.buffers()[2].slice(begin, end - begin)


def _record(run: list[tuple[str, np.ndarray, np.ndarray | None]], rows: int) -> pa.Array:
    """A run of fixed-size fields as one packed big-endian record per row, without the
    bytes of its NULL values (their length, -1, stays)."""
    records = np.empty(rows, dtype=[(f"f{i}", kind) for i, (kind, _, _) in enumerate(run)])
    for i, (_, values, _) in enumerate(run):
        records[f"f{i}"] = values
    matrix = records.view(np.uint8).reshape(rows, records.dtype.itemsize)
    if all(missing is None for _, _, missing in run):
        return _fixed(matrix)
    keep = np.ones(matrix.shape, dtype=bool)
    for i, (_, _, missing) in enumerate(run):
        if missing is not None:
            at = records.dtype.fields[f"f{i}"][1]
            keep[missing, at : at + records.dtype[f"f{i}"].itemsize] = False
    return _ragged(matrix, keep)


def _fixed(matrix: np.ndarray) -> pa.Array:
    """Each row of a byte matrix as one binary value."""
    rows, width = matrix.shape
    offsets = pa.py_buffer(np.arange(0, (rows + 1) * width, width, dtype=np.int32))
    data = pa.py_buffer(np.ascontiguousarray(matrix))
    return pa.Array.from_buffers(pa.binary(), rows, [None, offsets, data])


def _ragged(matrix: np.ndarray, keep: np.ndarray) -> pa.Array:
    """Each row of a byte matrix, the bytes `keep` marks, as one binary value."""
    rows = matrix.shape[0]
    offsets = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    return pa.Array.from_buffers(
        pa.binary(), rows, [None, pa.py_buffer(offsets), pa.py_buffer(matrix[keep])]
    )


# A column's fields: (numpy big-endian type, values, missing or None) for a fixed-size
# type, or (lengths, bytes) for a text.


def _timestamps(values):
    stamps = np.asarray(values).astype("datetime64[us]")
    missing = np.isnat(stamps)
    micros = np.where(missing, 0, (stamps - _EPOCH_2000).astype(np.int64))
    return ">i8", micros, missing


def _booleans(values):
    """Booleans, or flags (1, 0, -1 for none)."""
    flags = np.asarray(values).astype(np.int8)
    return "u1", flags.clip(0, 1).astype(np.uint8), flags < 0


def _integers(values):
    return ">i4", np.asarray(values, dtype=np.int64), None


def _bigints(values):
    return ">i8", np.asarray(values, dtype=np.int64), None


def _texts(values):
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    missing = values.is_null().to_numpy(zero_copy_only=False)
    data = pc.cast(pc.fill_null(values, ""), pa.binary())
    lengths = pc.binary_length(data).to_numpy(zero_copy_only=False).astype(np.int32)
    return np.where(missing, -1, lengths), data


_TEXT_TYPES = ("character varying", "text")
_FIELDS: dict[str, Callable] = {
    "timestamp without time zone": _timestamps,
    "boolean": _booleans,
    "integer": _integers,
    "bigint": _bigints,
    **{kind: _texts for kind in _TEXT_TYPES},
}
