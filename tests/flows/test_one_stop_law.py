"""The proof of issue 10: dossiers of July–August 2025 worked out by hand, on SQLite and
PostgreSQL, through the import, the daily sweep, `kpi`, the scorecard, `dossiers explain`
and the public late list, which must agree on every one of them.

The 2025 calendar around them: no holiday in July or August; Saturdays and Sundays off.
Procedures (plans/sample-procedures.csv): 1.002835 five working days (SO-XD), 1.001612
three working days (SO-TC). The day of receipt is not counted (Civil Code Art. 147) and
a limit ends at 24:00 of its last day (Art. 148), stored as 23:59:59.

  R-0630     received Mon 30/6 09:00, Decree 61/2018: 1, 2, 3, 4, 7 July -> due 7/7.
             Done 7/7 18:00: after office hours, on time (24:00).
  R-0701     received Tue 1/7 09:00, Decree 118/2025: 2, 3, 4, 7, 8 -> due 8/7. Done 8/7.
  W-END      received Mon 21/7: due 28/7. Supplement asked Wed 23/7 10:00, still missing at
             the end of July: waiting, never late. (Second export: complete Mon 4/8 14:00,
             the limit restarts: 5, 6, 7, 8, 11 August; done Fri 8/8: on time.)
  RESTART    received Mon 7/7 08:00: due Thu 10/7, the slip says 10/7 17:00. Supplement
             asked Wed 9/7 16:00, complete Mon 14/7 09:00: restart, due Thu 17/7. Done
             17/7 15:00: on time by law; the portal pauses instead (10/7 17:00 + 4 days
             17 hours = Tue 15/7 10:00): late on its clock. The clocks disagree.
  TWICE      received Tue 1/7: due Fri 4/7; asked twice (last Thu 3/7 10:00), complete Mon
             7/7 09:00: due Thu 10/7; done Wed 9/7: on time by law, late for the portal,
             a breach of "chỉ được yêu cầu bổ sung một lần".
  AP-2D      received Mon 7/7: due Mon 14/7; apology Thu 10/7 (two days before): timely.
  AP-DUE     same due date; apology on the due day itself: late apology.
  AP-AFTER   same due date; apology Tue 15/7: late apology. All three done late.
  SLIP       received Wed 9/7: due Wed 16/7; the slip promises Thu 17/7 17:00, one working
             day later than the law allows. Done 15/7: on time.
  CLOSED     received Mon 14/7: due 21/7; supplement asked Tue 15/7 09:00, never brought:
             waiting at the end of July; closed Fri 1/8 (second export).
  OPEN-LATE  received Tue 22/7: due Tue 29/7; still open on 1/8: late, without apology.
             (Second export: done Tue 5/8.)
"""

from __future__ import annotations

import csv
import re
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from deadlines.export_columns import DOSSIER_COLUMNS
from flows.cli import app
from flows.dossiers import (
    FACTS,
    SqlOps,
    appointments_beyond_law,
    dossier_alerts,
    kpis,
    late_legal_in_month,
    late_officials,
    month_bounds,
)
from flows.engine import EngineContext
from flows.reports.scorecard import measure, report_html, scorecard_table
from models.db import session_scope
from models.dossier_import import import_dossiers, import_procedures
from models.tables import Dossier, Notification

PROCEDURES = Path(__file__).resolve().parents[2] / "plans" / "sample-procedures.csv"
T = datetime.fromisoformat
XD, TC = ("1.002835", "SO-XD"), ("1.001612", "SO-TC")


