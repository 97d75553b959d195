"""Matching the agencies a plan names ("Văn phòng UBND tỉnh", "Các Sở: Nội vụ, Tư pháp") to
registry codes, with how sure the match is.

A name matches exactly (confidence 1.0) when, once normalised, it equals an agency's name, a
group's label, or one of the other names declared in `plans/agency-names.yaml` (a plan's own
wording for a registry entry, each with its source). Normalising folds case and diacritics,
drops punctuation, expands the abbreviations that file declares (UBND, HĐND, TTHC, …), drops
a leading "các" and a trailing "tỉnh <province>". Anything else is a guess: the entry whose
words overlap most, weighted so that rare words ("liên quan", "tư pháp") count more than
common ones ("sở", "tỉnh"), with that overlap as its confidence; below `GUESS_THRESHOLD`, or
too close to the runner-up, the name is left unmatched. A guess is never silent: the drafter
lists it for an admin to confirm.

A cell naming several bodies is split on its bullets and on ";"; a part that matches nothing
whole is split on "," and "và" into the pieces that match best ("Báo Nghệ An, Đài Phát thanh
và Truyền hình tỉnh" is two agencies, "Các Sở, ban, ngành cấp tỉnh" one group).

Pure: no database, no clock.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from deadlines.agencies import Registry
from deadlines.datafile import FieldReader, load_yaml
from deadlines.rules import fold
from plans import PLANS_DIR

DEFAULT_NAMES_PATH = PLANS_DIR / "agency-names.yaml"

EXACT = 1.0
GUESS_THRESHOLD = 0.55
# A guess must beat the runner-up by this much, or the name is ambiguous.
GUESS_MARGIN = 0.08

_BULLET = re.compile(r"^\s*[-–—+•*]+\s*")
_ENUMERATION = re.compile(
    r"^(?:các\s+)?(?P<noun>sở|ban|bộ|phòng|cục|vụ)\s*:\s*(?P<items>.+)$", re.I
)
_PIECE_SEP = re.compile(r"\s*,\s*|\s+và\s+", re.I)


@dataclass(frozen=True)
class OtherNames:
    """The other names of registry entries and the abbreviations plans use."""

    path: str
    names: tuple[tuple[str, str, str], ...]  # (code, name, source)
    abbreviations: tuple[tuple[str, str], ...]  # (short, long), folded


def load_other_names(
    path: str | Path | None = None, registry: Registry | None = None
) -> OtherNames:
    """Read `plans/agency-names.yaml` (or `path`); codes are checked against `registry`."""
    path = Path(path) if path is not None else DEFAULT_NAMES_PATH
    return _NamesReader(str(path), registry).read(load_yaml(path))


class _NamesReader(FieldReader):
    def __init__(self, path: str, registry: Registry | None):
        super().__init__(path)
        self.registry = registry

    def read(self, data: Any) -> OtherNames:
        data = self._top_level(data, {"abbreviations", "names"}, "names")
        abbreviations = []
        for item in self._list(data, "abbreviations", required=False):
            self._unknown_keys(item, {"short", "long", "source"}, "chữ viết tắt")
            short = self._text(item, "short", "chữ viết tắt", required=True)
            long = self._text(item, "long", "chữ viết tắt", required=True)
            if short and long:
                abbreviations.append((_plain(short), _plain(long)))
        names = []
        for item in self._list(data, "names", required=True):
            code = self._text(item, "code", "tên khác", required=True)
            what = f"tên khác của {code}" if code else "tên khác"
            self._unknown_keys(item, {"code", "names", "source", "note"}, what)
            source = self._text(item, "source", what, required=True)
            values = item.get("names")
            if (
                not isinstance(values, list)
                or not values
                or not all(isinstance(v, str) and v.strip() for v in values)
            ):
                self.problems.add(item.line_of("names"), f"{what}: 'names' phải là danh sách tên")
                continue
            if code and self.registry is not None and not self.registry.knows(code):
                self.problems.add(
                    item.line_of("code"),
                    f"{what}: mã {code!r} không có trong danh bạ {self.registry.path}",
                )
            if code and source:
                names.extend((code, value.strip(), source) for value in values)
        self.problems.raise_if_any()
        return OtherNames(self.path, tuple(names), tuple(abbreviations))


def _plain(text: str) -> str:
    """Folded words only: no diacritics, lower case, punctuation as spaces."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", fold(text)).split())


@dataclass(frozen=True)
class Match:
    """One body named in a cell: its words, the code it matched (None if none) and how sure.

    `how` is "name" (an agency's name or a group's label), "other_name" (a declared other
    name), "guess" (closest words) or "none"; `runner_up` is the next best code of a guess.
    """

    text: str
    code: str | None
    confidence: float
    how: str
    runner_up: str | None = None

    @property
    def exact(self) -> bool:
        return self.how in ("name", "other_name")


