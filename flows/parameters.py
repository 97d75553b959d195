"""Checking what a person asked for (flow parameters, command options) before acting on it.

A flow parameter is declared once, as an annotated type: its Python type (what Prefect's
UI draws: a date picker for `date`, a switch for `bool`), a Vietnamese description, and
for codes of the registry or the plan, the list it is chosen from (`Choices`: the
deployments fill in the loaded registry's agencies, the plan's sections, obligations and
events, shown as "SO-TP — Sở Tư pháp"). Pydantic validates the values (`accepted`); each
refusal is a `ParameterError` (an `EngineError`) whose Vietnamese message names the
parameter, what was wrong and what to give instead. Whether a code exists is the
registry's or the plan's to say (`EngineContext.agency`, `check_section`…).

No Prefect here: the terminal commands use the same checks without paying for Prefect's
import.
"""

from __future__ import annotations

import hashlib
import inspect
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from types import SimpleNamespace
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, create_model
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from deadlines.agencies import Registry
from deadlines.calendar import CalendarError
from deadlines.plan import Plan
from flows.engine import EngineContext, EngineError

TIMEZONE = "Asia/Ho_Chi_Minh"

# SweepRun.partition holds at most this many characters.
PARTITION_LENGTH = 64

# How a choice is shown in a dropdown: "SO-TP — Sở Tư pháp". The code comes first, so
# either the code or the whole label is accepted.
LABEL_SEPARATOR = " — "


class ParameterError(EngineError):
    """A parameter a person got wrong; the message says which and what to give."""


def today_in_vietnam() -> date:
    """The date in the province: the one clock read of a run."""
    return datetime.now(ZoneInfo(TIMEZONE)).date()


# ------------------------------------------------------------------ the types


@dataclass(frozen=True)
class Choices:
    """Annotated metadata: the parameter is chosen from a list the deployments fill in
    from the loaded registry or plan (`agency`, `section`, `obligation`, `event`)."""

    kind: str


AGENCY, SECTION, OBLIGATION, EVENT, PLAN = (
    Choices("agency"),
    Choices("section"),
    Choices("obligation"),
    Choices("event"),
    Choices("plan"),
)


def label(code: str, name: str) -> str:
    return f"{code}{LABEL_SEPARATOR}{' '.join(name.split())}"


def code_of(value: object) -> object:
    """The code of a dropdown label ("SO-TP — Sở Tư pháp" → "SO-TP"); other values as given."""
    if isinstance(value, str):
        return value.split(LABEL_SEPARATOR, 1)[0].strip()
    return value


