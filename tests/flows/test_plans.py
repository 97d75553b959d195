"""Several plans at once, on a real database (SQLite, and PostgreSQL when configured): the
shipped 2025 plan of Nghệ An and a 2026 plan written for the tests (tests/data/
plan-2026.yaml), sweeps over the year boundary, digests listing both, reloading a changed
plan, retiring a plan, the deployments of each plan, and an existing database upgraded."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from deadlines.datafile import DataFileError
from flows.cli import app
from flows.deployments import build_deployments, load_reference
from flows.engine import (
    EngineContext,
    EngineError,
    complete_item,
    record_event,
    sweep,
    waive_item,
)
from flows.parameters import ParameterError, code_of
from flows.plan_loading import CHANGED, NEW, UNCHANGED, load_plan_file, plan_listing, retire_plan
from flows.reports.review import compliance_report
from models.db import MIGRATIONS, make_engine, session_scope
from models.tables import AuditLog, DeadlineItem, Escalation, ItemStatus, Notification, Obligation
from models.tables import Plan as PlanRow

D = date.fromisoformat
PLAN_2026 = Path(__file__).resolve().parents[1] / "data" / "plan-2026.yaml"
CODE_2025, CODE_2026 = "nghe-an-2025-kstthc", "kiem-thu-2026-kstthc"
LABEL_2025 = "Kế hoạch năm 2025 (Quyết định 384/QĐ-UBND)"
LABEL_2026 = "Kế hoạch năm 2026 (Quyết định KT-01/QĐ-KIEMTHU)"
CODE_II_1B = "nhan-duoc-quyet-dinh-cong-bo-tthc-cua-bo-truong-cac-bo-nganh-trung-uong"


@pytest.fixture
def ctx(database_url) -> EngineContext:
    """A fresh database: the shipped 2025 plan is loaded by default."""
    context = EngineContext.open(database_url)
    yield context
    context.db.dispose()


@pytest.fixture
def both(ctx) -> EngineContext:
    """The 2025 plan and the 2026 plan, the second loaded late in 2025."""
    assert load_plan_file(ctx, PLAN_2026, D("2025-12-20")).status == NEW
    return ctx


def items_of(ctx, code: str, number: str, *where) -> list[DeadlineItem]:
    with session_scope(ctx.db) as session:
        return list(
            session.scalars(
                select(DeadlineItem)
                .join(Obligation, Obligation.id == DeadlineItem.obligation_id)
                .join(PlanRow, PlanRow.id == Obligation.plan_id)
                .where(PlanRow.code == code, Obligation.number == number, *where)
                .order_by(DeadlineItem.due, DeadlineItem.agency_code)
            )
        )


def digest_of(ctx, day: date, agency_name: str) -> Notification:
    with session_scope(ctx.db) as session:
        (digest,) = session.scalars(
            select(Notification).where(
                Notification.kind == "digest",
                Notification.idempotency_key.startswith(f"digest:{day.isoformat()}"),
                Notification.subject.contains(agency_name),
            )
        ).all()
        return digest


def table_state(ctx) -> list[tuple]:
    with session_scope(ctx.db) as session:
        return [
            tuple(row)
            for row in session.execute(
                select(
                    DeadlineItem.id,
                    DeadlineItem.obligation_id,
                    DeadlineItem.agency_code,
                    DeadlineItem.period_key,
                    DeadlineItem.due,
                    DeadlineItem.status,
                ).order_by(DeadlineItem.id)
            )
        ]


def count(ctx, model, *where) -> int:
    with session_scope(ctx.db) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


# ----------------------------------------------------------------- two plans at once


def test_a_fresh_database_runs_the_shipped_plan_with_no_step(ctx):
    assert list(ctx.plans) == [CODE_2025]
    assert ctx.plan.meta.label == LABEL_2025
    (listing,) = plan_listing(ctx, D("2025-06-01"))
    assert (listing.code, listing.state, listing.obligations) == (CODE_2025, "đang thực hiện", 43)
    assert listing.source_file == "plans/nghe-an-2025.yaml"


def test_two_plans_loaded_at_once_keep_their_own_obligations(both):
    assert list(both.plans) == [CODE_2025, CODE_2026]
    # Both plans have an "I.1": the plan code tells them apart.
    assert both.obligation("I.1", CODE_2025).title != both.obligation("I.1", CODE_2026).title
    with pytest.raises(EngineError, match="có trong nhiều kế hoạch"):
        both.obligation("I.1")
    assert both.obligation("II.1b").number == "II.1b"  # only in the 2025 plan
    # Loading materialised the 2026 plan's dated duties, nothing of the 2025 plan.
    assert [
        i.due for i in items_of(both, CODE_2026, "I.1", DeadlineItem.agency_code == "SO-TP")
    ] == [D("2026-03-04")]
    assert len(items_of(both, CODE_2026, "X.1")) == 24  # two departments, twelve months
    assert items_of(both, CODE_2025, "X.2") == []
    assert both.plan_on(D("2025-07-01")).meta.code == CODE_2025
    assert both.plan_on(D("2026-07-01")).meta.code == CODE_2026


def test_sweeps_over_the_year_boundary_keep_last_years_open_items_in_the_digests(both):
    sweep(both, D("2025-12-29"))
    (december,) = items_of(
        both,
        CODE_2025,
        "X.2",
        DeadlineItem.agency_code == "SO-TP",
        DeadlineItem.due == D("2025-12-22"),
    )
    assert december.status == ItemStatus.OPEN
    for day in ("2025-12-30", "2025-12-31", "2026-01-05", "2026-01-12"):
        sweep(both, D(day))
    # The 2025 plan ended on 31/12/2025; its overdue item is still reminded and escalated.
    with session_scope(both.db) as session:
        steps = session.scalars(
            select(Escalation.step).where(Escalation.item_id == december.id)
        ).all()
    assert "overdue_10" in steps
    result = sweep(both, D("2026-01-19"))
    assert result.created == 0  # the 2026 items were created when the plan was loaded
    digest = digest_of(both, D("2026-01-19"), "Sở Tư pháp")
    # One digest for the department, its items of both plans.
    assert f"Thuộc: {LABEL_2025}" in digest.body_text
    assert f"Thuộc: {LABEL_2026}" in digest.body_text
    assert "22/12/2025" in digest.body_text and "22/1/2026" in digest.body_text
    assert LABEL_2025 in digest.body_html and LABEL_2026 in digest.body_html
    overdue_part = digest.body_text.split("QUÁ HẠN")[1].split("SẮP ĐẾN HẠN")[0]
    assert "Báo cáo công tác cải cách TTHC hằng tháng" in overdue_part

    # Completed or waived, last year's items leave the digests.
    complete_item(both, december.id, D("2026-01-20"), "BC 12/BC-STP")
    still_open = [
        i
        for i in items_of(both, CODE_2025, "X.2", DeadlineItem.agency_code == "SO-TP")
        if i.status == ItemStatus.OPEN
    ]
    for item in still_open:
        waive_item(both, item.id, D("2026-01-20"), "Công văn 5/VP-KSTT: không phải báo cáo lại")
    assert (
        waive_item(
            both, still_open[0].id, D("2026-01-20"), "Công văn 5/VP-KSTT: không phải báo cáo lại"
        ).changed
        is False
    )
    sweep(both, D("2026-01-21"))
    later = digest_of(both, D("2026-01-21"), "Sở Tư pháp")
    assert "Báo cáo công tác cải cách TTHC hằng tháng" not in later.body_text
    assert f"Thuộc: {LABEL_2026}" in later.body_text


def test_an_event_starts_the_duties_of_the_plans_in_force_on_its_day(both):
    late_2025 = record_event(both, CODE_II_1B, "SO-TP", D("2025-12-15"), "QĐ 1/QĐ-BTP")
    assert late_2025.obligations == [(CODE_2025, "II.1b")]
    early_2026 = record_event(both, CODE_II_1B, "SO-TP", D("2026-01-20"), "QĐ 2/QĐ-BTP")
    assert early_2026.obligations == [(CODE_2026, "II.1")]
    (item,) = items_of(both, CODE_2026, "II.1")
    assert item.due == D("2026-01-23") and item.agency_code == "SO-TP"
    with pytest.raises(EngineError, match="không có kế hoạch nào đang thực hiện"):
        record_event(both, CODE_II_1B, "SO-TP", D("2027-02-01"), "QĐ 3/QĐ-BTP")


def test_an_inspection_covers_every_plan_or_the_one_asked_for(both):
    sweep(both, D("2026-01-19"))
    span = (D("2025-12-01"), D("2026-03-31"), D("2026-01-19"))
    everything = compliance_report(both, "SO-TP", *span)
    assert everything.plan is None and set(everything.plans) == {LABEL_2025, LABEL_2026}
    assert {i.plan for i in everything.items} == {LABEL_2025, LABEL_2026}
    only = compliance_report(both, "SO-TP", *span, plan=CODE_2026)
    assert only.plan == CODE_2026 and only.items
    assert {i.number for i in only.items} <= {"I.1", "X.1", "X.2"}
    assert only.total < everything.total
    section = compliance_report(both, "SO-TP", *span, section="x", plan=CODE_2026)
    assert {i.number for i in section.items} == {"X.1"}
    with pytest.raises(ParameterError, match="hãy nêu kế hoạch"):
        compliance_report(both, "SO-TP", *span, section="X")
    with pytest.raises(EngineError, match="Không có kế hoạch mã 'khong-co'"):
        compliance_report(both, "SO-TP", *span, plan="khong-co")


# ------------------------------------------------------------------ reloading a plan


def changed_version(tmp_path) -> Path:
    """The 2026 plan amended: I.1 later, X.1 for Sở Tư pháp only, I.2 dropped, X.3 new."""
    source = PLAN_2026.read_text(encoding="utf-8")
    changed = source.replace("timing: Trước ngày 05/3/2026", "timing: Trước ngày 10/3/2026")
    changed = changed.replace(
        "    lead: [SO-TP, SO-NV]\n    timing: Trước ngày 23 hàng tháng",
        "    lead: [SO-TP]\n    timing: Trước ngày 23 hàng tháng",
    )
    start, end = changed.index("  - number: I.2\n"), changed.index("  - number: II.1\n")
    changed = changed[:start] + changed[end:]
    changed += (
        "\n  - number: X.3\n    section: X\n    title: Báo cáo quý về thực hiện TTHC\n"
        "    content: Báo cáo quý về thực hiện TTHC.\n    output: Báo cáo của cơ quan\n"
        "    lead: [SO-TP, SO-NV]\n    timing: Quý III/2026\n"
        "    source: tests/data/plan-2026.yaml, mục X.3 (dữ liệu kiểm thử)\n"
    )
    path = tmp_path / "plan-2026-v2.yaml"
    path.write_text(changed, encoding="utf-8")
    return path


def test_loading_the_same_plan_twice_changes_nothing(both):
    state = table_state(both)
    again = load_plan_file(both, PLAN_2026, D("2026-01-20"))
    assert again.status == UNCHANGED and not again.changes.any
    assert table_state(both) == state
    assert count(both, PlanRow) == 2
    assert count(both, Obligation, Obligation.removed_at.is_(None)) == 43 + 6


def test_reloading_a_changed_plan_reports_the_change_and_duplicates_nothing(both, tmp_path):
    sweep(both, D("2026-02-02"))  # January's X.1 reports are overdue
    i1_before = {i.agency_code: i.id for i in items_of(both, CODE_2026, "I.1")}
    report = load_plan_file(both, changed_version(tmp_path), D("2026-02-02"))

    assert report.status == CHANGED
    changes = report.changes
    assert [d.number for d in changes.added] == ["X.3"]
    assert [d.number for d in changes.removed] == ["I.2"]
    by_number = {c.number: c for c in changes.changed}
    assert set(by_number) == {"I.1", "X.1"}
    timing = next(f for f in by_number["I.1"].fields if f.field == "timing")
    assert (timing.old, timing.new) == ("Trước ngày 05/3/2026", "Trước ngày 10/3/2026")
    lead = next(f for f in by_number["X.1"].fields if f.field == "lead")
    assert (lead.old, lead.new) == ("SO-TP, SO-NV", "SO-TP")
    assert changes.unchanged == 3

    # The one-off duty moved: the same items, a new due date (and period key).
    moved = {c.item_id: (c.old_due, c.new_due) for c in report.moved if c.number == "I.1"}
    assert moved == {i: (D("2026-03-04"), D("2026-03-09")) for i in i1_before.values()}
    assert {i.agency_code: i.id for i in items_of(both, CODE_2026, "I.1")} == i1_before
    assert {i.due for i in items_of(both, CODE_2026, "I.1")} == {D("2026-03-09")}
    # Sở Nội vụ no longer leads X.1: its months to come are cancelled, January (owed under
    # the old version, already overdue) stays open.
    so_nv = items_of(both, CODE_2026, "X.1", DeadlineItem.agency_code == "SO-NV")
    assert [i.status for i in so_nv if i.due < D("2026-02-02")] == [ItemStatus.OPEN]
    assert all(i.status == ItemStatus.CANCELLED for i in so_nv if i.due >= D("2026-02-02"))
    assert "không còn chủ trì nhiệm vụ X.1" in so_nv[-1].evidence
    (dropped,) = items_of(both, CODE_2026, "I.2")
    assert dropped.status == ItemStatus.CANCELLED and "không còn" in dropped.evidence
    assert report.created == {"X.3": 2}
    assert {c.number for c in report.cancelled} == {"X.1", "I.2"}

    # Loading the new version again: nothing more, nothing twice.
    state = table_state(both)
    assert load_plan_file(both, changed_version(tmp_path), D("2026-02-03")).status == UNCHANGED
    assert table_state(both) == state
    assert count(both, PlanRow) == 2
    with session_scope(both.db) as session:
        numbers = session.execute(
            select(Obligation.number, Obligation.removed_at.is_(None))
            .join(PlanRow, PlanRow.id == Obligation.plan_id)
            .where(PlanRow.code == CODE_2026)
            .order_by(Obligation.number)
        ).all()
    assert numbers == [
        ("I.1", True),
        ("I.2", False),  # kept for its items' history, marked as removed
        ("II.1", True),
        ("II.2", True),
        ("X.1", True),
        ("X.2", True),
        ("X.3", True),
    ]
    assert sweep(both, D("2026-02-03")).created == 0
    assert count(both, AuditLog, AuditLog.action == "load_plan") == 2


def test_a_dry_run_reports_without_writing(both, tmp_path):
    state = table_state(both)
    report = load_plan_file(both, changed_version(tmp_path), D("2026-02-02"), dry_run=True)
    assert report.dry_run and report.status == CHANGED and report.created == {"X.3": 2}
    assert table_state(both) == state
    assert "X.3" not in {ob.number for ob in both.plans[CODE_2026].obligations}
    assert count(both, AuditLog, AuditLog.action == "load_plan") == 1


def test_a_bad_plan_file_is_refused_with_its_lines_and_nothing_written(both, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        PLAN_2026.read_text(encoding="utf-8").replace("lead: [VP-UBND]", "lead: [SO-KHONG-CO]"),
        encoding="utf-8",
    )
    state = table_state(both)
    with pytest.raises(DataFileError, match=r"bad.yaml, dòng \d+: .*'SO-KHONG-CO'"):
        load_plan_file(both, bad, D("2026-01-20"))
    assert table_state(both) == state


# --------------------------------------------------------------------------- retire


def test_retiring_a_plan_cancels_what_falls_after_its_last_day(both):
    sweep(both, D("2026-02-02"))
    report = retire_plan(both, CODE_2026, D("2026-06-30"))
    assert report.cancelled and all(c.due > D("2026-06-30") for c in report.cancelled)
    assert report.still_open == sum(
        1
        for number in ("I.1", "I.2", "X.1")
        for i in items_of(both, CODE_2026, number)
        if i.status == ItemStatus.OPEN
    )
    after = [i for i in items_of(both, CODE_2026, "X.1") if i.due > D("2026-06-30")]
    assert after and all(i.status == ItemStatus.CANCELLED for i in after)
    # The next sweeps create nothing due after the last day, and no event starts its duties.
    assert sweep(both, D("2026-07-01")).created == 0
    with pytest.raises(EngineError, match="không có kế hoạch nào đang thực hiện"):
        record_event(both, CODE_II_1B, "SO-TP", D("2026-07-02"), "QĐ 4/QĐ-BTP")
    assert retire_plan(both, CODE_2026, D("2026-06-30")).already
    with pytest.raises(EngineError, match="không lùi ngày"):
        retire_plan(both, CODE_2026, D("2026-09-30"))
    reopened = EngineContext.open(str(both.db.url.render_as_string(hide_password=False)))
    assert reopened.retired == {CODE_2026: D("2026-06-30")}
    (listing,) = [p for p in plan_listing(reopened, D("2026-08-01")) if p.code == CODE_2026]
    assert listing.state == "thôi thực hiện sau ngày 30/06/2026"
    reopened.db.dispose()


# ---------------------------------------------------------------------- deployments


def test_deployments_are_generated_per_loaded_plan(both):
    url = both.db.url.render_as_string(hide_password=False)
    deployments = build_deployments(load_reference(url))
    obligations = [d for d in deployments if d.flow_name == "obligation"]
    assert len(obligations) == 43 + 6
    names = [d.name for d in deployments]
    assert len(set(names)) == len(names)
    plans = {code_of(d.parameters["plan"]) for d in obligations}
    assert plans == {CODE_2025, CODE_2026}
    x1 = next(
        d
        for d in obligations
        if d.parameters
        == {
            "number": "X.1 — Báo cáo kiểm soát TTHC hằng tháng",
            "plan": f"{CODE_2026} — {LABEL_2026}",
        }
    )
    assert x1.name == f"{CODE_2026} — X.1 Báo cáo kiểm soát TTHC hằng tháng"
    assert f"plan:{CODE_2026}" in x1.tags
    # Both plans wait for the same event: each plan's deployment is triggered with its plan.
    triggered = {
        (t.parameters["plan"], t.parameters["number"]) for d in obligations for t in d.triggers
    }
    assert {(CODE_2025, "II.1b"), (CODE_2026, "II.1")} <= triggered
    scorecard = next(d for d in deployments if d.flow_name == "monthly-scorecard")
    rdates = [line for s in scorecard.schedules for line in s.schedule.rrule.splitlines()]
    years = {
        int(day[:4])
        for line in rdates
        if line.startswith("RDATE:")
        for day in line.removeprefix("RDATE:").split(",")
    }
    assert years == {2025, 2026, 2027}  # February of each plan year to January of the next

    retire_plan(both, CODE_2026, D("2026-06-30"))
    retired = build_deployments(load_reference(url))
    assert {code_of(d.parameters["plan"]) for d in retired if d.flow_name == "obligation"} == {
        CODE_2025
    }


# ---------------------------------------------------------------- existing database


def test_an_existing_database_keeps_its_rows_under_the_2025_plan(database_url):
    """A database of the previous release (revision 0002): its plan row has no stored
    text. Opening it fills the text from the default plan of the same code; obligations
    and items stay what they were."""
    engine = make_engine(database_url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.execute(
            text(
                "INSERT INTO agency (code, name, kind) VALUES ('SO-TP', 'Sở Tư pháp', 'department')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO plan (code, title, year, decision, loaded_at) VALUES "
                "('nghe-an-2025-kstthc', 'Kế hoạch 2025', 2025, '384/QĐ-UBND', :now)"
            ),
            {"now": "2025-03-01 00:00:00"},
        )
        plan_id = connection.scalar(text("SELECT id FROM plan"))
        connection.execute(
            text(
                "INSERT INTO obligation (plan_id, number, section, title, content, timing, rule) "
                "VALUES (:plan, 'X.2', 'X', 'Báo cáo', 'Báo cáo', 'Trước ngày 23 hàng tháng', "
                '\'{"kind": "recurring", "freq": "monthly", "before_day": 23}\')'
            ),
            {"plan": plan_id},
        )
        obligation_id = connection.scalar(text("SELECT id FROM obligation"))
        connection.execute(
            text(
                "INSERT INTO deadline_item (obligation_id, agency_code, period_key, due, status, "
                "created_at, updated_at) VALUES (:ob, 'SO-TP', '2025-03', '2025-03-21', 'open', "
                ":now, :now)"
            ),
            {"ob": obligation_id, "now": "2025-03-01 00:00:00"},
        )
    engine.dispose()

    ctx = EngineContext.open(database_url)
    assert list(ctx.plans) == [CODE_2025]
    assert ctx.obligation_ids[(CODE_2025, "X.2")] == obligation_id
    with session_scope(ctx.db) as session:
        row = session.scalars(select(PlanRow)).one()
        assert row.id == plan_id and row.document and row.source_file == "plans/nghe-an-2025.yaml"
    # The old item is the March occurrence: the sweep does not create it twice.
    sweep(ctx, D("2025-03-03"))
    (march,) = items_of(
        ctx,
        CODE_2025,
        "X.2",
        DeadlineItem.agency_code == "SO-TP",
        DeadlineItem.period_key == "2025-03",
    )
    assert march.due == D("2025-03-21")
    ctx.db.dispose()


# ---------------------------------------------------------------------- the terminal


@pytest.fixture
def terminal(database_url, monkeypatch, tmp_path):
    monkeypatch.setenv("DUNGHAN_DATABASE_URL", database_url)
    monkeypatch.setenv("DUNGHAN_OUTBOX_DIR", str(tmp_path / "outbox"))
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, list(args), catch_exceptions=False)

    return run


def test_plan_load_list_and_retire_from_a_terminal(terminal, tmp_path):
    first = terminal("plan", "load", str(PLAN_2026), "--date", "2025-12-20")
    assert first.exit_code == 0, first.output
    assert f"Kế hoạch {CODE_2026} — {LABEL_2026}: nạp lần đầu" in first.output
    assert "6 nhiệm vụ; 28 việc được tạo." in first.output

    again = terminal("plan", "load", str(PLAN_2026))
    assert again.exit_code == 0 and "giống hệt bản đã nạp; không thay đổi gì." in again.output

    changed = terminal("plan", "load", str(changed_version(tmp_path)), "--date", "2026-02-02")
    assert changed.exit_code == 0, changed.output
    for line in (
        "+ X.3 Báo cáo quý về thực hiện TTHC — 2 việc được tạo",
        "~ I.1 Kế hoạch KSTTHC năm 2026 của cơ quan",
        "thời hạn: «Trước ngày 05/3/2026» → «Trước ngày 10/3/2026»",
        "cơ quan chủ trì: «SO-TP, SO-NV» → «SO-TP»",
        "- I.2 Rà soát quy định, TTHC năm 2026",
        "I.1: 04/03/2026 → 09/03/2026, 3 việc",
    ):
        assert line in changed.output

    listed = terminal("plan", "list", "--json", "--date", "2026-02-02")
    assert listed.exit_code == 0
    rows = {row["code"]: row for row in json.loads(listed.output)}
    assert set(rows) == {CODE_2025, CODE_2026}
    assert rows[CODE_2025]["state"] == "đã hết năm kế hoạch (31/12/2025)"
    assert rows[CODE_2026]["state"] == "đang thực hiện" and rows[CODE_2026]["obligations"] == 6

    retired = terminal("plan", "retire", CODE_2026, "--on", "2026-06-30")
    assert retired.exit_code == 0 and "thôi thực hiện sau ngày 30/06/2026" in retired.output
    unknown = terminal("plan", "retire", "khong-co", "--on", "2026-06-30")
    assert unknown.exit_code == 2
    assert f"Không có kế hoạch mã 'khong-co'. Các kế hoạch đã nạp: {CODE_2025}" in unknown.output

    items = terminal("items", "--plan", CODE_2026, "--agency", "SO-TP", "--date", "2026-02-02")
    assert items.exit_code == 0 and "2026  X.1" in items.output and "2025" not in items.output
    as_json = json.loads(terminal("items", "--json", "--agency", "SO-TP").output)
    assert {row["plan"] for row in as_json} == {CODE_2026}

    reports = tmp_path / "reports"
    inspected = terminal(
        "inspect", "--agency", "SO-TP", "--from", "2026-01-01", "--to", "2026-12-31",
        "--plan", CODE_2026, "--section", "X", "--date", "2026-02-02",
        "--output-dir", str(reports),
    )  # fmt: skip
    assert inspected.exit_code == 0, inspected.output
    assert "Kế hoạch KT-01/QĐ-KIEMTHU, mục X" in inspected.output
    (html,) = reports.glob("*.html")
    assert CODE_2026 in html.name
    assert "Kế hoạch kiểm thử: hoạt động kiểm soát" in html.read_text(encoding="utf-8")

    # The month's targets are those of the plan in force that month, or of the plan asked.
    own = terminal("kpi", "--month", "2026-05")
    assert own.exit_code == 0 and f"Chỉ tiêu ({LABEL_2026}): không có" in own.output
    asked = terminal("kpi", "--month", "2026-05", "--plan", CODE_2025)
    assert f"Chỉ tiêu ({LABEL_2025}): " in asked.output and "95%" in asked.output


def test_a_bad_plan_file_fails_with_the_file_and_line(terminal, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        PLAN_2026.read_text(encoding="utf-8").replace("timing: Quý II/2026", "timing: Sớm"),
        encoding="utf-8",
    )
    result = terminal("plan", "load", str(bad))
    assert result.exit_code == 1
    assert "Tệp kế hoạch không hợp lệ (1 lỗi)" in result.output
    assert "bad.yaml, dòng" in result.output and "không hiểu thời hạn 'Sớm'" in result.output
    assert "Traceback" not in result.output