def row(
    dossier_id,
    kind,
    channel,
    received,
    completed="",
    *,
    supplement=("", ""),
    apology=("", ""),
    requests="",
    closed="",
    appointment="",
    handler="",
):
    procedure, agency = kind
    return {
        "dossier_id": dossier_id,
        "procedure_code": procedure,
        "agency_code": agency,
        "channel": channel,
        "received_at": received,
        "completed_at": completed,
        "supplement_requested_at": supplement[0],
        "supplement_received_at": supplement[1],
        "apology_at": apology[0],
        "apology_new_due": apology[1],
        "digitized": "1",
        "e_result": "1",
        "paid_online": "",
        "handler": handler,
        "supplement_requests": requests,
        "closed_at": closed,
        "appointment_at": appointment,
    }


# The export of Friday 1/8/2025 morning.
# fmt: off
FIRST = [
    row("R-0630", XD, "online", "2025-06-30T09:00", "2025-07-07T18:00", handler="Phạm Thị Dung"),
    row("R-0701", XD, "online", "2025-07-01T09:00", "2025-07-08T10:00", handler="Phạm Thị Dung"),
    row("W-END", XD, "online", "2025-07-21T09:00", supplement=("2025-07-23T10:00", ""),
        handler="Hoàng Văn Em"),
    row("RESTART", TC, "online", "2025-07-07T08:00", "2025-07-17T15:00",
        supplement=("2025-07-09T16:00", "2025-07-14T09:00"), appointment="2025-07-10T17:00",
        handler="Nguyễn Thị Hoa"),
    row("TWICE", TC, "direct", "2025-07-01T09:00", "2025-07-09T16:00",
        supplement=("2025-07-03T10:00", "2025-07-07T09:00"), requests="2",
        handler="Nguyễn Thị Hoa"),
    row("AP-2D", XD, "online", "2025-07-07T09:00", "2025-07-16T10:00",
        apology=("2025-07-10T10:00", "2025-07-18T17:00"), handler="Nguyễn Văn An"),
    row("AP-DUE", XD, "direct", "2025-07-07T10:00", "2025-07-17T10:00",
        apology=("2025-07-14T09:00", "2025-07-18T17:00"), handler="Nguyễn Văn An"),
    row("AP-AFTER", XD, "direct", "2025-07-07T11:00", "2025-07-21T10:00",
        apology=("2025-07-15T09:00", "2025-07-21T17:00"), handler="Trần Thị Bình"),
    row("SLIP", XD, "online", "2025-07-09T10:00", "2025-07-15T10:00",
        appointment="2025-07-17T17:00", handler="Phạm Thị Dung"),
    row("CLOSED", XD, "direct", "2025-07-14T09:00", supplement=("2025-07-15T09:00", ""),
        handler="Hoàng Văn Em"),
    row("OPEN-LATE", XD, "direct", "2025-07-22T09:00", handler="Lê Văn Cường"),
]
# The export of Friday 15/8/2025: three dossiers moved on.
SECOND = [r for r in FIRST if r["dossier_id"] not in ("W-END", "CLOSED", "OPEN-LATE")] + [
    row("W-END", XD, "online", "2025-07-21T09:00", "2025-08-08T10:00",
        supplement=("2025-07-23T10:00", "2025-08-04T14:00"), handler="Hoàng Văn Em"),
    row("CLOSED", XD, "direct", "2025-07-14T09:00", supplement=("2025-07-15T09:00", ""),
        closed="2025-08-01T10:00", handler="Hoàng Văn Em"),
    row("OPEN-LATE", XD, "direct", "2025-07-22T09:00", "2025-08-05T10:00",
        handler="Lê Văn Cường"),
]
# fmt: on

