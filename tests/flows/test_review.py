"""Inspection and recompute on a real database (no Prefect): what a kiểm tra reports, and
how open items follow a calendar or rule change, once."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, update

from deadlines.calendar import WorkCalendar
from flows.engine import EngineContext, EngineError, complete_item, record_event, sweep
from flows.parameters import ParameterError, check_section, parse_day, partition_label
from flows.reports.review import (
    compliance_report,
    obligation_items,
    overdue_by_agency,
    recompute,
)
from models.db import session_scope
from models.tables import AuditLog, DeadlineItem, Escalation, ItemStatus, Obligation

D = date.fromisoformat
CODE_II_1B = "nhan-duoc-quyet-dinh-cong-bo-tthc-cua-bo-truong-cac-bo-nganh-trung-uong"


@pytest.fixture
def ctx(database_url):
    context = EngineContext.open(database_url)
    yield context
    context.db.dispose()


@pytest.fixture
def day_off_on_21_march(tmp_path) -> WorkCalendar:
    """The province gives Friday 21/3/2025 off."""
    path = tmp_path / "tinh.yaml"
    path.write_text(
        "overrides:\n  - {date: 2025-03-21, kind: off, name: Nghỉ theo quyết định của tỉnh, "
        "source: QĐ 99/QĐ-UBND}\n",
        encoding="utf-8",
    )
    return WorkCalendar.vietnam(path)


def reopen(ctx: EngineContext, calendar: WorkCalendar) -> EngineContext:
    """The same database seen with another calendar (after the province changed it)."""
    return EngineContext.open(
        str(ctx.db.url.render_as_string(hide_password=False)), calendar=calendar
    )


def items(ctx, *where) -> list[DeadlineItem]:
    with session_scope(ctx.db) as session:
        return list(
            session.scalars(
                select(DeadlineItem).join(Obligation).where(*where).order_by(DeadlineItem.id)
            )
        )


def x2_march(ctx) -> list[DeadlineItem]:
    return items(ctx, Obligation.number == "X.2", DeadlineItem.period_key == "2025-03")


def table_state(ctx) -> list[tuple]:
    with session_scope(ctx.db) as session:
        return session.execute(
            select(
                DeadlineItem.id,
                DeadlineItem.due,
                DeadlineItem.period_key,
                DeadlineItem.status,
                DeadlineItem.evidence,
            ).order_by(DeadlineItem.id)
        ).all()


def audits(ctx, action: str) -> int:
    with session_scope(ctx.db) as session:
        return len(session.scalars(select(AuditLog.id).where(AuditLog.action == action)).all())


# ------------------------------------------------------------------- recompute


def test_recompute_moves_open_items_of_the_changed_day_and_says_why(ctx, day_off_on_21_march):
    sweep(ctx, D("2025-03-03"))
    before = {i.id for i in x2_march(ctx)}
    changed = reopen(ctx, day_off_on_21_march)
    result = recompute(changed, D("2025-03-10"))
    assert {c.item_id for c in result.moved} == before
    change = next(c for c in result.moved if c.agency_code == "SO-TP")
    assert (change.old_due, change.new_due) == (D("2025-03-21"), D("2025-03-20"))
    assert "Thứ Sáu 21/03/2025: ngày nghỉ — Nghỉ theo quyết định của tỉnh" in change.reason
    assert "trước ngày 23" in change.reason
    assert {(i.due, i.period_key) for i in x2_march(ctx)} == {(D("2025-03-20"), "2025-03")}
    assert audits(ctx, "recompute_move") == len(before)

    state = table_state(ctx)
    again = recompute(changed, D("2025-03-10"))
    assert again.changes == [] and again.orphans == []
    assert table_state(ctx) == state
    # The next sweep on the new calendar owns the moved items: nothing new for March.
    assert sweep(changed, D("2025-03-11")).created == 0
    changed.db.dispose()


def test_a_dry_run_reports_without_writing(ctx, day_off_on_21_march):
    sweep(ctx, D("2025-03-03"))
    state = table_state(ctx)
    changed = reopen(ctx, day_off_on_21_march)
    result = recompute(changed, D("2025-03-10"), dry_run=True)
    assert result.dry_run and len(result.moved) == len(x2_march(ctx)) > 0
    assert table_state(ctx) == state and audits(ctx, "recompute_move") == 0
    changed.db.dispose()


def test_a_sweep_on_the_new_calendar_before_recompute_doubles_nothing(ctx, day_off_on_21_march):
    sweep(ctx, D("2025-03-03"))
    old = {i.agency_code: i.id for i in x2_march(ctx)}
    done_id = old["SO-TP"]
    complete_item(ctx, done_id, D("2025-03-19"), "BC 7/BC-STP")
    changed = reopen(ctx, day_off_on_21_march)
    # The sweep runs before anyone recomputes: March's items are the same items (their
    # key is the month, not the due date), so nothing is created twice.
    assert sweep(changed, D("2025-03-11")).created == 0
    assert {i.agency_code: i.id for i in x2_march(ctx)} == old

    result = recompute(changed, D("2025-03-11"))
    assert {c.item_id for c in result.moved} == set(old.values()) - {done_id}
    march = {i.id: i for i in x2_march(ctx)}
    assert march[done_id].status == ItemStatus.DONE
    assert march[done_id].due == D("2025-03-21")  # a closed item keeps its history
    assert {i.due for i in march.values() if i.status == ItemStatus.OPEN} == {D("2025-03-20")}
    state = table_state(ctx)
    assert recompute(changed, D("2025-03-11")).changes == []
    assert sweep(changed, D("2025-03-12")).created == 0
    assert [row for row in table_state(ctx) if row[0] in march] == [
        row for row in state if row[0] in march
    ]
    changed.db.dispose()


def test_an_item_whose_period_the_rule_no_longer_has_is_reported_and_kept(ctx):
    sweep(ctx, D("2025-03-03"))
    (march,) = items(
        ctx,
        Obligation.number == "X.2",
        DeadlineItem.agency_code == "SO-TP",
        DeadlineItem.period_key == "2025-03",
    )
    with session_scope(ctx.db) as session:  # an item of a period the rule does not have
        session.execute(
            update(DeadlineItem).where(DeadlineItem.id == march.id).values(period_key="2025-13")
        )
    result = recompute(ctx, D("2025-03-10"))
    (orphan,) = result.orphans
    assert orphan.item_id == march.id and orphan.new_due is None
    assert "không còn kỳ 2025-13" in orphan.reason
    (kept,) = items(ctx, DeadlineItem.id == march.id)
    assert (kept.status, kept.due) == (ItemStatus.OPEN, march.due)


def test_recompute_moves_an_event_item_from_the_event_date(ctx, tmp_path):
    result = record_event(ctx, CODE_II_1B, "SO-TP", D("2025-03-10"), "QĐ 12/QĐ-BTP")
    (item,) = items(ctx, DeadlineItem.id.in_(result.created_items))
    assert item.due == D("2025-03-13")
    path = tmp_path / "tinh.yaml"
    path.write_text(
        "overrides:\n  - {date: 2025-03-12, kind: off, name: Nghỉ đột xuất, source: CV 1/UBND}\n",
        encoding="utf-8",
    )
    changed = reopen(ctx, WorkCalendar.vietnam(path))
    (change,) = recompute(changed, D("2025-03-12")).moved
    assert (change.old_due, change.new_due) == (D("2025-03-13"), D("2025-03-14"))
    assert "3 ngày làm việc" in change.reason and "10/03/2025" in change.reason
    (item,) = items(ctx, DeadlineItem.id.in_(result.created_items))
    assert (item.due, item.period_key) == (D("2025-03-14"), f"event:{result.event_id}")
    assert recompute(changed, D("2025-03-12")).changes == []
    changed.db.dispose()


# ------------------------------------------------------------------ inspection


def test_an_inspection_counts_by_outcome_and_step(ctx):
    sweep(ctx, D("2025-04-02"))
    vp = items(ctx, DeadlineItem.agency_code == "VP-UBND", DeadlineItem.due <= D("2025-04-30"))
    first = next(i for i in vp if i.due == D("2025-02-28"))
    complete_item(ctx, first.id, D("2025-03-03"), "KH 45/KH-UBND")
    report = compliance_report(ctx, "VP-UBND", D("2025-02-01"), D("2025-04-30"), D("2025-04-02"))
    assert report.total == len(vp)
    assert report.counts["done_late"] == 1 and report.counts["done"] == 0
    assert report.counts["overdue"] == sum(1 for i in vp if i.due < D("2025-04-02")) - 1
    assert report.counts["open"] == sum(1 for i in vp if i.due >= D("2025-04-02"))
    assert report.on_time_rate == 0.0
    assert sum(n for _, n in report.by_step) == report.total
    with session_scope(ctx.db) as session:
        reached = session.scalar(
            select(Escalation.id).where(
                Escalation.item_id == first.id, Escalation.step == "overdue_10"
            )
        )
    assert reached is not None  # steps reached before the late completion still count
    late = next(i for i in report.items if i.item_id == first.id)
    assert late.step.startswith("Quá hạn 10 ngày") and late.evidence == "KH 45/KH-UBND"
    assert late.state == "Hoàn thành trễ 1 ngày làm việc (03/03/2025)"


def test_an_inspection_of_one_section(ctx):
    sweep(ctx, D("2025-04-02"))
    report = compliance_report(
        ctx, "SO-TP", D("2025-01-01"), D("2025-12-31"), D("2025-04-02"), section="x"
    )
    assert report.section == "X" and report.section_title.startswith("Chế độ báo cáo")
    assert {i.number for i in report.items} == {"X.1", "X.2"}
    assert all(i.section == "X" for i in report.items)


def test_an_inspection_follows_items_across_a_succession(ctx):
    sweep(ctx, D("2025-03-03"))
    (item,) = items(ctx, Obligation.number == "I.4", DeadlineItem.agency_code == "SO-NV")
    with session_scope(ctx.db) as session:
        session.execute(
            update(DeadlineItem)
            .where(DeadlineItem.id == item.id)
            .values(original_agency_code="SO-LDTBXH")
        )
    span = (D("2025-03-01"), D("2025-03-31"), D("2025-03-10"))
    heir = compliance_report(ctx, "SO-NV", *span)
    assert next(i.transfer for i in heir.items if i.item_id == item.id).startswith(
        "Nhận từ Sở Lao động"
    )
    (handed,) = compliance_report(ctx, "SO-LDTBXH", *span).items
    assert handed.transfer == "Đã chuyển cho Sở Nội vụ tỉnh Nghệ An"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("SO-ABC", D("2025-01-01"), D("2025-12-31"), D("2025-04-02")), "Mã cơ quan không hợp lệ"),
        (("SO-TP", D("2025-12-31"), D("2025-01-01"), D("2025-04-02")), "Khoảng ngày không hợp lệ"),
    ],
)
def test_an_inspection_refuses_bad_requests(ctx, args, message):
    with pytest.raises(EngineError, match=message):
        compliance_report(ctx, *args)


# ----------------------------------------------------------- views for the flows


def test_an_obligations_items_put_overdue_first_and_show_the_next_occurrence(ctx):
    sweep(ctx, D("2025-04-24"))
    views = obligation_items(ctx, "X.2", D("2025-04-24"))
    assert {v.due for v in views} == {D("2025-03-21"), D("2025-04-22"), D("2025-05-22")}
    dues = [v.due for v in views]
    assert dues == sorted(dues)  # all open: oldest (most overdue) first
    first = views[0]
    assert first.state.startswith("Quá hạn") and first.step.startswith("Quá hạn 10 ngày")
    # 25/4, Saturday 26/4 (worked), 28-29/4; 30/4-2/5 off; then 14 days to Thursday 22/5.
    assert next(v for v in views if v.due == D("2025-05-22")).state == "Còn 18 ngày làm việc"


def test_overdue_per_agency_by_highest_step(ctx):
    sweep(ctx, D("2025-04-02"))
    rows = overdue_by_agency(ctx, D("2025-04-02"))
    assert [r.total for r in rows] == sorted((r.total for r in rows), reverse=True)
    vp = next(r for r in rows if r.agency_code == "VP-UBND")
    assert sum(vp.by_step.values()) == vp.total and vp.oldest_due == D("2025-02-28")
    assert overdue_by_agency(ctx, D("2025-04-02"), ["SO-TP"])[0].agency_code == "SO-TP"


# ------------------------------------------------------------------ parameters


def test_parameters_are_checked_with_vietnamese_messages(ctx):
    assert parse_day("2025-03-24", "date") == D("2025-03-24")
    with pytest.raises(ParameterError, match="Tham số from_date không hợp lệ: '24/3'"):
        parse_day("24/3", "from_date")
    assert check_section(ctx.plan, "b.iii") == "B.III" and check_section(ctx.plan, None) is None
    with pytest.raises(ParameterError, match="Các mục hợp lệ: I, II"):
        check_section(ctx.plan, "XII")
    assert partition_label(None, None) == ""
    assert partition_label(["X.2"], ["SO-TP"]) == "obligations:X.2;agencies:SO-TP"
    long = partition_label(None, [f"XA-{n}" for n in range(40)])
    assert len(long) == 64 and long != partition_label(None, [f"XA-{n}" for n in range(41)])
