"""Reading an export in chunks of columns, with the file line of every row.

A CSV goes through Arrow's streaming reader (columns of text, parsed in C on a thread
pool, about a megabyte at a time); JSON lines and any CSV that Arrow would read
differently from the standard library's `csv.DictReader` (a quoted line break, a blank or
short line, a repeated header name, bytes that are not UTF-8) go through the standard
library, chunk by chunk. Both give the same chunks: what the importer checks and writes
never depends on which reader ran, only how fast it ran. Memory stays a few chunks
whatever the file's size.
"""

from __future__ import annotations

import csv
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

CHUNK_ROWS = 10_000  # rows per chunk for the standard-library readers
BLOCK_BYTES = 1 << 19  # Arrow's block: ~4k export rows; it reads a few dozen ahead
# Exactly what str.strip() removes: the characters for which str.isspace() is true.
WHITESPACE = "".join(chr(c) for c in range(0x3001) if chr(c).isspace())


@dataclass
class Chunk:
    """Consecutive rows of an export: their file lines and their cells as text."""

    lines: np.ndarray  # int64, the file line of each row (its last line for a CSV record)
    cells: dict[str, pa.Array]  # column -> string array, "" for a blank or absent cell
    problems: list[tuple[int, str]]  # (line, message) of lines that are no record at all

    def __len__(self) -> int:
        return len(self.lines)


class ReadAgain(Exception):
    """Arrow's reading of this CSV may differ from the standard library's: read it again
    with the standard library."""


@dataclass(frozen=True)
class Header:
    names: list[str]  # as written (for the lookup of a column)
    stripped: list[str]  # as checked


def is_json_lines(path: Path) -> bool:
    return path.suffix.lower() in (".jsonl", ".ndjson")


def csv_header(path: Path) -> Header:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        names = next(csv.reader(handle), [])
    return Header(names, [n.strip() for n in names if n.strip()])


def read_chunks(
    path: Path, columns: tuple[str, ...], *, reader: str = "arrow", translate=None
) -> Iterator[Chunk]:
    """The export's rows as chunks holding `columns` (absent ones blank; a CSV's header
    names are matched stripped). `reader`: "arrow" (CSV; raises ReadAgain where only the
    standard library reads it right) or "stdlib". `translate`: a JSON record into
    `columns`, as text."""
    if is_json_lines(path):
        yield from _json_chunks(path, columns, translate)
    elif reader == "arrow":
        yield from _arrow_chunks(path, columns)
    else:
        yield from _stdlib_chunks(path, columns)


# ------------------------------------------------------------------------- Arrow


def _physical_lines(path: Path) -> int:
    """Lines of the file up to its last non-blank one, as the csv module numbers them
    (\\n, \\r and \\r\\n each end a line)."""
    ends = 0
    carry_cr = False
    suffix = b""  # the file's trailing line ends
    content = False
    with path.open("rb") as handle:
        while block := handle.read(16 << 20):
            ends += block.count(b"\n")
            returns = block.count(b"\r")
            if returns:
                ends += returns - block.count(b"\r\n")
            if carry_cr and block[:1] == b"\n":
                ends -= 1
            carry_cr = block[-1:] == b"\r"
            body = block.rstrip(b"\r\n")
            if body:
                content = True
                suffix = block[len(body) :]
            else:
                suffix += block
    if not content:
        return 0
    trailing = suffix.count(b"\n") + suffix.count(b"\r") - suffix.count(b"\r\n")
    return ends - trailing + 1