FIRST_DUE = {
    "R-0630": "2025-07-07 23:59:59",
    "R-0701": "2025-07-08 23:59:59",
    "W-END": "2025-07-28 23:59:59",
    "RESTART": "2025-07-10 23:59:59",
    "TWICE": "2025-07-04 23:59:59",
    "AP-2D": "2025-07-14 23:59:59",
    "AP-DUE": "2025-07-14 23:59:59",
    "AP-AFTER": "2025-07-14 23:59:59",
    "SLIP": "2025-07-16 23:59:59",
    "CLOSED": "2025-07-21 23:59:59",
    "OPEN-LATE": "2025-07-29 23:59:59",
}
# After the restarts (second export for W-END).
LEGAL_DUE = FIRST_DUE | {
    "RESTART": "2025-07-17 23:59:59",
    "TWICE": "2025-07-10 23:59:59",
}
DUE_766 = {
    "RESTART": "2025-07-15 10:00:00",  # 10/7 17:00 + 4 d 17 h
    "TWICE": "2025-07-08 22:59:59",  # 4/7 24:00 + 3 d 23 h
    "SLIP": "2025-07-17 17:00:00",  # the slip's date
}
# July, on the legal clock: late, on time, or waiting for the citizen at the month's end.
JULY = {
    "R-0630": "on_time",
    "R-0701": "on_time",
    "W-END": "waiting",
    "RESTART": "on_time",
    "TWICE": "on_time",
    "AP-2D": "late",
    "AP-DUE": "late",
    "AP-AFTER": "late",
    "SLIP": "on_time",
    "CLOSED": "waiting",
    "OPEN-LATE": "late",
}
JULY_LATE = {k for k, v in JULY.items() if v == "late"}
JULY_KPIS = {
    # agency: dossiers, legal on time, portal on time, received, online (of received),
    # apology rate (timely ÷ late), late, late apologies, repeated supplements, waiting
    "SO-TC": (2, 1.0, 0.0, 2, 0.5, None, 0, 0, 1, 0),
    "SO-XD": (9, 0.5556, 0.5556, 8, 0.5, 0.25, 4, 2, 0, 2),
}
KEYS = (
    "dossiers",
    "on_time_rate",
    "on_time_rate_766",
    "received",
    "online_rate",
    "apology_rate",
    "late",
    "late_apologies",
    "repeated_supplements",
    "awaiting_supplement",
)
JULY_LIST = [
    ("SO-XD", "Nguyễn Văn An", 2, 1),  # AP-2D (timely apology) and AP-DUE (late apology)
    ("SO-XD", "Lê Văn Cường", 1, 1),  # OPEN-LATE
    ("SO-XD", "Trần Thị Bình", 1, 1),  # AP-AFTER
]


