"""Reading a decision (quyết định) that issues a plan: its text, and its tables when it has them.

Provinces and ministries publish their decisions as PDF and as Word files; `read_decision`
reads plain text (UTF-8, one paragraph or table cell per line, as the seed decision
`plans/sources/qd-384-2025-nghe-an.txt` is) and `.docx` (with python-docx). A `.docx` keeps
its tables: the plan's appendix table (the one whose header names the work and its timing)
comes back as rows of cells, so no cell boundary has to be guessed; any other table (the
letterhead, the signature block) is read as lines, cell by cell.

Reading is the only I/O here; what the text says is worked out by `deadlines.draft`.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from deadlines.rules import fold

TEXT_SUFFIXES = ("", ".txt", ".text")


class DecisionError(ValueError):
    """A decision file that cannot be read, with what to do about it (Vietnamese)."""


@dataclass(frozen=True)
class Table:
    """A table as its grid: one tuple of cell texts per row, a merged cell repeated in every
    column it spans; a cell's paragraphs are joined by newlines."""

    rows: tuple[tuple[str, ...], ...]
    merged: tuple[tuple[bool, ...], ...]  # True where a cell continues the one on its left


@dataclass(frozen=True)
class Decision:
    """A decision's words: `lines` in reading order, and the plan tables of a .docx
    (`tables`), the i-th of which stood just before `lines[table_lines[i]]`."""

    path: str
    lines: tuple[str, ...]
    tables: tuple[Table, ...] = ()
    table_lines: tuple[int, ...] = ()


def read_decision(path: str | Path) -> Decision:
    """The decision at `path` (.txt in UTF-8, or .docx); `DecisionError` if unreadable."""
    path = Path(path)
    if not path.is_file():
        raise DecisionError(f"{path}: không tìm thấy tệp quyết định.")
    suffix = path.suffix.lower()
    if suffix == ".docx":
        return _read_docx(path)
    if suffix not in TEXT_SUFFIXES:
        raise DecisionError(
            f"{path}: chỉ đọc được văn bản .txt (UTF-8) và .docx; hãy lưu quyết định thành "
            ".docx (Word) hoặc chép nội dung ra tệp .txt."
        )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DecisionError(
            f"{path}: tệp không phải văn bản UTF-8; hãy lưu lại với bảng mã UTF-8 hoặc dùng .docx."
        ) from None
    return Decision(str(path), tuple(line.rstrip("\r") for line in text.split("\n")))


def is_plan_table_header(cells: list[str]) -> bool:
    """True if a table's first rows name the work and its timing ("Nội dung", "Thời gian")."""
    words = fold(" ".join(cells))
    return bool(re.search(r"noi dung|nhiem vu", words)) and bool(
        re.search(r"thoi gian|thoi han|tien do", words)
    )


def _read_docx(path: Path) -> Decision:
    from docx import Document
    from docx.opc.exceptions import PackageNotFoundError
    from docx.table import Table as DocxTable

    try:
        document = Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise DecisionError(f"{path}: không đọc được tệp .docx ({exc}).") from None
    lines: list[str] = []
    tables: list[Table] = []
    table_lines: list[int] = []
    for block in document.iter_inner_content():
        if not isinstance(block, DocxTable):
            lines.extend(block.text.split("\n"))
            continue
        table = _grid(block)
        header = [cell for row in table.rows[:3] for cell in row]
        if is_plan_table_header(header):
            tables.append(table)
            table_lines.append(len(lines))
            continue
        for row, merged in zip(table.rows, table.merged, strict=True):
            for cell, continued in zip(row, merged, strict=True):
                if not continued:
                    lines.extend(line for line in cell.split("\n") if line.strip())
    return Decision(str(path), tuple(lines), tuple(tables), tuple(table_lines))


def _grid(table) -> Table:
    rows, merged = [], []
    for row in table.rows:
        cells = row.cells
        rows.append(tuple(cell.text for cell in cells))
        merged.append(tuple(i > 0 and cells[i]._tc is cells[i - 1]._tc for i in range(len(cells))))
    return Table(tuple(rows), tuple(merged))
