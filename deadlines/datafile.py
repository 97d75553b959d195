"""Reading the project's YAML data files with line numbers, so every error can say where.

Every data file (calendar overrides, the plan, the agency registry, the escalation ladder)
is read through `load_yaml`. Mappings come back as `LineDict`: an ordinary dict that also
knows the line it started on, so a validator can report "file, line N: what is wrong".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml


class LineDict(dict):
    """A YAML mapping that remembers the (1-based) line where it starts."""

    line: int = 0
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        """The line of `key` if present, else the line of the mapping itself."""
        return self.key_lines.get(key, self.line)


class _LineLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans: only true/false, so `kind: off` stays a string."""


_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_LineLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _construct_line_dict(loader: _LineLoader, node: yaml.MappingNode) -> LineDict:
    mapping = LineDict(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {
        str(key_node.value): key_node.start_mark.line + 1 for key_node, _ in node.value
    }
    return mapping


def _construct_timestamp(loader: _LineLoader, node: yaml.ScalarNode):
    """A date-shaped but impossible value (2025-02-30) stays a string for the validator."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError:
        return loader.construct_scalar(node)


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_line_dict)
_LineLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a data file, with where it is."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        where = f"{self.path}, dòng {self.line}" if self.line else self.path
        return f"{where}: {self.message}"


class DataFileError(ValueError):
    """A data file is invalid. Carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class ProblemList:
    """Collects problems while validating a file, then raises them all at once."""

    path: str
    problems: list[Problem] = field(default_factory=list)

    def add(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.path, line, message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise DataFileError(self.problems)


class FieldReader:
    """Reads typed fields out of `LineDict`s, recording each problem with its line.

    The validators of the data files (registry, plan) build on it; `strip_text` says
    whether text fields are trimmed (a plan keeps its source's words verbatim).
    """

    strip_text = True

    def __init__(self, path: str):
        self.path = path
        self.problems = ProblemList(path)

    def _list(self, data: LineDict, key: str, *, required: bool) -> list[LineDict]:
        value = data.get(key)
        if value is None:
            if required:
                self.problems.add(data.line, f"thiếu mục {key!r}")
            return []
        if not isinstance(value, list):
            self.problems.add(data.line_of(key), f"mục {key!r} phải là một danh sách")
            return []
        items = [item for item in value if isinstance(item, LineDict)]
        if len(items) != len(value):
            self.problems.add(data.line_of(key), f"mỗi phần tử của {key!r} phải là một bảng")
        return items

    def _top_level(self, data: Any, allowed: set[str], expected: str) -> LineDict:
        """The file's top mapping; unknown top-level keys are problems. A file that is
        not a mapping at all stops the reading here."""
        if not isinstance(data, LineDict):
            self.problems.add(0, f"tệp phải là một bảng (mapping) có mục {expected!r}")
            self.problems.raise_if_any()
        for key in data:
            if key not in allowed:
                self.problems.add(
                    data.line_of(key),
                    f"mục không biết {key!r} (chỉ dùng: {', '.join(sorted(allowed))})",
                )
        return data

    def _unknown_keys(self, item: LineDict, allowed: set[str], what: str) -> None:
        for key in item:
            if key not in allowed:
                self.problems.add(item.line_of(key), f"{what}: trường không biết {key!r}")

    def _date(self, item: LineDict, key: str, what: str, *, required: bool = False) -> date | None:
        value = item.get(key)
        if value is None:
            if required:
                self.problems.add(item.line, f"{what}: thiếu trường {key!r}")
            return None
        if isinstance(value, date):
            return value
        self.problems.add(
            item.line_of(key), f"{what}: {key!r} phải là ngày dạng YYYY-MM-DD, không phải {value!r}"
        )
        return None

    def _text(self, item: LineDict, key: str, what: str, *, required: bool) -> str | None:
        value = item.get(key)
        if value is None:
            if required:
                self.problems.add(item.line, f"{what}: thiếu trường {key!r}")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problems.add(item.line_of(key), f"{what}: {key!r} phải là một chuỗi không rỗng")
            return None
        return value.strip() if self.strip_text else value


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file; a syntax error or a missing file becomes a `DataFileError`."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataFileError([Problem(str(path), 0, "không tìm thấy tệp")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError([Problem(str(path), 0, f"không đọc được tệp: {exc}")]) from None
    return load_yaml_text(text, str(path))


def load_yaml_text(text: str, name: str) -> Any:
    """Parse YAML text; `name` is used in error messages as the file name."""
    try:
        return yaml.load(text, Loader=_LineLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise DataFileError(
            [Problem(name, line, f"YAML không hợp lệ: {exc.problem or exc.context}")]
        ) from None
    except yaml.YAMLError as exc:
        raise DataFileError([Problem(name, 0, f"YAML không hợp lệ: {exc}")]) from None