class AgencyMatcher:
    """Matches names to the codes of `registry` (agencies and groups).

    `province` is the plan's province ("Nghệ An"), dropped from the end of names; when two
    entries share a name, the one active on `on` (the decision's date) wins.
    """

    def __init__(
        self,
        registry: Registry,
        names: OtherNames,
        *,
        province: str | None = None,
        on: date | None = None,
    ):
        self.registry = registry
        self.on = on
        self._abbreviations = {short: long for short, long in names.abbreviations}
        self._province = _plain(province).split() if province else []
        self._exact: dict[str, list[tuple[str, str]]] = {}
        entries: list[tuple[str, str, str]] = []
        for agency in registry.agencies.values():
            entries.append((agency.code, agency.name, "name"))
        for group in registry.groups.values():
            entries.append((group.code, group.label, "name"))
        for code, name, _ in names.names:
            entries.append((code, name, "other_name"))
        for code, name, how in entries:
            self._exact.setdefault(self.key(name), []).append((code, how))
        self._entries = [(code, set(self.key(name).split())) for code, name, _ in entries]
        counts = Counter(word for _, words in self._entries for word in words)
        total = len(self._entries)
        self._weight = {word: math.log(1 + total / n) for word, n in counts.items()}
        self._rare = math.log(1 + total)

    # -- normalising ------------------------------------------------------------------

    def key(self, text: str) -> str:
        words: list[str] = []
        for word in _plain(text).split():
            words.extend(self._abbreviations.get(word, word).split())
        if words[:1] == ["cac"]:
            words = words[1:]
        province = self._province
        if province and words[-len(province) :] == province and len(words) > len(province):
            words = words[: -len(province)]
        if words[-1:] == ["tinh"] and len(words) > 1:
            words = words[:-1]
        return " ".join(words)

    # -- one name ---------------------------------------------------------------------

    def match_one(self, text: str) -> Match:
        text = text.strip().rstrip(".;,:").strip()
        key = self.key(text) if text else ""
        found = self._exact.get(key) if key else None
        if found:
            codes = list(dict.fromkeys(code for code, _ in found))
            if len(codes) > 1 and self.on is not None:
                active = [c for c in codes if self._active(c)]
                codes = active or codes
            how = next(how for code, how in found if code == codes[0])
            if len(codes) == 1:
                return Match(text, codes[0], EXACT, how)
            return Match(text, codes[0], 0.5, "guess", runner_up=codes[1])
        return self._guess(text, set(key.split()))

    def _active(self, code: str) -> bool:
        if self.registry.is_group(code):
            return True
        return self.registry.get(code).is_active_on(self.on)

    def _guess(self, text: str, words: set[str]) -> Match:
        if not words:
            return Match(text, None, 0.0, "none")
        scores: dict[str, float] = {}
        for code, entry in self._entries:
            common = sum(self._w(w) for w in words & entry)
            if not common:
                continue
            score = 2 * common / (sum(self._w(w) for w in words) + sum(self._w(w) for w in entry))
            scores[code] = max(score, scores.get(code, 0.0))
        ranked = sorted(scores.items(), key=lambda cs: -cs[1])
        if not ranked:
            return Match(text, None, 0.0, "none")
        best, score = ranked[0]
        runner_up, second = ranked[1] if len(ranked) > 1 else (None, 0.0)
        if score < GUESS_THRESHOLD or score - second < GUESS_MARGIN:
            return Match(text, None, round(score, 2), "none", runner_up=best)
        return Match(text, best, round(score, 2), "guess", runner_up=runner_up)

    def _w(self, word: str) -> float:
        return self._weight.get(word, self._rare)

    # -- a cell -----------------------------------------------------------------------

    def match_cell(self, cell: str) -> list[Match]:
        """Every body a cell names, in order."""
        matches: list[Match] = []
        for line in cell.splitlines():
            line = _BULLET.sub("", line).strip()
            for segment in line.split(";"):
                segment = segment.strip().rstrip(".,:").strip()
                if segment:
                    matches.extend(self._segment(segment))
        return matches

    def _segment(self, segment: str) -> list[Match]:
        whole = self.match_one(segment)
        if whole.exact:
            return [whole]
        if m := _ENUMERATION.match(segment):
            # "Các Sở: Nội vụ, Thông tin và Truyền thông": each item is "Sở <item>".
            items = m.group("items")
            noun = m.group("noun")
            pieces = [p for p in _PIECE_SEP.split(items) if p.strip()]
            parts = self._partition(items, pieces, prefix=f"{noun[0].upper()}{noun[1:]} ")
            if parts is not None:
                return parts
        pieces = [p for p in _PIECE_SEP.split(segment) if p.strip()]
        if len(pieces) > 1:
            best = self._partition(segment, pieces)
            if best is not None:
                return best
        return [whole]

    def _partition(self, segment: str, pieces: list[str], prefix: str = "") -> list[Match] | None:
        """The split of `segment` into runs of pieces that are each an exact match (with
        `prefix` before each run), fewest runs first; None if there is none. The original
        separators are kept inside a run."""
        spans = _piece_spans(segment, pieces)
        n = len(pieces)
        best: list[list[Match] | None] = [None] * (n + 1)
        best[0] = []
        for end in range(1, n + 1):
            for start in range(end):
                if best[start] is None:
                    continue
                text = prefix + segment[spans[start][0] : spans[end - 1][1]]
                match = self.match_one(text)
                if not match.exact:
                    continue
                candidate = [*best[start], match]
                if best[end] is None or len(candidate) < len(best[end]):
                    best[end] = candidate
        return best[n]


def _piece_spans(segment: str, pieces: list[str]) -> list[tuple[int, int]]:
    spans, pos = [], 0
    for piece in pieces:
        start = segment.index(piece, pos)
        spans.append((start, start + len(piece)))
        pos = start + len(piece)
    return spans