def blank_is_none(value: object) -> object:
    """An empty field of a form means "not given"."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def not_blank(hint: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("blank", "{hint}", {"hint": hint})
        return value.strip()

    return check


def Code(choices: Choices, description: str, *, optional: bool = False) -> Any:
    kind = str | None if optional else str
    return Annotated[
        kind,
        BeforeValidator(code_of),
        BeforeValidator(blank_is_none),
        choices,
        Field(description=description),
    ]


def Day(description: str) -> Any:
    return Annotated[date, Field(description=description)]


def OptionalDay(description: str) -> Any:
    return Annotated[date | None, BeforeValidator(blank_is_none), Field(description=description)]


def Text(description: str, *, required: str = "") -> Any:
    """Free text; `required`: what to write when it is left empty (then it is refused)."""
    checks = (AfterValidator(not_blank(required)),) if required else ()
    return Annotated[str, *checks, Field(description=description)]


def Flag(description: str) -> Any:
    return Annotated[bool, Field(description=description)]


def Number(description: str, *, minimum: int | None = None) -> Any:
    return Annotated[int, Field(description=description, ge=minimum)]


# The parameters several flows share.
RunDay = OptionalDay("Ngày chạy (theo giờ Việt Nam); để trống là hôm nay.")
Force = Flag("Quét cả ngày nghỉ (mặc định: ngày nghỉ chỉ ghi lý do, không quét).")
AgencyCode = Code(AGENCY, "Cơ quan (chọn trong danh sách: mã — tên).")
PlanCode = Code(
    PLAN,
    "Kế hoạch (mã — tên); để trống: mọi kế hoạch, hoặc kế hoạch duy nhất có nhiệm vụ này.",
    optional=True,
)


# ------------------------------------------------------------- validation


@cache
def _model(fn: Callable) -> type:
    hints = typing.get_type_hints(fn, include_extras=True)
    fields = {}
    for name, parameter in inspect.signature(fn).parameters.items():
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (hints.get(name, Any), default)
    return create_model(f"{fn.__name__}_parameters", **fields)


def accepted(flow: Any, arguments: Mapping[str, object]) -> SimpleNamespace:
    """The parameters of `flow` (a Prefect flow or a plain function), validated and
    converted by their annotated types; a `ParameterError` in Vietnamese otherwise."""
    fn = getattr(flow, "fn", flow)
    model = _model(fn)
    try:
        values = model.model_validate(dict(arguments))
    except ValidationError as exc:
        raise ParameterError(
            "\n".join(refusal(error) for error in exc.errors(include_url=False))
        ) from None
    return SimpleNamespace(**{name: getattr(values, name) for name in model.model_fields})


def validated(kind: Any, value: object, what: str) -> Any:
    """One value of an annotated type (`RunDay`, `AgencyCode`…), named `what` in a refusal."""
    model = create_model(f"{what}_parameter", **{what: (kind, ...)})
    try:
        return getattr(model.model_validate({what: value}), what)
    except ValidationError as exc:
        raise ParameterError(
            "\n".join(refusal(error) for error in exc.errors(include_url=False))
        ) from None


# What to give instead, by pydantic's error type.
EXPECTED = {
    "date": "Cần ngày dạng YYYY-MM-DD, ví dụ 2025-03-24.",
    "int": "Cần một số nguyên, ví dụ 42.",
    "bool": "Cần true hoặc false.",
    "string": "Cần một chuỗi ký tự.",
    "list": 'Cần một danh sách, ví dụ ["SO-TP", "SO-TC"].',
    "greater_than_equal": "Cần một số từ {ge} trở lên.",
}


def refusal(error: Mapping[str, Any]) -> str:
    """A pydantic error as a Vietnamese sentence naming the parameter."""
    where = "".join(
        f"[{part}]" if isinstance(part, int) else ("." if i else "") + str(part)
        for i, part in enumerate(error["loc"])
    )
    kind: str = error["type"]
    if kind == "missing":
        return f"Thiếu tham số {where}."
    if kind == "blank":
        return f"Tham số {where} rỗng: {error['ctx']['hint']}."
    given = error.get("input")
    expected = next(
        (text for prefix, text in EXPECTED.items() if kind.startswith(prefix)),
        f"Giá trị không hợp lệ ({error['msg']}).",
    )
    return f"Tham số {where} không hợp lệ: {given!r}. {expected.format(**error.get('ctx', {}))}"


def parse_day(text: str | date | None, what: str) -> date:
    """A YYYY-MM-DD parameter; None or empty means today (in Vietnam)."""
    return validated(RunDay, text, what) or today_in_vietnam()


def check_day(ctx: EngineContext, day: date, what: str) -> date:
    """`day`, if the working-day calendar covers it."""
    try:
        ctx.cal.is_working_day(day)
    except CalendarError as exc:
        raise ParameterError(f"Tham số {what}: {exc}") from None
    return day


def check_range(start: date, end: date) -> None:
    if end < start:
        raise ParameterError(
            f"Khoảng ngày không hợp lệ: ngày kết thúc {end:%d/%m/%Y} trước ngày bắt đầu "
            f"{start:%d/%m/%Y}."
        )


def check_agencies(ctx: EngineContext, codes: Sequence[str] | str | None) -> list[str] | None:
    """The agency codes, each known to the registry (None: every agency)."""
    if codes is None:
        return None
    if isinstance(codes, str):
        codes = [codes]
    if not codes:
        raise ParameterError(
            "Tham số agencies rỗng: bỏ trống để quét mọi cơ quan, hoặc nêu ít nhất một mã."
        )
    return [ctx.agency(code_of(code)).code for code in codes]


def section_code(part: str, number: str) -> str:
    """How an operator names a plan section: appendix sections by their Roman numeral
    ("III"), sections of the plan's body prefixed like their obligations ("B.III")."""
    return number if part == "appendix" else f"B.{number}"


