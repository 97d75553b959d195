"""The columns of a one-stop export, and column-mapping files for exports that name them
otherwise (a province's one-stop software, the national portal's dossier sync).

dunghan's own column names are the default. A mapping file (`dunghan dossiers import
--columns mapping.yaml`) says, for each dunghan column, which column of the export holds
it, how to translate coded values (e.g. channel "2" → online) and the time format; a
JSON-lines export may carry its supplement requests as a list per dossier. Every entry can
cite where its field name comes from and whether that was confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from deadlines.datafile import FieldReader, LineDict, load_yaml

CHANNELS = ("online", "direct", "postal")
FLAG_COLUMNS = ("digitized", "e_result", "paid_online")
DOSSIER_COLUMNS = (
    "dossier_id",
    "procedure_code",
    "agency_code",
    "channel",
    "received_at",
    "completed_at",
    "supplement_requested_at",
    "supplement_received_at",
    "apology_at",
    "apology_new_due",
    "digitized",
    "e_result",
    "paid_online",
    "handler",
    "supplement_requests",
    "closed_at",
    "appointment_at",
)
TIME_COLUMNS = tuple(c for c in DOSSIER_COLUMNS if c.endswith("_at") or c == "apology_new_due")
# A file may leave these out altogether (blank everywhere).
OPTIONAL_COLUMNS = frozenset({"handler", "supplement_requests", "closed_at", "appointment_at"})
VALUE_DOMAINS = {
    "channel": CHANNELS,
    "digitized": ("0", "1"),
    "e_result": ("0", "1"),
    "paid_online": ("0", "1", ""),
}
SUPPLEMENT_COLUMNS = ("supplement_requested_at", "supplement_received_at", "supplement_requests")


@dataclass(frozen=True)
class MappedColumn:
    column: str  # dunghan's name
    source_name: str  # the export's name
    line: int  # in the mapping file
    source: str = ""
    confirmed: bool = True


@dataclass(frozen=True)
class SupplementList:
    """A JSON-lines export's list of supplement requests per dossier."""

    list_name: str
    requested_at: str
    received_at: str
    line: int


@dataclass(frozen=True)
class ColumnMapping:
    path: str
    name: str
    columns: dict[str, MappedColumn]
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    time_format: str | None = None
    supplements: SupplementList | None = None

    @classmethod
    def load(cls, path: str | Path) -> ColumnMapping:
        return _MappingReader(str(path)).read()

    def source_name(self, column: str) -> str:
        mapped = self.columns.get(column)
        return mapped.source_name if mapped else column

    def where(self, column: str) -> str:
        """'received_at (NgayTiepNhan theo mapping.yaml, dòng 7)' for error messages."""
        mapped = self.columns.get(column)
        if mapped is None:
            return column
        return f"{column} ({mapped.source_name} theo {self.path}, dòng {mapped.line})"

    def missing_columns(self, header: list[str], required: tuple[str, ...]) -> list[str]:
        """Required dunghan columns, and mapped source columns, absent from the header."""
        present = set(header)
        missing = []
        for column in DOSSIER_COLUMNS:
            name = self.source_name(column)
            if name in present:
                continue
            if self.supplements and column in SUPPLEMENT_COLUMNS:
                continue
            if column in required or column in self.columns:
                missing.append(
                    f"thiếu cột '{name}' (cột {column} của dunghan theo tệp ánh xạ "
                    f"{self.path}, dòng {self.columns[column].line})"
                    if column in self.columns
                    else f"thiếu cột '{name}'"
                )
        return missing

    def translate(self, record: dict[str, Any]) -> dict[str, str]:
        """One export record (CSV cells or a JSON object) in dunghan's columns, as text."""
        out: dict[str, str] = {}
        for column in DOSSIER_COLUMNS:
            value = record.get(self.source_name(column))
            text = "" if value is None else str(value).strip()
            coded = self.values.get(column)
            if coded is not None and text in coded:
                text = coded[text]
            out[column] = text
        if self.supplements is not None:
            out.update(self._supplements(record.get(self.supplements.list_name)))
        return out

    def _supplements(self, requests: Any) -> dict[str, str]:
        """The last request of the list (the one the legal clock restarts after), and how
        many there were."""
        spec = self.supplements
        assert spec is not None
        if not requests:
            return {c: "" for c in SUPPLEMENT_COLUMNS}
        if not isinstance(requests, list) or not all(isinstance(r, dict) for r in requests):
            return {
                "supplement_requested_at": "",
                "supplement_received_at": "",
                "supplement_requests": f"<{spec.list_name} không phải danh sách>",
            }

        def text(value: Any) -> str:
            return "" if value is None else str(value).strip()

        last = max(requests, key=lambda r: text(r.get(spec.requested_at)))
        return {
            "supplement_requested_at": text(last.get(spec.requested_at)),
            "supplement_received_at": text(last.get(spec.received_at)),
            "supplement_requests": str(len(requests)),
        }


IDENTITY = ColumnMapping(path="", name="dunghan", columns={})