def _arrow_chunks(path: Path, columns: tuple[str, ...]) -> Iterator[Chunk]:
    header = csv_header(path)
    if len(set(header.names)) != len(header.names):
        raise ReadAgain
    irregular = threading.Event()

    def on_invalid_row(_row) -> str:
        irregular.set()
        return "skip"

    try:
        reader = pa_csv.open_csv(
            path,
            read_options=pa_csv.ReadOptions(block_size=BLOCK_BYTES),
            parse_options=pa_csv.ParseOptions(
                newlines_in_values=True, invalid_row_handler=on_invalid_row
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types={name: pa.string() for name in header.names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise ReadAgain from exc
    names = reader.schema.names
    first = 2
    while True:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except pa.ArrowInvalid as exc:  # e.g. bytes that are not UTF-8
            raise ReadAgain from exc
        if irregular.is_set():
            raise ReadAgain
        n = batch.num_rows
        cells = {}
        by_name = {
            name.strip(): values
            for name, values in zip(names, batch.columns, strict=True)
            if name.strip()
        }
        for column in columns:
            values = by_name.get(column)
            cells[column] = _strip(values) if values is not None else _blank(n)
        yield Chunk(np.arange(first, first + n, dtype=np.int64), cells, [])
        first += n
    # Every physical line one record: otherwise a quoted line break or a blank line
    # moved the lines, and only the csv module numbers them as people count them.
    if first - 1 != _physical_lines(path):
        raise ReadAgain


def _blank(n: int) -> pa.Array:
    return pa.repeat(pa.scalar("", pa.string()), n)


_ASCII_SPACES = [9, 10, 11, 12, 13, 28, 29, 30, 31, 32]
# First and last bytes of the UTF-8 of every character str.strip() removes.
_MAY_START = np.zeros(256, dtype=bool)
_MAY_START[[*_ASCII_SPACES, 0xC2, 0xE1, 0xE2, 0xE3]] = True
_MAY_END = np.zeros(256, dtype=bool)
_MAY_END[[*_ASCII_SPACES, *range(0x80, 0x8B), 0x85, 0x9F, 0xA0, 0xA8, 0xA9, 0xAF]] = True


def _strip(values: pa.Array) -> pa.Array:
    """str.strip() of every cell, at Arrow speed; skipped when no cell starts or ends
    with a byte of a character it would remove."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    data = values.buffers()[2]
    if len(values) == 0 or data is None or len(data) == 0:
        return values
    offsets = np.frombuffer(values.buffers()[1], dtype=np.int32)[
        values.offset : values.offset + len(values) + 1
    ]
    raw = np.frombuffer(data, dtype=np.uint8)
    # An empty cell reads its neighbour's byte: at worst a needless trim.
    starts = raw[np.minimum(offsets[:-1], len(raw) - 1)]
    ends = raw[np.maximum(offsets[1:] - 1, 0)]
    if not (_MAY_START[starts].any() or _MAY_END[ends].any()):
        return values
    return pc.utf8_trim(values, characters=WHITESPACE)


# ------------------------------------------------------------- standard library


def _stdlib_chunks(path: Path, columns: tuple[str, ...]) -> Iterator[Chunk]:
    """csv.reader's reading, in chunks: a short row leaves its last cells blank, the cells
    past the header are ignored, an empty line is skipped; a repeated header name takes
    its first cell."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        try:
            names = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError:
            yield Chunk(np.zeros(0, np.int64), {c: _blank(0) for c in columns}, [(1, _NOT_UTF8)])
            return
        # A repeated header name: its first column, as the importer always took.
        position = {name.strip(): i for i, name in reversed(list(enumerate(names))) if name.strip()}
        wanted = [(column, position.get(column)) for column in columns]
        while True:
            lines: list[int] = []
            rows: list[list[str]] = []
            problems: list[tuple[int, str]] = []
            try:
                for row in islice(reader, CHUNK_ROWS):
                    if not row:
                        continue
                    lines.append(reader.line_num)
                    rows.append(row)
            except UnicodeDecodeError:
                problems.append((reader.line_num + 1, _NOT_UTF8))
            except csv.Error as exc:
                problems.append((reader.line_num, f"CSV không hợp lệ: {exc}"))
            if not rows and not problems:
                return
            cells = {}
            for column, at in wanted:
                if at is None:
                    cells[column] = _blank(len(rows))
                else:
                    cells[column] = pa.array(
                        [row[at].strip() if at < len(row) else "" for row in rows], pa.string()
                    )
            yield Chunk(np.array(lines, dtype=np.int64), cells, problems)
            if problems:
                return


_NOT_UTF8 = "không đọc được: tệp phải là văn bản UTF-8"


# -------------------------------------------------------------------- JSON lines


def _json_chunks(path: Path, columns: tuple[str, ...], translate=None) -> Iterator[Chunk]:
    """One JSON object per line; a value is its text (None blank), or what `translate`
    makes of the record."""
    with path.open(encoding="utf-8") as handle:
        number = 0
        ended = False
        while not ended:
            lines: list[int] = []
            records: list[dict] = []
            problems: list[tuple[int, str]] = []
            read = 0
            try:
                for line in islice(handle, CHUNK_ROWS):
                    number += 1
                    read += 1
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as exc:
                        problems.append((number, f"JSON không hợp lệ: {exc.msg}"))
                        continue
                    if not isinstance(record, dict):
                        problems.append((number, "mỗi dòng phải là một đối tượng JSON"))
                        continue
                    lines.append(number)
                    records.append(translate(record) if translate else record)
                ended = read < CHUNK_ROWS
            except UnicodeDecodeError:
                problems.append((number + 1, _NOT_UTF8))
                ended = True
            if not lines and not problems:
                return
            cells = {
                column: pa.array(
                    ["" if (v := r.get(column)) is None else str(v) for r in records], pa.string()
                )
                for column in columns
            }
            yield Chunk(np.array(lines, dtype=np.int64), cells, problems)