def check_section(plan: Plan, code: str | None) -> str | None:
    """A known plan section code, or None for the whole plan."""
    if code is None or not code.strip():
        return None
    known = [section_code(s.part, s.number) for s in plan.sections]
    wanted = code_of(code)
    for candidate in known:
        if candidate.upper() == wanted.upper():
            return candidate
    raise ParameterError(
        f"Không có mục '{code}' trong kế hoạch. Các mục hợp lệ: {', '.join(known)} "
        "(B.… là các mục của phần nội dung Kế hoạch)."
    )


def partition_label(
    numbers: Sequence[str] | None, agencies: Sequence[str] | None, plan: str | None = None
) -> str:
    """A short label saying which part of the work a sweep covered ('' for all of it)."""
    parts = []
    if plan is not None:
        parts.append(f"plan:{plan}")
    if numbers is not None:
        parts.append("obligations:" + ",".join(numbers))
    if agencies is not None:
        parts.append("agencies:" + ",".join(sorted(agencies)))
    label = ";".join(parts)
    if len(label) <= PARTITION_LENGTH:
        return label
    digest = hashlib.sha1(label.encode()).hexdigest()[:12]
    return f"{label[: PARTITION_LENGTH - len(digest) - 1]}~{digest}"


# ------------------------------------------------------------- the UI's schema


def choice_lists(
    registry: Registry, plans: Sequence[Plan], event_types: Mapping[str, str]
) -> dict[str, list[str]]:
    """What each kind of code is chosen from, as dropdown labels: the registry's agencies,
    the loaded plans, their sections and obligations (each label once: two plans' "I.1"
    of the same title are one choice, the plan parameter tells them apart), the events
    the plans wait for."""
    return {
        AGENCY.kind: [label(a.code, a.name) for a in registry.agencies.values()],
        SECTION.kind: list(
            dict.fromkeys(
                label(section_code(s.part, s.number), s.title) for p in plans for s in p.sections
            )
        ),
        OBLIGATION.kind: list(
            dict.fromkeys(label(ob.number, ob.title) for p in plans for ob in p.obligations)
        ),
        EVENT.kind: [label(code, name) for code, name in sorted(event_types.items())],
        PLAN.kind: [label(p.meta.code, p.meta.label) for p in plans],
    }


def described_schema(fn: Callable, schema: dict, choices: Mapping[str, list[str]]) -> dict:
    """Prefect's parameter schema of `fn`, with each parameter's Vietnamese description
    and, for a code, the list to choose from (an `enum` of labels: a dropdown)."""
    hints = typing.get_type_hints(fn, include_extras=True)
    for name, spec in schema.get("properties", {}).items():
        for item in _metadata(hints.get(name)):
            if isinstance(item, FieldInfo) and item.description:
                spec.setdefault("description", item.description)
            if isinstance(item, Choices) and item.kind in choices:
                _add_enum(spec, choices[item.kind])
    return schema


def _metadata(hint: Any) -> Iterator[object]:
    """The annotations of a hint and of the types inside it (an optional, a list's items)."""
    yield from getattr(hint, "__metadata__", ())
    for arg in typing.get_args(hint):
        yield from _metadata(arg)


def _add_enum(spec: dict, labels: list[str]) -> None:
    """The enum goes where the string is: the property itself, or a list's items,
    inside an optional's `anyOf`."""
    if spec.get("type") == "string":
        spec["enum"] = labels
    elif spec.get("type") == "array":
        _add_enum(spec["items"], labels)
    for option in spec.get("anyOf", ()):
        if option.get("type") != "null":
            _add_enum(option, labels)
