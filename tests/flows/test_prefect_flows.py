"""The flows on a real Prefect server (ephemeral) and a real database (SQLite, and
PostgreSQL when configured): each does its job, a second run changes nothing, and a bad
parameter fails the run with a Vietnamese message instead of a traceback."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from flows.admin import complete_item_flow, inspect_flow, recompute_flow, record_event_flow
from flows.daily_sweep import daily_sweep
from flows.engine import EngineContext, EngineError, complete_item, sweep
from flows.obligation import obligation_flow
from flows.outbox_flow import deliver_outbox
from flows.parameters import ParameterError
from flows.states import NAMED_AGENCIES, Overdue
from flows.steps import sweep_deadlines
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
from tests.flows.prefect_support import (
    artifacts_of,
    count,
    events_since,
    log_messages,
    rows,
    table_of,
)

pytestmark = pytest.mark.usefixtures("prefect_api")

D = date.fromisoformat
X2_CODES = select(DeadlineItem.agency_code).join(Obligation).where(Obligation.number == "X.2")
CODE_II_1B = "nhan-duoc-quyet-dinh-cong-bo-tthc-cua-bo-truong-cac-bo-nganh-trung-uong"


def prepare(url: str, day: str, done: tuple[str, str, str] | None = None) -> None:
    """The state a flow under test starts from, made by the engine directly (faster):
    a sweep on `day`, then `done` = (obligation number, agency, completion day)."""
    ctx = EngineContext.open(url)
    sweep(ctx, D(day))
    if done is not None:
        number, agency, on = done
        ((item_id,),) = rows(
            url,
            select(DeadlineItem.id)
            .join(Obligation)
            .where(Obligation.number == number, DeadlineItem.agency_code == agency),
        )
        complete_item(ctx, item_id, D(on), "KH 45/KH-UBND")
    ctx.db.dispose()


def snapshot(url: str) -> tuple[int, ...]:
    models = (DeadlineItem, Escalation, Notification, Event, AuditLog)
    return tuple(count(url, model) for model in models)


def escalations_of(url: str, number: str) -> list[tuple]:
    return rows(
        url,
        select(DeadlineItem.id, DeadlineItem.due, Escalation.step, Escalation.notified)
        .join(Escalation, Escalation.item_id == DeadlineItem.id)
        .join(Obligation, Obligation.id == DeadlineItem.obligation_id)
        .where(Obligation.number == number)
        .order_by(DeadlineItem.id, Escalation.rank),
    )


# --------------------------------------------------------------- obligation flow


def test_an_obligation_run_escalates_its_items_once_and_publishes_them(dunghan_env, since):
    url = dunghan_env
    state = obligation_flow("X.2", date="2025-03-24", return_state=True)
    # The run did its work and says, in its state, that March's reports are late.
    assert state.is_failed() and state.name == "Quá hạn", state.message
    overdue = state.result(raise_on_failure=False)
    assert isinstance(overdue, Overdue) and str(overdue) == state.message
    counts = overdue.counts
    # Only this obligation's items: "Trước ngày 23 hàng tháng" for every department and
    # district, from the plan's start (24/2/2025) to December.
    numbers = {n for (n,) in rows(url, select(Obligation.number).join(DeadlineItem))}
    assert numbers == {"X.2"}
    agencies = {code for (code,) in rows(url, X2_CODES.where(DeadlineItem.period_key == "2025-03"))}
    assert counts["created"] == count(url, DeadlineItem)
    # A department owes March to December; a district only until its dissolution (30/6),
    # and the communes that took over its duties from July to December.
    assert count(url, DeadlineItem, DeadlineItem.agency_code == "SO-TP") == 10
    assert count(url, DeadlineItem, DeadlineItem.agency_code == "HUYEN-ANH-SON") == 4
    assert count(url, DeadlineItem, DeadlineItem.agency_code == "XA-17329") == 6
    # March's due date, 22/3 (a Saturday), rolled back to Friday 21/3; on Monday 24/3 each
    # of its items has reached three steps, and only the highest is notified.
    steps = escalations_of(url, "X.2")
    assert {due for _, due, _, _ in steps} == {D("2025-03-21")}
    assert len(steps) == 3 * len(agencies) == counts["new_escalations"]
    assert {(step, notified) for _, _, step, notified in steps} == {
        ("remind_before", False),
        ("due_today", False),
        ("overdue_1", True),
    }
    assert count(url, Notification) == counts["notifications"] > 0

    table = table_of(artifacts_of(state)["obligation-nghe-an-2025-kstthc-x-2"])
    march = [row for row in table if row["Hạn"] == "21/03/2025"]
    assert len(march) == len(agencies)
    assert {row["Trạng thái"] for row in march} == {"Quá hạn 1 ngày làm việc"}
    assert {row["Bậc đôn đốc đã đạt"] for row in march} == {
        "Quá hạn 1 ngày làm việc — đôn đốc thủ trưởng cơ quan"
    }
    # The next occurrence (April) is listed too, not yet in the ladder's reach.
    assert {row["Hạn"] for row in table} == {"21/03/2025", "22/04/2025"}

    events = events_since("dunghan.escalation.reached", since, counts["new_escalations"])
    assert len(events) == len(steps)
    event = next(e for e in events if e.resource["dunghan.step"] == "overdue_1")
    item_id = int(event.resource.id.removeprefix("dunghan.item."))
    ((code,),) = rows(url, select(DeadlineItem.agency_code).where(DeadlineItem.id == item_id))
    assert event.resource["dunghan.agency"] == code
    roles = {r.role: r.id for r in event.related}
    assert roles["agency"] == f"dunghan.agency.{code}"
    assert roles["obligation"] == "dunghan.obligation.nghe-an-2025-kstthc.X.2"
    assert roles["plan"] == "dunghan.plan.nghe-an-2025-kstthc"
    assert roles["flow-run"] == f"prefect.flow-run.{state.state_details.flow_run_id}"
    assert event.payload["due"] == "2025-03-21" and event.payload["notified"] is True
    # Every agency late on 21/3 is named in the state's message, one item each.
    assert state.message.startswith(
        f"Nhiệm vụ X.2: {len(agencies)} việc quá hạn ngày 24/03/2025 — "
    )
    named = state.message.split(" — ", 1)[1]
    assert named.count("(1)") == NAMED_AGENCIES
    assert named.endswith(f"và {len(agencies) - NAMED_AGENCIES} cơ quan khác.")

    before = snapshot(url)
    again = obligation_flow("X.2", date="2025-03-24", return_state=True)
    assert again.name == "Quá hạn" and again.message == state.message
    repeated = again.result(raise_on_failure=False).counts
    assert repeated["created"] == repeated["new_escalations"] == 0
    assert snapshot(url) == before
    assert len(events_since("dunghan.escalation.reached", since, len(steps))) == len(steps)


def test_an_obligation_run_on_a_day_off_records_why_and_does_nothing_unless_forced(dunghan_env):
    url = dunghan_env
    state = obligation_flow("X.2", date="2025-04-30", return_state=True)
    assert state.is_completed() and state.name == "Ngày nghỉ"
    assert "Ngày Chiến thắng" in state.result()["skipped"] and "Ngày Chiến thắng" in state.message
    assert count(url, DeadlineItem) == 0
    (reason,) = rows(url, select(SweepRun.skipped_reason))[0]
    assert "ngày nghỉ" in reason
    forced = obligation_flow("X.2", date="2025-04-30", force=True, return_state=True)
    assert forced.name == "Quá hạn"  # March's reports are still overdue
    assert forced.result(raise_on_failure=False).counts["created"] == count(url, DeadlineItem) > 0


def test_an_obligation_with_nothing_overdue_ends_on_time(dunghan_env):
    """On 18/3 March's reports are not yet due (21/3): the run ends Đúng hạn; on 24/3 one
    agency that reported on 20/3 is not named among the late ones."""
    state = obligation_flow(
        "X.2 — Báo cáo công tác cải cách TTHC hằng tháng", date="2025-03-18", return_state=True
    )
    assert state.is_completed() and state.name == "Đúng hạn", state.message
    assert state.message == "Nhiệm vụ X.2: không có việc quá hạn ngày 18/03/2025."
    assert state.result()["created"] > 0
    ((item_id,),) = rows(
        dunghan_env,
        select(DeadlineItem.id)
        .join(Obligation)
        .where(
            Obligation.number == "X.2",
            DeadlineItem.agency_code == "SO-TP",
            DeadlineItem.due == D("2025-03-21"),
        ),
    )
    ctx = EngineContext.open(dunghan_env)
    complete_item(ctx, item_id, D("2025-03-20"), "Báo cáo 12/BC-STP")
    ctx.db.dispose()
    late = obligation_flow("X.2", date="2025-03-24", return_state=True)
    assert late.name == "Quá hạn" and "Sở Tư pháp" not in late.message
    with pytest.raises(Overdue, match=r"Nhiệm vụ X\.2: .* việc quá hạn ngày 24/03/2025"):
        obligation_flow("X.2", date="2025-03-24")


# ------------------------------------------------------------------ daily sweep


def test_the_daily_sweep_escalates_every_obligation_once_and_reports(dunghan_env, since):
    url = dunghan_env
    state = daily_sweep(date="2025-04-02", return_state=True)
    assert state.is_completed(), state.message
    counts = state.result()
    assert counts["created"] == count(url, DeadlineItem)
    assert counts["new_escalations"] == count(url, Escalation) > 0
    numbers = {n for (n,) in rows(url, select(Obligation.number).join(DeadlineItem))}
    assert {"I.1", "X.2", "V.7"} <= numbers

    found = artifacts_of(state)
    summary = found["daily-sweep"].data
    assert summary.startswith("# Quét hạn ngày 02/04/2025")
    assert f"| Việc mới tạo | {counts['created']} |" in summary
    table = table_of(found["daily-sweep-overdue"])
    overdue = dict(
        rows(
            url,
            select(DeadlineItem.agency_code, func.count())
            .where(DeadlineItem.status == ItemStatus.OPEN, DeadlineItem.due < D("2025-04-02"))
            .group_by(DeadlineItem.agency_code),
        )
    )
    assert {row["Mã cơ quan"]: row["Việc quá hạn"] for row in table} == overdue
    totals = [row["Việc quá hạn"] for row in table]
    assert totals == sorted(totals, reverse=True)
    step_columns = set(table[0]) - {"Cơ quan", "Mã cơ quan", "Việc quá hạn", "Hạn sớm nhất"}
    assert sum(row[c] for row in table for c in step_columns) == sum(overdue.values())

    events = events_since("dunghan.escalation.reached", since, counts["new_escalations"])
    assert len(events) == counts["new_escalations"]
    assert {e.resource["dunghan.step"] for e in events} == {
        step for (step,) in rows(url, select(Escalation.step).distinct())
    }

    # The sweep ends by delivering the day's mail: every queued message is out (.eml).
    delivered = list((Path(os.environ["DUNGHAN_OUTBOX_DIR"])).glob("*.eml"))
    assert len(delivered) == count(url, Notification) > 0
    assert count(url, Notification, Notification.status == "sent") == len(delivered)

    before = snapshot(url)
    again = daily_sweep(date="2025-04-02", return_state=True).result()
    assert again["created"] == again["new_escalations"] == again["notifications"] == 0
    assert snapshot(url) == before
    expected = counts["new_escalations"]
    assert len(events_since("dunghan.escalation.reached", since, expected)) == expected


def test_the_daily_sweep_skips_days_off_but_not_worked_saturdays(dunghan_env):
    url = dunghan_env
    state = daily_sweep(date="2025-04-05", return_state=True)
    assert "ngày nghỉ hằng tuần" in state.result()["skipped"]
    found = artifacts_of(state)
    assert found["daily-sweep"].data.startswith("# Không quét hạn ngày 05/04/2025")
    assert "daily-sweep-overdue" not in found  # the last table of overdue items stays
    assert count(url, DeadlineItem) == 0
    assert count(url, SweepRun, SweepRun.skipped_reason.is_not(None)) == 1
    # Saturday 26/4/2025 is worked (in exchange for Friday 2/5).
    worked = daily_sweep(date="2025-04-26", return_state=True).result()
    assert "skipped" not in worked and worked["created"] > 0


def test_a_sweep_of_some_agencies_touches_only_theirs(dunghan_env):
    url = dunghan_env
    state = daily_sweep(date="2025-04-02", agencies=["SO-TP"], return_state=True)
    assert state.is_completed(), state.message
    assert {code for (code,) in rows(url, select(DeadlineItem.agency_code).distinct())} == {"SO-TP"}
    found = artifacts_of(state)
    assert set(found) == {"daily-sweep-so-tp", "daily-sweep-overdue-so-tp"}
    assert [row["Mã cơ quan"] for row in table_of(found["daily-sweep-overdue-so-tp"])] == ["SO-TP"]


# ------------------------------------------------------------------ admin flows


def test_recording_an_event_creates_its_items_and_announces_it_once(dunghan_env, since):
    url = dunghan_env
    state = record_event_flow(
        event_code=CODE_II_1B,
        agency="SO-TP",
        date="2025-03-10",
        document="QĐ 12/QĐ-BTP",
        return_state=True,
    )
    assert state.is_completed(), state.message
    result = state.result()
    assert result["obligations"] == [["nghe-an-2025-kstthc", "II.1b"]]
    assert not result["already_recorded"]
    # "Sau 03 ngày làm việc kể từ ngày nhận được …": Monday 10/3 + 3 working days.
    (item,) = rows(url, select(DeadlineItem.id, DeadlineItem.agency_code, DeadlineItem.due))
    assert item == (result["created_items"][0], "SO-TP", D("2025-03-13"))

    (event,) = events_since("dunghan.event.recorded", since, 1)
    assert event.resource.id == f"dunghan.event.{result['event_id']}"
    assert event.resource["dunghan.event-code"] == CODE_II_1B
    assert event.resource["dunghan.agency"] == "SO-TP"
    assert {r.id for r in event.related} >= {
        "dunghan.agency.SO-TP",
        "dunghan.obligation.nghe-an-2025-kstthc.II.1b",
    }
    assert event.payload["items"] == [{"id": item[0], "agency": "SO-TP", "due": "2025-03-13"}]
    markdown = artifacts_of(state)["recorded-event"].data
    assert "13/03/2025" in markdown and "II.1b" in markdown

    before = snapshot(url)
    again = record_event_flow(
        event_code=CODE_II_1B, agency="SO-TP", date="2025-03-10", document="QĐ 12/QĐ-BTP"
    )
    assert again["already_recorded"] and again["created_items"] == []
    assert snapshot(url) == before
    assert len(events_since("dunghan.event.recorded", since, 1)) == 1


def test_completing_an_item_keeps_lateness_and_refuses_to_overwrite(dunghan_env):
    url = dunghan_env
    prepare(url, "2025-03-03")
    ((item_id,),) = rows(
        url,
        select(DeadlineItem.id)
        .join(Obligation)
        .where(Obligation.number == "I.1", DeadlineItem.agency_code == "VP-UBND"),
    )
    done = complete_item_flow(item_id=item_id, date="2025-03-03", evidence="KH 45/KH-UBND")
    assert done == {
        "item_id": item_id,
        "status": ItemStatus.DONE_LATE,
        "due": "2025-02-28",
        "completed_on": "2025-03-03",
        "changed": True,
    }
    before = snapshot(url)
    again = complete_item_flow(item_id=item_id, date="2025-03-03", evidence="KH 45/KH-UBND")
    assert again["changed"] is False and snapshot(url) == before
    state = complete_item_flow(
        item_id=item_id, date="2025-03-04", evidence="KH 46/KH-UBND", return_state=True
    )
    assert state.is_failed() and "đã đóng" in state.message
    assert snapshot(url) == before


def test_an_inspection_reports_compliance_as_markdown_and_html(dunghan_env, tmp_path):
    url = dunghan_env
    prepare(url, "2025-04-02", done=("I.1", "VP-UBND", "2025-03-03"))
    state = inspect_flow(
        agency="VP-UBND",
        from_date="2025-02-01",
        to_date="2025-04-30",
        date="2025-04-02",
        return_state=True,
    )
    assert state.is_completed(), state.message
    result = state.result()
    in_range = rows(
        url,
        select(DeadlineItem.status, DeadlineItem.due).where(
            DeadlineItem.agency_code == "VP-UBND",
            DeadlineItem.due.between(D("2025-02-01"), D("2025-04-30")),
        ),
    )
    assert result["total"] == len(in_range)
    assert result["done_late"] == 1 and result["done"] == 0
    assert result["overdue"] == sum(
        1 for status, due in in_range if status == "open" and due < D("2025-04-02")
    )
    assert result["open"] == sum(
        1 for status, due in in_range if status == "open" and due >= D("2025-04-02")
    )
    html = tmp_path / "reports" / "kiem-tra-vp-ubnd-toan-bo-2025-02-01-2025-04-30.html"
    assert result["html"] == str(html)
    page = html.read_text(encoding="utf-8")
    assert "Văn phòng Ủy ban nhân dân tỉnh Nghệ An" in page and "KH 45/KH-UBND" in page
    markdown = artifacts_of(state)["inspection-vp-ubnd"].data
    assert "| Hoàn thành trễ hạn | 1 |" in markdown
    assert str(html) in markdown

    before = snapshot(url)
    inspect_flow(agency="VP-UBND", from_date="2025-02-01", to_date="2025-04-30", date="2025-04-02")
    assert html.read_text(encoding="utf-8") == page and snapshot(url) == before


def test_recompute_moves_open_items_after_a_calendar_change_once(
    dunghan_env, tmp_path, monkeypatch
):
    url = dunghan_env
    prepare(url, "2025-03-03")
    march = (
        select(DeadlineItem.id)
        .join(Obligation)
        .where(Obligation.number == "X.2", DeadlineItem.due == D("2025-03-21"))
    )
    ids = {i for (i,) in rows(url, march)}
    assert ids
    # The province gives Friday 21/3/2025 off: X.2's March due date rolls back to 20/3.
    overrides = tmp_path / "tinh.yaml"
    overrides.write_text(
        "overrides:\n  - {date: 2025-03-21, kind: off, name: Nghỉ theo quyết định của tỉnh, "
        "source: QĐ 99/QĐ-UBND}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("DUNGHAN_CALENDAR_OVERRIDES", str(overrides))
    total = count(url, DeadlineItem)

    state = recompute_flow(date="2025-03-10", return_state=True)
    assert state.is_completed(), state.message
    result = state.result()
    moved = rows(
        url,
        select(DeadlineItem.id, DeadlineItem.due, DeadlineItem.period_key).where(
            DeadlineItem.id.in_(ids)
        ),
    )
    assert {(due, key) for _, due, key in moved} == {(D("2025-03-20"), "2025-03")}
    assert result["moved"] == count(url, DeadlineItem, DeadlineItem.due == D("2025-03-20")) > 0
    markdown = artifacts_of(state)["recompute"].data
    assert "21/03/2025 | 20/03/2025" in markdown
    assert "Nghỉ theo quyết định của tỉnh" in markdown and "trước ngày 23" in markdown

    before = snapshot(url)
    again = recompute_flow(date="2025-03-10")
    assert again["moved"] == 0
    assert snapshot(url) == before
    assert count(url, DeadlineItem) == total


# ----------------------------------------------------------------- bad parameters


@pytest.fixture
def sqlite_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DUNGHAN_DATABASE_URL", f"sqlite:///{tmp_path}/t.db")
    monkeypatch.setenv("DUNGHAN_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.delenv("DUNGHAN_CALENDAR_OVERRIDES", raising=False)


@pytest.mark.parametrize(
    ("flow", "parameters", "message"),
    [
        (obligation_flow, {"number": "Z.9"}, "Không có nhiệm vụ số 'Z.9' trong kế hoạch"),
        (obligation_flow, {"number": "X.2", "date": "24/3/2025"}, "Tham số date không hợp lệ"),
        (daily_sweep, {"date": "2025-02-30"}, "Cần ngày dạng YYYY-MM-DD"),
        (daily_sweep, {"date": "1990-01-02"}, "nằm ngoài phạm vi lịch"),
        (daily_sweep, {"date": "2025-04-02", "agencies": ["SO-XYZ"]}, "Mã cơ quan không hợp lệ"),
        (
            record_event_flow,
            {"event_code": "mua-lu", "agency": "SO-TP", "date": "2025-03-10"},
            "Loại sự kiện không hợp lệ: 'mua-lu'",
        ),
        (
            record_event_flow,
            {"event_code": CODE_II_1B, "agency": "SO-XYZ", "date": "2025-03-10"},
            "Mã cơ quan không hợp lệ: 'SO-XYZ'",
        ),
        (complete_item_flow, {"item_id": 1, "evidence": " "}, "cần ghi bằng chứng"),
        (
            inspect_flow,
            {"agency": "SO-TP", "from_date": "2025-05-01", "to_date": "2025-04-01"},
            "ngày kết thúc 01/04/2025 trước ngày bắt đầu 01/05/2025",
        ),
        (
            inspect_flow,
            {"agency": "SO-TP", "from_date": "2025-01-01", "to_date": "2025-12-31", "section": "Z"},
            "Không có mục 'Z' trong kế hoạch",
        ),
        (recompute_flow, {"date": "hôm qua"}, "Tham số date không hợp lệ"),
        (
            complete_item_flow,
            {"item_id": "bốn mươi hai", "evidence": "CV 1"},
            "Tham số item_id không hợp lệ: 'bốn mươi hai'. Cần một số nguyên, ví dụ 42.",
        ),
        (
            inspect_flow,
            {"agency": "SO-TP", "from_date": "", "to_date": "31/12/2025"},
            "Tham số from_date không hợp lệ: ''. Cần ngày dạng YYYY-MM-DD, ví dụ 2025-03-24.\n"
            "Tham số to_date không hợp lệ: '31/12/2025'.",
        ),
        (
            daily_sweep,
            {"date": "2025-04-02", "agencies": "SO-TP — Sở Tư pháp tỉnh Nghệ An"},
            "Tham số agencies không hợp lệ",
        ),
    ],
)
def test_a_bad_parameter_fails_the_run_with_a_message_not_a_traceback(
    sqlite_env, flow, parameters, message
):
    state = flow(**parameters, return_state=True)
    assert state.is_failed() and state.name == "Từ chối"
    assert message in state.message
    logs = log_messages(state)
    assert any(message in line for line in logs)
    assert not any("Traceback" in line for line in logs)


def test_a_bad_parameter_raises_a_value_error_to_a_caller(sqlite_env):
    with pytest.raises(ParameterError, match="Tham số date không hợp lệ: '2025-3-5'") as raised:
        daily_sweep(date="2025-3-5")
    assert isinstance(raised.value, EngineError) and isinstance(raised.value, ValueError)
    with pytest.raises(EngineError, match=r"Không có nhiệm vụ số 'Z\.9'"):
        obligation_flow("Z.9")


# ---------------------------------------------------------------------- retries


def test_a_locked_database_is_retried_and_a_refusal_is_not(dunghan_env, monkeypatch):
    calls = []

    def flaky(*args, **kwargs):
        calls.append("locked" if not calls else "ok")
        if calls == ["locked"]:
            raise OperationalError("UPDATE deadline_item", {}, Exception("database is locked"))
        return sweep(*args, **kwargs)

    monkeypatch.setattr("flows.engine.sweep", flaky)
    monkeypatch.setattr(
        "flows.daily_sweep.sweep_deadlines", sweep_deadlines.with_options(retry_delay_seconds=0)
    )
    state = daily_sweep(date="2025-04-02", return_state=True)
    assert state.is_completed(), state.message
    assert calls == ["locked", "ok"]
    assert state.result()["created"] == count(dunghan_env, DeadlineItem)

    def refusing(*args, **kwargs):
        calls.append("refused")
        raise EngineError("Số phân vùng phải từ 1 trở lên.")

    monkeypatch.setattr("flows.engine.sweep", refusing)
    state = daily_sweep(date="2025-04-03", return_state=True)
    assert state.is_failed() and state.message == "Số phân vùng phải từ 1 trở lên."
    assert calls.count("refused") == 1


def test_the_outbox_flow_delivers_what_is_due_once(dunghan_env):
    url = dunghan_env
    ctx = EngineContext.open(url)
    sweep(ctx, D("2025-03-18"))
    ctx.db.dispose()
    queued = count(url, Notification)
    state = deliver_outbox(return_state=True)
    assert state.is_completed(), state.message
    assert state.result() == {"sent": queued, "retry": 0, "failed": 0, "error": None}
    assert len(list(Path(os.environ["DUNGHAN_OUTBOX_DIR"]).glob("*.eml"))) == queued
    assert deliver_outbox()["sent"] == 0  # nothing is sent twice


# ------------------------------------------------------------ announcing after a crash


def test_escalations_a_dead_run_recorded_are_announced_by_the_next_run_once(dunghan_env, since):
    from flows.announce import LEASE, emit_stored, flush_events
    from models.store import utcnow
    from models.tables import Announcement

    url = dunghan_env
    # A run swept 24/3/2025 and died before announcing anything; another one emitted a
    # third of the events and died before the server confirmed them.
    ctx = EngineContext.open(url)
    reached = len(sweep(ctx, D("2025-03-24"), numbers=["X.2"], announce=True).escalations)
    assert reached > 3
    with ctx.db.begin() as connection:
        pending = connection.execute(
            select(
                Announcement.id,
                Announcement.event_id,
                Announcement.name,
                Announcement.resource,
                Announcement.related,
                Announcement.payload,
                Announcement.occurred,
            ).order_by(Announcement.id)
        ).all()
        tried = pending[: len(pending) // 3]
        connection.execute(
            Announcement.__table__.update()
            .where(Announcement.id.in_([row.id for row in tried]))
            .values(attempted_at=utcnow() - LEASE * 2)
        )
    ctx.db.dispose()
    assert len(pending) == reached
    emit_stored(tried)
    assert flush_events(60)

    state = obligation_flow("X.2", date="2025-03-24", return_state=True)
    assert state.name == "Quá hạn", state.message  # March's reports are overdue
    assert state.result(raise_on_failure=False).counts["new_escalations"] == 0  # all recorded
    events = events_since("dunghan.escalation.reached", since, reached)
    assert len(events) == reached
    keys = {(e.resource.id, e.resource["dunghan.step"]) for e in events}
    assert len(keys) == reached  # each step of each item once
    assert {str(e.id) for e in events} == {row.event_id for row in pending}
    assert count(url, Announcement, Announcement.announced_at.is_(None)) == 0
    logs = log_messages(state)
    assert any(f"({len(tried)} đã được một lần chạy trước gửi tới máy chủ)" in m for m in logs)

    again = obligation_flow("X.2", date="2025-03-24", return_state=True)
    assert again.name == "Quá hạn", again.message
    assert len(events_since("dunghan.escalation.reached", since, reached)) == reached