def write(folder: Path, rows: list[dict], name: str) -> Path:
    path = folder / name
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(DOSSIER_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def ctx(dunghan_env, tmp_path) -> EngineContext:
    context = EngineContext.open(dunghan_env)
    import_procedures(context.db, PROCEDURES)
    import_dossiers(
        context.db,
        write(tmp_path, FIRST, "first.csv"),
        context.cal,
        context.one_stop,
        now=datetime(2025, 8, 1, 7, 0),
    )
    yield context
    context.db.dispose()


def second_export(ctx: EngineContext, folder: Path) -> None:
    import_dossiers(
        ctx.db,
        write(folder, SECOND, "second.csv"),
        ctx.cal,
        ctx.one_stop,
        now=datetime(2025, 8, 15, 7, 0),
    )


def stored(ctx, column) -> dict:
    with session_scope(ctx.db) as session:
        return dict(session.execute(select(Dossier.id, column)).all())


def month_rows(ctx, month) -> dict[str, tuple]:
    with session_scope(ctx.db) as session:
        rows = kpis(session, month, rules=ctx.one_stop)
    return {r["agency"]: tuple(r[k] for k in KEYS) for r in rows}


def late_ids(ctx, month) -> set[str]:
    _, end = month_bounds(month)
    with session_scope(ctx.db) as session:
        return set(
            session.scalars(select(Dossier.id).where(late_legal_in_month(FACTS, end, SqlOps)))
        )


def explain(dossier_id: str, on: str) -> str:
    result = CliRunner().invoke(app, ["dossiers", "explain", dossier_id, "--on", on])
    assert result.exit_code == 0, result.output
    return result.output


def explained_category(text: str) -> str:
    verdict = re.search(r"theo hạn luật định — (.+)\.", text).group(1)
    if verdict.startswith("đang chờ bổ sung"):
        return "waiting"
    return "late" if verdict == "trễ hạn" else "on_time"


# --------------------------------------------------------------------- the import


def test_due_dates_regimes_and_states_are_the_hand_computed_ones(ctx, tmp_path):
    def text(values):
        return {k: f"{v:%Y-%m-%d %H:%M:%S}" for k, v in values.items()}

    assert text(stored(ctx, Dossier.first_due)) == FIRST_DUE
    assert text(stored(ctx, Dossier.legal_due)) == LEGAL_DUE
    due_766 = text(stored(ctx, Dossier.due_766))
    assert {k: due_766[k] for k in DUE_766} == DUE_766
    regimes = stored(ctx, Dossier.regime)
    assert regimes.pop("R-0630") == "ND61" and set(regimes.values()) == {"ND118"}
    assert {k: v for k, v in stored(ctx, Dossier.state).items() if v != "completed"} == {
        "W-END": "awaiting_supplement",
        "CLOSED": "awaiting_supplement",
        "OPEN-LATE": "received",
    }
    assert {k: v for k, v in stored(ctx, Dossier.apology_timely).items() if v is not None} == {
        "AP-2D": True,
        "AP-DUE": False,
        "AP-AFTER": False,
    }
    second_export(ctx, tmp_path)
    assert text(stored(ctx, Dossier.legal_due))["W-END"] == "2025-08-11 23:59:59"
    assert text(stored(ctx, Dossier.due_766))["W-END"] == "2025-08-10 03:59:59"
    states = stored(ctx, Dossier.state)
    assert (states["W-END"], states["CLOSED"], states["OPEN-LATE"]) == (
        "completed",
        "closed",
        "completed",
    )
    # Re-imported in August, the dossier of 30/6 stays under Decree 61/2018.
    assert stored(ctx, Dossier.regime)["R-0630"] == "ND61"
    assert text(stored(ctx, Dossier.legal_due))["R-0630"] == "2025-07-07 23:59:59"


# ------------------------------------------------------------------- the KPIs, list


def test_july_s_kpis_and_late_list(ctx):
    assert late_ids(ctx, "2025-07") == JULY_LATE
    assert month_rows(ctx, "2025-07") == JULY_KPIS
    with session_scope(ctx.db) as session:
        assert late_officials(session, "2025-07") == JULY_LIST
    # June: R-0630 open at the month's end and due 7/7: on time, online, received.
    assert month_rows(ctx, "2025-06") == {"SO-XD": (1, 1.0, 1.0, 1, 1.0, None, 0, 0, 0, 0)}


def test_the_second_export_changes_august_not_july(ctx, tmp_path):
    second_export(ctx, tmp_path)
    # July is judged at its end: W-END and CLOSED were still waiting then.
    assert late_ids(ctx, "2025-07") == JULY_LATE
    assert month_rows(ctx, "2025-07") == JULY_KPIS
    # August: W-END done 8/8 before its restarted 11/8 (and before the portal's 10/8
    # 03:59:59); CLOSED closed while waiting, not late; OPEN-LATE done late on 5/8.
    assert month_rows(ctx, "2025-08") == {"SO-XD": (3, 0.6667, 0.6667, 0, None, 0.0, 1, 0, 0, 0)}
    with session_scope(ctx.db) as session:
        assert late_officials(session, "2025-08") == [("SO-XD", "Lê Văn Cường", 1, 1)]


# ------------------------------------------------------------------------ the sweep


def test_the_sweep_never_reminds_escalates_or_lists_a_dossier_waiting_for_the_citizen(ctx):
    def alerts(day: date):
        with session_scope(ctx.db) as session:
            return dossier_alerts(ctx, session, day)

    # Fri 25/7: W-END's due date 28/7 is the next working day, but the citizen has it.
    friday = alerts(date(2025, 7, 25))
    assert (friday.reminders, friday.at_risk, friday.late_without_apology) == ({}, {}, {})
    assert friday.awaiting_supplement == {"SO-XD": 2}
    # Mon 28/7: OPEN-LATE is due tomorrow without an apology: reminded and escalated;
    # W-END (due today by its receipt) and CLOSED (past due) are not.
    monday = alerts(date(2025, 7, 28))
    assert (monday.reminders, monday.at_risk) == ({"SO-XD": 1}, {"SO-XD": 1})
    assert monday.late_without_apology == {}
    with session_scope(ctx.db) as session:
        mails = session.scalars(select(Notification).order_by(Notification.kind)).all()
    assert [m.kind for m in mails] == ["dossier_at_risk", "dossier_reminder"]
    for mail in mails:
        assert "OPEN-LATE" in mail.body_text
        assert "W-END" not in mail.body_text and "CLOSED" not in mail.body_text
        assert "Điều 19 khoản 6" in mail.body_text or mail.kind == "dossier_reminder"
    # Fri 1/8: OPEN-LATE is late without an apology; the two waiting dossiers are not.
    first = alerts(date(2025, 8, 1))
    assert first.late_without_apology == {"SO-XD": 1}
    assert first.awaiting_supplement == {"SO-XD": 2}
    assert (first.reminders, first.at_risk) == ({}, {})


# ----------------------------------------------------------- explain and agreement


def test_explain_names_the_decree_and_agrees_with_the_figures(ctx, dunghan_env):
    texts = {dossier_id: explain(dossier_id, "2025-08-01") for dossier_id in JULY}
    assert {k: explained_category(v) for k, v in texts.items()} == JULY
    assert "Quy định áp dụng: Nghị định 61/2018/NĐ-CP" in texts["R-0630"]
    assert "Hoàn thành 18:00 07/07/2025: theo hạn luật định — đúng hạn." in texts["R-0630"]
    assert "Quy định áp dụng: Nghị định 118/2025/NĐ-CP" in texts["R-0701"]
    assert "Điều 17 khoản 3" in texts["R-0701"]
    assert "hạn 24:00 08/07/2025" in texts["R-0701"]
    restart = texts["RESTART"]
    assert "thời hạn tính lại từ đầu (Nghị định 118/2025/NĐ-CP, Điều 19 khoản 5)" in restart
    assert "hạn 24:00 17/07/2025" in restart
    assert "(chưa xác nhận)): trễ hạn; hạn tính theo chỉ số 10:00 15/07/2025" in restart
    assert "VI PHẠM: hồ sơ bị yêu cầu bổ sung 2 lần" in texts["TWICE"]
    assert "Điều 11 khoản 2 điểm c" in texts["TWICE"]
    assert ": kịp thời — phải gửi chậm nhất 1 ngày" in texts["AP-2D"]
    for late_apology in ("AP-DUE", "AP-AFTER"):
        assert ": MUỘN (gửi không sớm hơn ngày hết hạn" in texts[late_apology]
        assert "Điều 19 khoản 6; Điều 12 khoản 5" in texts[late_apology]
    assert "MUỘN HƠN hạn theo quy định tính từ khi tiếp nhận 24:00 16/07/2025" in texts["SLIP"]
    assert "không bị đôn đốc và không vào danh sách chậm muộn" in texts["W-END"]
    assert "Trạng thái theo tệp nhập: chờ tổ chức, cá nhân bổ sung hồ sơ." in texts["CLOSED"]
    assert "Đã quá 15 ngày kể từ khi yêu cầu bổ sung (30/07/2025)" in texts["CLOSED"]

    # The same dossiers, the same answer everywhere: the SQL evaluation of the clock, the
    # KPIs, the public list, the scorecard (its list and its table) and explain.
    late = {k for k, v in texts.items() if explained_category(v) == "late"}
    assert late == late_ids(ctx, "2025-07") == JULY_LATE
    with session_scope(ctx.db) as session:
        listed = late_officials(session, "2025-07")
        card = measure(ctx, session, "2025-07", date(2025, 8, 5))
    assert sum(n for *_, n, _ in listed) == len(late)
    assert [(x.agency_code, x.handler, x.late, x.without_apology) for x in card.late] == listed
    rows = {r["Mã cơ quan"]: r for r in scorecard_table(card)}
    assert (rows["SO-XD"]["Trễ hạn"], rows["SO-XD"]["Chờ bổ sung"]) == (4, 2)
    assert (rows["SO-TC"]["Đúng hạn"], rows["SO-TC"]["Đúng hạn (766)"]) == ("100,0%", "0,0%")
    assert rows["SO-TC"]["Bổ sung >1 lần"] == 1
    assert card.appointments_beyond_law == 1


def test_the_scorecard_and_the_audit(ctx):
    with session_scope(ctx.db) as session:
        card = measure(ctx, session, "2025-07", date(2025, 8, 5))
        found = appointments_beyond_law(session, ctx.cal, "2025-07")
    assert [(f.dossier_id, f.working_days_late) for f in found] == [("SLIP", 1)]
    assert (found[0].appointment_at, found[0].legal_due) == (
        T("2025-07-17 17:00"),
        T("2025-07-16 23:59:59"),
    )
    page = re.sub(r"<[^>]+>", " ", report_html(card))
    text = " ".join(page.split())
    assert "4 hồ sơ trễ hạn, trong đó 3 hồ sơ chưa có phiếu xin lỗi kịp thời" in text
    assert "2 phiếu xin lỗi gửi muộn" in text
    assert "1 hồ sơ bị yêu cầu bổ sung quá một lần" in text
    assert "1 giấy tiếp nhận hẹn trả muộn hơn hạn luật định" in text
    assert "2 hồ sơ đang chờ tổ chức, cá nhân bổ sung vào cuối tháng (không tính trễ hạn)" in text
    for name in ("Hoàng Văn Em", "Nguyễn Thị Hoa", "Phạm Thị Dung"):
        assert name not in text.split("Danh sách cơ quan, tổ chức, cá nhân chậm muộn")[1]


def test_the_audit_command(ctx, dunghan_env):
    runner = CliRunner()
    result = runner.invoke(app, ["dossiers", "audit", "--month", "2025-07"])
    assert result.exit_code == 0, result.output
    assert "Phiếu hẹn muộn hơn hạn luật định, hồ sơ tiếp nhận tháng 2025-07: 1" in result.output
    assert "SLIP (" in result.output and "hẹn 17:00 17/07/2025" in result.output
    assert "hạn luật định 24:00 16/07/2025 (muộn 1 ngày làm việc)" in result.output
    as_json = runner.invoke(app, ["dossiers", "audit", "--month", "2025-07", "--json"])
    assert '"dossier_id": "SLIP"' in as_json.output and '"working_days_late": 1' in as_json.output
    other = runner.invoke(app, ["dossiers", "audit", "--month", "2025-07", "--agency", "SO-TC"])
    assert other.output.startswith(
        "Phiếu hẹn muộn hơn hạn luật định, hồ sơ tiếp nhận tháng 2025-07 — "
        "Sở Tài chính tỉnh Nghệ An: 0\n"
    )
    assert "Không có phiếu hẹn nào muộn hơn hạn luật định" in other.output


def test_kpi_json_keeps_its_keys_and_adds_the_portal_s_rate(ctx, dunghan_env):
    result = CliRunner().invoke(app, ["kpi", "--month", "2025-07", "--json"])
    assert result.exit_code == 0, result.output
    assert '"on_time_rate": 1.0, "online_rate": 0.5' in result.output
    assert '"on_time_rate_766": 0.0' in result.output and '"late_apologies": 2' in result.output
