"""Fuzzing (hypothesis) of everything that reads a person's input: the plan, registry,
ladder and calendar files, and the dossier import. Whatever the bytes, the answer is a
result or a clear error naming the file — never an unhandled exception, never a
half-written database."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deadlines.agencies import load_registry
from deadlines.calendar import WorkCalendar
from deadlines.datafile import DataFileError
from deadlines.ladder import load_ladder
from deadlines.plan import load_plan

ROOT = Path(__file__).resolve().parents[1]
PLAN = (ROOT / "plans" / "nghe-an-2025.yaml").read_text(encoding="utf-8")
REGISTRY_PATH = ROOT / "plans" / "agencies.yaml"
LADDER = (ROOT / "plans" / "ladder.yaml").read_text(encoding="utf-8")
CALENDAR = (ROOT / "deadlines" / "vn_calendar.yaml").read_text(encoding="utf-8")
JUNK = st.sampled_from(
    [
        "",
        "-",
        ":",
        "null",
        "[",
        "]",
        "{",
        "'",
        '"',
        "2025-02-30",
        "-1",
        "1e9",
        "@",
        "\t",
        "é",
        "Quý V/2025",
        "GRP-KHONG-CO",
        "true",
        "~",
        "&anchor",
        "*alias",
        "!!python/object",
    ]
)


@st.composite
def mutations(draw, text: str):
    """The text with a few lines deleted, duplicated or with a value replaced by junk."""
    lines = text.splitlines()
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        action = draw(st.sampled_from(["delete", "duplicate", "junk_value", "junk_line"]))
        if action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "junk_value" and ":" in lines[i]:
            key = lines[i].split(":", 1)[0]
            lines[i] = f"{key}: {draw(JUNK)}"
        else:
            lines[i] = draw(JUNK)
        if not lines:
            break
    return "\n".join(lines) + "\n"


FUZZ = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@FUZZ
@given(mutations(PLAN))
def test_plan_loader(tmp_path_factory, registry, text):
    path = tmp_path_factory.mktemp("plan") / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        plan = load_plan(path, registry=registry)
    except DataFileError as exc:
        assert all(str(path) in str(p) for p in exc.problems)
    else:
        assert plan.obligations


@FUZZ
@given(mutations(REGISTRY_PATH.read_text(encoding="utf-8")))
def test_registry_loader(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("registry") / "agencies.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        registry = load_registry(path)
    except DataFileError as exc:
        assert all(str(path) in str(p) for p in exc.problems)
    else:
        assert registry.agencies


@FUZZ
@given(mutations(LADDER))
def test_ladder_loader(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("ladder") / "ladder.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        ladder = load_ladder(path)
    except DataFileError as exc:
        assert all(str(path) in str(p) for p in exc.problems)
    else:
        assert ladder.steps


@FUZZ
@given(mutations(CALENDAR.split("overrides:", 1)[1].join(["overrides:", ""])))
def test_calendar_override_file(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("calendar") / "province.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        cal = WorkCalendar.vietnam(path)
    except DataFileError as exc:
        assert all(str(path) in str(p) for p in exc.problems)
    else:
        assert cal.count_working_days(cal.first_day, cal.last_day) > 0


@FUZZ
@given(st.binary(max_size=400))
def test_arbitrary_bytes_as_a_plan(tmp_path_factory, registry, data):
    path = tmp_path_factory.mktemp("bytes") / "plan.yaml"
    path.write_bytes(data)
    with pytest.raises(DataFileError):
        load_plan(path, registry=registry)


FIELD = st.one_of(
    JUNK,
    st.sampled_from(
        [
            "2025-04-25T09:00:00",
            "2025-05-02T17:30:00+07:00",
            "2025-04-30",
            "0",
            "1",
            "online",
            "direct",
            "postal",
            "2.000720",
            "1.001193",
            "XA-16681",
            "SO-TP",
            "HS-1",
            "HS-2",
        ]
    ),
    st.text(max_size=12),
)
from models.dossier_import import DOSSIER_COLUMNS as COLUMNS  # noqa: E402


@pytest.fixture(scope="module")
def import_ctx(tmp_path_factory):
    from flows.engine import EngineContext
    from models.dossier_import import import_procedures

    folder = tmp_path_factory.mktemp("import")
    ctx = EngineContext.open(f"sqlite:///{folder}/fuzz.db")
    import_procedures(ctx.db, ROOT / "plans" / "sample-procedures.csv")
    return ctx


@FUZZ
@given(st.lists(st.lists(FIELD, min_size=len(COLUMNS), max_size=len(COLUMNS)), max_size=6))
def test_dossier_import(tmp_path_factory, import_ctx, rows):
    import csv

    from sqlalchemy import func, select

    from models.dossier_import import ImportRefused, import_dossiers
    from models.tables import Dossier

    path = tmp_path_factory.mktemp("rows") / "export.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)

    def total():
        with import_ctx.db.connect() as conn:
            return conn.scalar(select(func.count()).select_from(Dossier))

    before = total()
    try:
        report = import_dossiers(import_ctx.db, path, import_ctx.cal, import_ctx.one_stop)
    except ImportRefused as exc:
        assert exc.problems and all(p.line >= 1 for p in exc.problems)
        assert total() == before
    else:
        assert report.rows == len(rows) and total() == before + report.inserted


# ----------------------------------------------------- flow and command parameters


@pytest.fixture(scope="module")
def engine_ctx(tmp_path_factory):
    from flows.engine import EngineContext

    return EngineContext.open(f"sqlite:///{tmp_path_factory.mktemp('params')}/p.db")


ANY_TEXT = st.one_of(st.text(max_size=30), JUNK, st.sampled_from(["2025-03-18", "SO-TP", "X"]))


@FUZZ
@given(ANY_TEXT, st.lists(ANY_TEXT, max_size=3), ANY_TEXT)
def test_flow_parameters(engine_ctx, day_text, agencies, section):
    """Every check of a flow parameter accepts or refuses with a ParameterError/EngineError
    naming what was wrong; nothing else escapes."""
    from flows.engine import EngineError
    from flows.parameters import check_agencies, check_day, check_section, parse_day

    try:
        day = parse_day(day_text, "date")
        check_day(engine_ctx, day, "date")
    except EngineError as exc:
        assert "date" in str(exc)
    try:
        assert check_agencies(engine_ctx, agencies) == agencies
    except EngineError as exc:
        assert str(exc)
    try:
        found = check_section(engine_ctx.plan, section)
        assert found is None or found.upper() == section.strip().upper()
    except EngineError as exc:
        assert "Không có mục" in str(exc)
    try:
        engine_ctx.obligation(day_text)
    except EngineError as exc:
        assert "Không có nhiệm vụ" in str(exc)