_TOP = {"name", "source", "time_format", "columns", "values", "supplements"}
_COLUMN = {"from", "source", "confirmed", "note"}
_SUPPLEMENTS = {"list", "requested_at", "received_at", "source", "confirmed", "note"}


class _MappingReader(FieldReader):
    def read(self) -> ColumnMapping:
        data = self._top_level(load_yaml(self.path), _TOP, "columns")
        name = self._text(data, "name", "tệp ánh xạ", required=False) or Path(self.path).stem
        raw_columns = data.get("columns")
        columns: dict[str, MappedColumn] = {}
        if not isinstance(raw_columns, LineDict):
            self.problems.add(
                data.line_of("columns"), "thiếu bảng 'columns' (cột dunghan: cột tệp)"
            )
            raw_columns = {}
        used: dict[str, str] = {}
        for column, spec in raw_columns.items():
            line = raw_columns.line_of(column)
            if column not in DOSSIER_COLUMNS:
                self.problems.add(
                    line,
                    f"cột không biết {column!r}: cột của dunghan là {', '.join(DOSSIER_COLUMNS)}",
                )
                continue
            mapped = self._column(column, spec, line)
            if mapped is None:
                continue
            if mapped.source_name in used:
                self.problems.add(
                    line,
                    f"cột tệp {mapped.source_name!r} đã được dùng cho {used[mapped.source_name]!r}",
                )
            used[mapped.source_name] = column
            columns[column] = mapped
        values = self._values(data)
        time_format = self._time_format(data)
        supplements = self._supplement_list(data, columns)
        self.problems.raise_if_any()
        return ColumnMapping(self.path, name, columns, values, time_format, supplements)

    def _column(self, column: str, spec: Any, line: int) -> MappedColumn | None:
        if isinstance(spec, str) and spec.strip():
            return MappedColumn(column, spec.strip(), line)
        if not isinstance(spec, LineDict):
            self.problems.add(line, f"cột {column!r}: cần tên cột của tệp, hoặc bảng có 'from'")
            return None
        self._unknown_keys(spec, _COLUMN, f"cột {column!r}")
        source_name = self._text(spec, "from", f"cột {column!r}", required=True)
        confirmed = spec.get("confirmed", True)
        if not isinstance(confirmed, bool):
            self.problems.add(
                spec.line_of("confirmed"), f"cột {column!r}: 'confirmed' phải là true/false"
            )
        if source_name is None:
            return None
        return MappedColumn(
            column, source_name, line, str(spec.get("source") or ""), confirmed is not False
        )

    def _values(self, data: LineDict) -> dict[str, dict[str, str]]:
        raw = data.get("values")
        if raw is None:
            return {}
        if not isinstance(raw, LineDict):
            self.problems.add(data.line_of("values"), "'values' phải là bảng: cột → {mã: giá trị}")
            return {}
        values: dict[str, dict[str, str]] = {}
        for column, codes in raw.items():
            line = raw.line_of(column)
            if column not in VALUE_DOMAINS:
                self.problems.add(
                    line,
                    f"'values' chỉ dùng cho các cột {', '.join(VALUE_DOMAINS)} "
                    f"(không phải {column!r})",
                )
                continue
            if not isinstance(codes, dict):
                self.problems.add(line, f"'values' của {column!r} phải là bảng mã: giá trị")
                continue
            domain = VALUE_DOMAINS[column]
            table = {}
            for code, value in codes.items():
                value = "" if value is None else str(value)
                if value not in domain:
                    self.problems.add(
                        codes.line_of(str(code)) if isinstance(codes, LineDict) else line,
                        f"{column!r}: mã {code!r} dịch thành {value!r}, không thuộc "
                        + ", ".join(repr(d) for d in domain),
                    )
                table[str(code)] = value
            values[column] = table
        return values

    def _time_format(self, data: LineDict) -> str | None:
        fmt = data.get("time_format")
        if fmt is None:
            return None
        probe = datetime(2025, 7, 1, 13, 45, 30)
        try:
            if not isinstance(fmt, str) or datetime.strptime(probe.strftime(fmt), fmt) != probe:
                raise ValueError
        except ValueError:
            self.problems.add(
                data.line_of("time_format"),
                f"time_format {fmt!r} không đọc lại được ngày giờ (ví dụ hợp lệ: %Y%m%d%H%M%S)",
            )
            return None
        return fmt

    def _supplement_list(
        self, data: LineDict, columns: dict[str, MappedColumn]
    ) -> SupplementList | None:
        raw = data.get("supplements")
        if raw is None:
            return None
        if not isinstance(raw, LineDict):
            self.problems.add(data.line_of("supplements"), "'supplements' phải là một bảng")
            return None
        self._unknown_keys(raw, _SUPPLEMENTS, "supplements")
        names = [
            self._text(raw, key, "supplements", required=True)
            for key in ("list", "requested_at", "received_at")
        ]
        for column in SUPPLEMENT_COLUMNS:
            if column in columns:
                self.problems.add(
                    columns[column].line,
                    f"cột {column!r} đã lấy từ danh sách 'supplements'; bỏ dòng này",
                )
        if None in names:
            return None
        return SupplementList(names[0], names[1], names[2], raw.line)
