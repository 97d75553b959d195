"""The engine on a real database (SQLite, and PostgreSQL when configured): items, the
ladder, succession, events, completion, idempotency and concurrency."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from flows.engine import EngineContext, EngineError, complete_item, record_event, sweep
from models.db import session_scope
from models.tables import (
    AuditLog,
    DeadlineItem,
    Escalation,
    Event,
    ItemStatus,
    Notification,
    Obligation,
    SweepRun,
)

D = date.fromisoformat
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ctx(database_url) -> EngineContext:
    context = EngineContext.open(database_url)
    yield context
    context.db.dispose()


def count(ctx, model, *where) -> int:
    with session_scope(ctx.db) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def item_of(ctx, number: str, agency: str, due: date | None = None) -> DeadlineItem:
    with session_scope(ctx.db) as session:
        query = (
            select(DeadlineItem)
            .join(Obligation, Obligation.id == DeadlineItem.obligation_id)
            .where(Obligation.number == number, DeadlineItem.agency_code == agency)
        )
        if due is not None:
            query = query.where(DeadlineItem.due == due)
        return session.scalars(query).one()


def steps_of(ctx, item_id: int) -> list[tuple[str, bool, date]]:
    with session_scope(ctx.db) as session:
        return [
            (e.step, e.notified, e.step_date)
            for e in session.scalars(
                select(Escalation).where(Escalation.item_id == item_id).order_by(Escalation.rank)
            )
        ]


def natural_keys(ctx) -> tuple[list, list]:
    """What a database holds, without its ids: (obligation, agency, due, status, step,
    notified) of every item and step, and (kind, recipient, subject) of every message."""
    with session_scope(ctx.db) as session:
        steps = session.execute(
            select(
                Obligation.number,
                DeadlineItem.agency_code,
                DeadlineItem.period_key,
                DeadlineItem.due,
                DeadlineItem.status,
                Escalation.step,
                Escalation.notified,
            )
            .join(DeadlineItem, DeadlineItem.obligation_id == Obligation.id)
            .join(Escalation, Escalation.item_id == DeadlineItem.id, isouter=True)
        ).all()
        messages = session.execute(
            select(Notification.kind, Notification.recipient, Notification.subject)
        ).all()
    return sorted(steps, key=repr), sorted(messages)


def snapshot(ctx) -> tuple[int, ...]:
    return tuple(count(ctx, model) for model in (DeadlineItem, Escalation, Notification, AuditLog))


def test_sweep_materialises_the_plan_year_from_its_start(ctx):
    result = sweep(ctx, D("2025-03-03"))
    assert result.skipped_reason is None
    assert result.created > 100
    with session_scope(ctx.db) as session:
        first_due = session.scalar(select(func.min(DeadlineItem.due)))
    # The plan was signed on 24/2/2025: January's monthly duties are not owed.
    assert first_due >= D("2025-02-24")
    # "Quý III/2025" for the provincial office: one item, due on the quarter's last day.
    assert item_of(ctx, "III.4", "VP-UBND").due == D("2025-09-30")
    # "Trước ngày 05/3/2025" for every department: due on 4/3 (the day before).
    assert item_of(ctx, "I.4", "SO-TP").due == D("2025-03-04")


def test_a_second_sweep_of_the_same_day_changes_nothing(ctx):
    sweep(ctx, D("2025-03-10"))
    before = snapshot(ctx)
    again = sweep(ctx, D("2025-03-10"))
    assert (again.created, len(again.escalations), again.notifications) == (0, 0, 0)
    assert snapshot(ctx) == before


def test_each_step_is_reached_once_and_in_order(ctx):
    # I.4 for Sở Tư pháp is due Tuesday 4/3/2025.
    sweep(ctx, D("2025-02-27"))  # 3 working days before: the first reminder
    item = item_of(ctx, "I.4", "SO-TP")
    assert [s[0] for s in steps_of(ctx, item.id)] == ["remind_before"]
    sweep(ctx, D("2025-02-28"))
    sweep(ctx, D("2025-03-04"))  # due today
    sweep(ctx, D("2025-03-05"))  # 1 working day overdue
    steps = steps_of(ctx, item.id)
    assert [s[0] for s in steps] == ["remind_before", "due_today", "overdue_1"]
    assert all(notified for _, notified, _ in steps)
    assert [s[2] for s in steps] == [D("2025-02-27"), D("2025-03-04"), D("2025-03-05")]


def test_a_sweep_after_missed_days_records_every_step_but_notifies_only_the_highest(ctx):
    sweep(ctx, D("2025-02-24"))
    item = item_of(ctx, "I.4", "SO-TP")
    # No sweep ran for three weeks; 10 working days after 4/3/2025 is 18/3/2025.
    result = sweep(ctx, D("2025-03-18"))
    steps = steps_of(ctx, item.id)
    assert [s[0] for s in steps] == [
        "remind_before",
        "due_today",
        "overdue_1",
        "overdue_5",
        "overdue_10",
    ]
    assert [notified for _, notified, _ in steps] == [False, False, False, False, True]
    notified = [e for e in result.escalations if e.item_id == item.id and e.notified]
    assert [e.step.code for e in notified] == ["overdue_10"]
    with session_scope(ctx.db) as session:
        letters = session.scalars(
            select(Notification).where(Notification.kind == "escalation")
        ).all()
    chairman = [n for n in letters if "Chủ tịch" in n.recipient_name]
    assert chairman and "Sở Tư pháp" in chairman[0].body_text
    # No stale lower-step letter was queued in the same sweep.
    assert not [n for n in letters if "đôn đốc thủ trưởng" in n.subject]


def test_a_day_off_is_recorded_and_skipped_unless_forced(ctx):
    result = sweep(ctx, D("2025-04-30"))
    assert result.skipped_reason and "Ngày Chiến thắng" in result.skipped_reason
    assert count(ctx, DeadlineItem) == 0
    with session_scope(ctx.db) as session:
        run = session.scalars(select(SweepRun)).one()
    assert run.skipped_reason == result.skipped_reason and not run.forced
    forced = sweep(ctx, D("2025-04-30"), force=True)
    assert forced.skipped_reason is None and forced.created > 0


def test_worked_saturday_is_a_sweep_day(ctx):
    assert sweep(ctx, D("2025-04-26")).skipped_reason is None


II_1B = "nhan-duoc-quyet-dinh-cong-bo-tthc-cua-bo-truong-cac-bo-nganh-trung-uong"


def test_open_items_of_a_merged_department_pass_to_its_successor(ctx):
    # Sở Thông tin và Truyền thông receives a ministry's decision on 25/2/2025: its II.1b
    # item is due 28/2. It is still open when the department merges into Sở Khoa học và
    # Công nghệ on 1/3/2025.
    event = record_event(ctx, II_1B, "SO-TTTT", D("2025-02-25"), document="1/QĐ-BTTTT")
    old = item_of(ctx, "II.1b", "SO-TTTT")
    assert old.due == D("2025-02-28")
    result = sweep(ctx, D("2025-03-03"))
    assert result.transferred == 1
    with session_scope(ctx.db) as session:
        moved = session.get(DeadlineItem, old.id)
        trail = session.scalars(
            select(AuditLog).where(
                AuditLog.action == "transfer_succession", AuditLog.entity_id == str(old.id)
            )
        ).one()
    assert (moved.agency_code, moved.original_agency_code) == ("SO-KHCN", "SO-TTTT")
    assert (moved.status, moved.event_id, moved.due) == (ItemStatus.OPEN, event.event_id, old.due)
    assert trail.detail == {"from": "SO-TTTT", "to": "SO-KHCN", "on": "2025-03-03"}
    # Its ladder continues with the successor; nothing transfers twice.
    assert sweep(ctx, D("2025-03-04")).transferred == 0
    assert steps_of(ctx, old.id)[-1][0] == "overdue_1"


def test_later_occurrences_go_straight_to_the_successor(ctx):
    sweep(ctx, D("2025-03-03"))
    # V.6 is led by Sở Thông tin và Truyền thông, due 30/9/2025, after the merger.
    assert item_of(ctx, "V.6", "SO-KHCN").original_agency_code is None
    assert count(ctx, DeadlineItem, DeadlineItem.agency_code == "SO-TTTT") == 0


def test_a_merger_announced_mid_year_moves_open_items_without_duplicates(tmp_path, database_url):
    # A province records a new merger: Sở Tư pháp into Sở Nội vụ from 1/6/2025.
    registry = Path(__file__).resolve().parents[2] / "plans" / "agencies.yaml"
    text = registry.read_text(encoding="utf-8")
    block = text.index("  - code: SO-TP\n")
    end = text.index("\n  - code:", block + 5)
    changed = (
        text[block:end]
        .replace("active_to: null", "active_to: 2025-05-31")
        .replace("successor: null", "successor: SO-NV\n    successor_from: 2025-06-01")
    )
    merged = tmp_path / "agencies.yaml"
    merged.write_text(text[:block] + changed + text[end:], encoding="utf-8")
    before = EngineContext.open(database_url)
    sweep(before, D("2025-03-03"))  # items materialised with the old registry
    april = item_of(before, "X.2", "SO-TP", D("2025-04-22"))
    june = item_of(before, "X.2", "SO-TP", D("2025-06-20"))
    before.db.dispose()
    after = EngineContext.open(database_url, registry_path=merged)
    sweep(after, D("2025-06-02"))
    with session_scope(after.db) as session:
        april_now = session.get(DeadlineItem, april.id)
        june_now = session.get(DeadlineItem, june.id)
    # Sở Nội vụ owes its own X.2 reports for the same months: no doubles, but the
    # history of the dissolved department's items is kept.
    for row in (april_now, june_now):
        assert row.original_agency_code == "SO-TP"
        assert row.status == ItemStatus.CANCELLED and "SO-NV" in row.evidence
    open_left = count(
        after,
        DeadlineItem,
        DeadlineItem.agency_code == "SO-TP",
        DeadlineItem.status == ItemStatus.OPEN,
    )
    assert open_left == 0
    after.db.dispose()


def test_recording_an_event_creates_items_with_working_day_due_dates(ctx):
    code = II_1B
    result = record_event(ctx, code, "SO-TP", D("2025-04-25"), document="123/QĐ-BTP")
    assert result.obligations == [("nghe-an-2025-kstthc", "II.1b")]
    assert len(result.created_items) == 1
    item = item_of(ctx, "II.1b", "SO-TP")
    assert item.due == D("2025-04-29")  # 3 working days; Saturday 26/4/2025 was worked
    assert item.event_id == result.event_id
    confirmations = count(ctx, Notification, Notification.kind == "confirmation")
    assert confirmations == 1
    again = record_event(ctx, code, "SO-TP", D("2025-04-25"), document="123/QĐ-BTP")
    assert again.already_recorded and again.created_items == []
    assert count(ctx, DeadlineItem) == 1
    assert count(ctx, Notification, Notification.kind == "confirmation") == 1


@pytest.mark.parametrize(
    ("event", "agency", "needle"),
    [
        ("no-such-event", "SO-TP", "Loại sự kiện không hợp lệ"),
        ("kiem-tra", "SO-KHONG-CO", "Mã cơ quan không hợp lệ"),
    ],
)
def test_bad_event_requests_are_refused_with_a_clear_message(ctx, event, agency, needle):
    with pytest.raises(EngineError, match=needle):
        record_event(ctx, event, agency, D("2025-04-25"))
    assert count(ctx, DeadlineItem) == 0


def test_completion_on_time_late_and_twice(ctx):
    sweep(ctx, D("2025-02-24"))
    on_time = item_of(ctx, "I.4", "SO-TP")
    late = item_of(ctx, "I.4", "SO-YT")
    done = complete_item(ctx, on_time.id, D("2025-03-04"), "45/BC-STP")
    assert (done.status, done.changed) == (ItemStatus.DONE, True)
    slow = complete_item(ctx, late.id, D("2025-03-05"), "12/BC-SYT")
    assert slow.status == ItemStatus.DONE_LATE
    repeat = complete_item(ctx, on_time.id, D("2025-03-04"), "45/BC-STP")
    assert not repeat.changed
    with pytest.raises(EngineError, match="đã đóng"):
        complete_item(ctx, on_time.id, D("2025-03-01"), "khác")
    with pytest.raises(EngineError, match="bằng chứng"):
        complete_item(ctx, late.id, D("2025-03-05"), "  ")
    with pytest.raises(EngineError, match="Không có việc"):
        complete_item(ctx, 999_999, D("2025-03-05"), "x")
    # A completed item reaches no further step.
    sweep(ctx, D("2025-03-18"))
    assert steps_of(ctx, on_time.id) == []
    assert count(ctx, AuditLog, AuditLog.action == "complete_item") == 2


def test_admins_closing_the_same_item_at_once_get_one_success_and_clear_refusals(ctx, database_url):
    """Four admins complete (or waive) each of eight items at the same instant, each
    from a connection of their own: one of them closes the item, the others are told
    who was first, and one confirmation is queued per item."""
    from dataclasses import replace

    from flows.engine import waive_item
    from models.db import make_engine

    sweep(ctx, D("2025-02-24"))
    with session_scope(ctx.db) as session:
        items = session.scalars(
            select(DeadlineItem.id)
            .join(Obligation)
            .where(Obligation.number == "I.4")
            .order_by(DeadlineItem.id)
            .limit(8)
        ).all()
    assert len(items) == 8
    admins = [replace(ctx, db=make_engine(database_url)) for _ in range(4)]
    outcomes: dict[int, list] = {item: [] for item in items}

    def admin(index: int, item_id: int, start: threading.Barrier) -> None:
        start.wait()
        try:
            if index == 3:
                done = waive_item(admins[index], item_id, D("2025-03-03"), f"QĐ {index}/QĐ")
            else:
                done = complete_item(admins[index], item_id, D("2025-03-03"), f"{index}/BC")
            outcomes[item_id].append(("ok", done.changed))
        except EngineError as refused:
            outcomes[item_id].append(("refused", str(refused)))

    for item_id in items:
        start = threading.Barrier(len(admins))
        threads = [
            threading.Thread(target=admin, args=(i, item_id, start)) for i in range(len(admins))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for admin_ctx in admins:
        admin_ctx.db.dispose()

    tried = sum(len(o) for o in outcomes.values())
    refused = [text for o in outcomes.values() for kind, text in o if kind == "refused"]
    assert tried == 32 and len(refused) == 24
    for outcome in outcomes.values():
        assert sorted(kind for kind, _ in outcome) == ["ok", "refused", "refused", "refused"]
        assert ("ok", True) in outcome
    assert all("đã đóng" in text and "không ghi đè" in text for text in refused)
    assert any("hoàn thành" in text for text in refused)
    with session_scope(ctx.db) as session:
        rows = session.execute(
            select(DeadlineItem.id, DeadlineItem.status, DeadlineItem.evidence).where(
                DeadlineItem.id.in_(items)
            )
        ).all()
        closing = session.execute(
            select(AuditLog.entity_id, func.count())
            .where(AuditLog.action.in_(["complete_item", "waive_item"]))
            .group_by(AuditLog.entity_id)
        ).all()
        confirmations = session.scalars(
            select(Notification.subject).where(Notification.kind == "confirmation")
        ).all()
    assert all(status != ItemStatus.OPEN for _, status, _ in rows)
    assert sorted(int(i) for i, n in closing if n == 1) == sorted(items)
    completed = sum(1 for _, status, _ in rows if status != ItemStatus.WAIVED)
    assert len(confirmations) == completed > 0  # one per completed item
    print(f"concurrent closings tried {tried}, refused {len(refused)}")


CODE_II_1B = "nhan-duoc-quyet-dinh-cong-bo-tthc-cua-bo-truong-cac-bo-nganh-trung-uong"


def digest_lines(ctx) -> dict[str, list[tuple]]:
    """Every digest line in the outbox, by recipient: (obligation, agency, due, steps)."""
    with session_scope(ctx.db) as session:
        natural = {
            item_id: (number, code, due)
            for item_id, number, code, due in session.execute(
                select(
                    DeadlineItem.id, Obligation.number, DeadlineItem.agency_code, DeadlineItem.due
                ).join(Obligation)
            )
        }
        out: dict[str, list[tuple]] = {}
        for recipient, covers in session.execute(
            select(Notification.recipient, Notification.covers).where(Notification.kind == "digest")
        ):
            for line in covers:
                item_id, steps = line.split("@")
                out.setdefault(recipient, []).append((*natural[int(item_id)], int(steps)))
    return {recipient: sorted(lines) for recipient, lines in out.items()}


def test_a_later_sweep_the_same_day_sends_what_is_new_and_nothing_already_sent(ctx):
    day = D("2025-03-10")
    sweep(ctx, day)
    first = digest_lines(ctx)
    assert first
    # Later that day a decision reaches the Department of Justice: an item due on 13/3.
    (new_item,) = record_event(ctx, CODE_II_1B, "SO-TP", day, "QĐ 12/QĐ-BTP").created_items
    assert sweep(ctx, day).notifications == 1
    with session_scope(ctx.db) as session:
        (supplement,) = session.execute(
            select(Notification.recipient, Notification.subject, Notification.covers)
            .where(Notification.kind == "digest")
            .order_by(Notification.id.desc())
            .limit(1)
        ).all()
    recipient, subject, covers = supplement
    assert covers == [f"{new_item}@1"]  # reminded at once: due in three working days
    assert "(bổ sung)" in subject and "1 việc sắp đến hạn" in subject
    second = digest_lines(ctx)
    new_line = ("II.1b", "SO-TP", D("2025-03-13"), 1)
    assert second[recipient] == sorted([*first.get(recipient, []), new_line])
    assert {r: lines for r, lines in second.items() if r != recipient} == {
        r: lines for r, lines in first.items() if r != recipient
    }
    before = snapshot(ctx)
    assert sweep(ctx, day).notifications == 0  # nothing new: nothing sent
    assert snapshot(ctx)[:3] == before[:3]


def test_partitions_sharing_an_address_send_it_every_line_once(database_url, tmp_path):
    """The departments share one mailbox (a province's choice): each partition's sweep
    sends it the lines of its own departments, and together they say what one whole
    sweep says, nothing dropped (as a key of (recipient, day) used to) and nothing twice."""
    import re

    from flows.engine import agency_partitions

    shipped = (ROOT / "plans" / "agencies.yaml").read_text(encoding="utf-8")
    shared = tmp_path / "agencies.yaml"
    shared.write_text(
        re.sub(r"email: so-[a-z-]+@example\.gov\.vn", "email: cac-so@example.gov.vn", shipped),
        encoding="utf-8",
    )
    whole = EngineContext.open(f"sqlite:///{tmp_path}/whole.db", registry_path=shared)
    split = EngineContext.open(database_url, registry_path=shared)
    parts = agency_partitions(split, 4)
    departments = [p for p in parts if any(code.startswith("SO-") for code in p)]
    assert len(departments) > 1  # the shared mailbox is served by several partitions
    for day in (D("2025-03-10"), D("2025-03-24")):
        sweep(whole, day)
        for part in parts:
            sweep(split, day, agencies=part)
    by_partition, alone = digest_lines(split), digest_lines(whole)
    assert by_partition == alone
    lines = by_partition["cac-so@example.gov.vn"]
    assert len(lines) == len(set(lines)) and {code for _, code, _, _ in lines} > {"SO-TP"}
    whole.db.dispose()
    split.db.dispose()


def test_two_sweeps_at_once_record_and_queue_everything_exactly_once(ctx, database_url, tmp_path):
    sweep(ctx, D("2025-02-24"))
    other = EngineContext.open(database_url)
    errors: list[BaseException] = []

    def run(context):
        try:
            sweep(context, D("2025-03-18"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in (ctx, other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.db.dispose()
    assert not errors, errors
    with session_scope(ctx.db) as session:
        duplicated_steps = session.execute(
            select(Escalation.item_id, Escalation.step)
            .group_by(Escalation.item_id, Escalation.step)
            .having(func.count() > 1)
        ).all()
        keys = session.scalars(select(Notification.idempotency_key)).all()
    assert duplicated_steps == []
    assert len(keys) == len(set(keys)) > 0
    # The result equals the same sweeps run alone, one after the other, on a database of
    # their own.
    alone = EngineContext.open(f"sqlite:///{tmp_path}/alone.db")
    sweep(alone, D("2025-02-24"))
    sweep(alone, D("2025-03-18"))
    assert natural_keys(ctx) == natural_keys(alone)
    assert count(alone, Escalation) > 0
    alone.db.dispose()


def items_for(ctx, number: str, period_key: str) -> list[DeadlineItem]:
    with session_scope(ctx.db) as session:
        return list(
            session.scalars(
                select(DeadlineItem)
                .join(Obligation, Obligation.id == DeadlineItem.obligation_id)
                .where(Obligation.number == number, DeadlineItem.period_key == period_key)
                .order_by(DeadlineItem.agency_code)
            )
        )


def audits(ctx, action: str, item_id: int | None = None) -> list[AuditLog]:
    with session_scope(ctx.db) as session:
        query = select(AuditLog).where(AuditLog.action == action)
        if item_id is not None:
            query = query.where(AuditLog.entity_id == str(item_id))
        return list(session.scalars(query.order_by(AuditLog.id)))


def test_a_districts_open_item_passes_to_the_communes_on_its_territory(ctx):
    sweep(ctx, D("2025-06-02"))
    june = item_of(ctx, "X.2", "HUYEN-NAM-DAN", D("2025-06-20"))
    sweep(ctx, D("2025-06-30"))  # Nam Đàn's June report is still open, and overdue
    assert item_of(ctx, "X.2", "HUYEN-NAM-DAN", D("2025-06-20")).status == ItemStatus.OPEN
    heirs = ctx.registry.get("HUYEN-NAM-DAN").successors
    assert len(heirs) == 5

    result = sweep(ctx, D("2025-07-01"))  # the district level ends on 30/6/2025
    assert result.transferred >= 1
    with session_scope(ctx.db) as session:
        handed = session.get(DeadlineItem, june.id)
    assert handed.status == ItemStatus.CANCELLED
    assert handed.original_agency_code == "HUYEN-NAM-DAN"
    assert handed.evidence.startswith("Chuyển cho 5 cơ quan kế thừa: UBND xã Nam Đàn (XA-17935)")
    # Each commune of Nam Đàn now owes June's report, with its due date and its origin.
    copies = [i for i in items_for(ctx, "X.2", "2025-06") if i.agency_code in heirs]
    assert sorted(i.agency_code for i in copies) == sorted(heirs)
    for copy in copies:
        assert (copy.status, copy.due) == (ItemStatus.OPEN, D("2025-06-20"))
        assert copy.original_agency_code == "HUYEN-NAM-DAN"
    (trail,) = audits(ctx, "transfer_succession", june.id)
    assert trail.detail["from"] == "HUYEN-NAM-DAN" and trail.detail["on"] == "2025-07-01"
    assert trail.detail["to"] == list(heirs)
    assert trail.detail["items"] == {c.agency_code: c.id for c in copies}
    created = audits(ctx, "created_by_succession")
    assert {int(a.entity_id) for a in created} >= {c.id for c in copies}
    # No district item stays open; nothing moves twice; the communes' ladder starts.
    open_district = count(
        ctx,
        DeadlineItem,
        DeadlineItem.agency_code.like("HUYEN-%"),
        DeadlineItem.status == ItemStatus.OPEN,
    )
    assert open_district == 0
    assert sweep(ctx, D("2025-07-02")).transferred == 0
    assert steps_of(ctx, copies[0].id)[-1][0] == "overdue_5"


def test_from_july_every_commune_owes_the_monthly_report_and_no_district_does(ctx):
    sweep(ctx, D("2025-08-25"))
    august = items_for(ctx, "X.2", "2025-08")
    owners = [i.agency_code for i in august]
    communes = {a.code for a in ctx.registry.members("GRP-UBND-XA", on=D("2025-08-25"))}
    assert len(communes) == 130 and communes <= set(owners)
    assert len(owners) == len(set(owners))  # one item each
    kinds = {ctx.registry.get(code).kind for code in owners}
    assert "district" not in kinds
    assert {i.due for i in august} == {D("2025-08-22")}
    assert all(i.original_agency_code is None for i in august)
    # The quarterly report too: Q3 is the communes' own; Q2 was the districts', and what
    # a district left open on 30/6 was handed to its communes.
    q3 = {i.agency_code: i for i in items_for(ctx, "X.1", "2025-Q3")}
    assert communes <= q3.keys() and not any(c.startswith("HUYEN-") for c in q3)
    q2 = {i.agency_code: i for i in items_for(ctx, "X.1", "2025-Q2")}
    assert q2["HUYEN-NAM-DAN"].status in (ItemStatus.CANCELLED, ItemStatus.DONE)
    inherited = [i for code, i in q2.items() if code in communes]
    assert inherited and all(
        i.original_agency_code.startswith(("HUYEN-", "TX-", "TP-")) for i in inherited
    )


def test_a_split_departments_items_follow_their_function(ctx):
    # Three decisions reach the labour department on 26/2/2025; their II.1b items are due
    # 3/3, after it is dissolved on 28/2 and its functions are split.
    for document, function in (
        ("1/QĐ-BLĐTBXH", "bao-tro-xa-hoi"),
        ("2/QĐ-BLĐTBXH", "giao-duc-nghe-nghiep"),
        ("3/QĐ-BLĐTBXH", None),
    ):
        record_event(ctx, II_1B, "SO-LDTBXH", D("2025-02-26"), document, function=function)
    # Home Affairs carries on, but its religious affairs go to a new department.
    record_event(ctx, II_1B, "SO-NV", D("2025-02-27"), "4/QĐ-BNV", function="tin-nguong-ton-giao")
    record_event(ctx, II_1B, "SO-NV", D("2025-02-27"), "5/QĐ-BNV")
    with session_scope(ctx.db) as session:
        before = {
            e.document: i.id
            for i, e in session.execute(
                select(DeadlineItem, Event).join(Event, Event.id == DeadlineItem.event_id)
            ).all()
        }
    sweep(ctx, D("2025-03-03"))
    with session_scope(ctx.db) as session:
        now = {doc: session.get(DeadlineItem, item_id) for doc, item_id in before.items()}
    owners = {doc: (i.agency_code, i.original_agency_code, i.status) for doc, i in now.items()}
    assert owners == {
        "1/QĐ-BLĐTBXH": ("SO-YT", "SO-LDTBXH", ItemStatus.OPEN),
        "2/QĐ-BLĐTBXH": ("SO-GDDT", "SO-LDTBXH", ItemStatus.OPEN),
        "3/QĐ-BLĐTBXH": ("SO-NV", "SO-LDTBXH", ItemStatus.OPEN),
        "4/QĐ-BNV": ("SO-DTTG", "SO-NV", ItemStatus.OPEN),
        "5/QĐ-BNV": ("SO-NV", None, ItemStatus.OPEN),
    }
    trail = audits(ctx, "transfer_succession", now["1/QĐ-BLĐTBXH"].id)
    assert [a.detail for a in trail] == [{"from": "SO-LDTBXH", "to": "SO-YT", "on": "2025-03-03"}]
    # A decision recorded later for the dissolved department goes straight to the holder.
    later = record_event(
        ctx, II_1B, "SO-LDTBXH", D("2025-03-10"), "6/QĐ-BLĐTBXH", function="bao-tro-xa-hoi"
    )
    with session_scope(ctx.db) as session:
        (owner,) = session.scalars(
            select(DeadlineItem.agency_code).where(DeadlineItem.event_id == later.event_id)
        ).all()
    assert owner == "SO-YT"


def test_an_unknown_function_is_refused_with_the_known_ones(ctx):
    with pytest.raises(EngineError, match="Lĩnh vực không hợp lệ: 'y-te'") as info:
        record_event(ctx, II_1B, "SO-YT", D("2025-04-25"), "7/QĐ", function="y-te")
    assert "bao-tro-xa-hoi: Bảo trợ xã hội" in str(info.value)
    assert count(ctx, Event) == 0


def test_the_766_results_are_published_once_a_month(ctx):
    sweep(ctx, D("2025-03-03"))
    monthly = [
        (i.period_key, i.due)
        for i in (
            *[x for k in range(2, 13) for x in items_for(ctx, "V.7", f"2025-{k:02d}")],
            *[x for k in range(1, 13) for x in items_for(ctx, "B.III.2.b.4", f"2025-{k:02d}")],
        )
    ]
    # V.7 and body duty B.III.2.b.4 are one duty: one item a month, from February.
    assert [key for key, _ in monthly] == [f"2025-{k:02d}" for k in range(2, 13)]
    assert monthly[0][1] == D("2025-02-28")
    assert count(ctx, DeadlineItem, DeadlineItem.agency_code == "VP-UBND") == len(
        {(i.obligation_id, i.period_key) for i in all_items(ctx, "VP-UBND")}
    )


def all_items(ctx, agency: str) -> list[DeadlineItem]:
    with session_scope(ctx.db) as session:
        return list(session.scalars(select(DeadlineItem).where(DeadlineItem.agency_code == agency)))


def test_items_of_an_agency_dissolved_without_successor_are_closed_with_the_reason(
    tmp_path, database_url
):
    # A province dissolves Sở Ngoại vụ on 31/5/2025 and names no successor.
    registry = Path(__file__).resolve().parents[2] / "plans" / "agencies.yaml"
    text = registry.read_text(encoding="utf-8")
    block = text.index("  - code: SO-NGV\n")
    end = text.index("\n  - code:", block + 5)
    changed = text[block:end].replace("active_to: null", "active_to: 2025-05-31")
    dissolved = tmp_path / "agencies.yaml"
    dissolved.write_text(text[:block] + changed + text[end:], encoding="utf-8")
    ctx = EngineContext.open(database_url, registry_path=dissolved)
    sweep(ctx, D("2025-05-26"))
    may = item_of(ctx, "X.2", "SO-NGV", D("2025-05-22"))
    sweep(ctx, D("2025-06-02"))
    with session_scope(ctx.db) as session:
        row = session.get(DeadlineItem, may.id)
    assert row.status == ItemStatus.CANCELLED and "31/05/2025" in row.evidence
    assert "không có cơ quan kế thừa" in row.evidence
    assert audits(ctx, "cancel_orphaned", may.id)
    ctx.db.dispose()


def test_partitioned_sweeps_equal_one_whole_sweep(database_url, tmp_path):
    from flows.engine import agency_partitions

    whole = EngineContext.open(f"sqlite:///{tmp_path}/whole.db")
    sweep(whole, D("2025-02-24"))
    sweep(whole, D("2025-03-18"))
    split = EngineContext.open(database_url)
    parts = agency_partitions(split, 3)
    assert sorted(c for p in parts for c in p) == sorted(split.registry.agencies)
    for day in (D("2025-02-24"), D("2025-03-18")):
        for part in parts:
            sweep(split, day, agencies=part, partition=f"p{parts.index(part)}")

    assert natural_keys(split)[0] == natural_keys(whole)[0]
    whole.db.dispose()
    split.db.dispose()
