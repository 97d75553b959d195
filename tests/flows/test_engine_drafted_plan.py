"""A plan drafted from a .docx decision runs in the engine: the new timing families make the
items their due dates say, and the rules without a date make none."""

from __future__ import annotations

import re
from datetime import date

from sqlalchemy import select

from deadlines.agencies import load_registry
from deadlines.agency_match import load_other_names
from deadlines.decision import read_decision
from deadlines.draft import draft_plan, render_draft
from flows.engine import EngineContext, sweep
from models.db import session_scope
from models.tables import DeadlineItem, Obligation
from tests.deadlines.test_draft import build_docx, without_problems


def test_a_drafted_2026_plan_makes_the_items_of_its_timings(database_url, tmp_path):
    decision = tmp_path / "qd-12-2026.docx"
    build_docx(decision)
    registry = load_registry()
    result = draft_plan(read_decision(decision), registry, load_other_names(registry=registry))
    # The admin's fix of the one listed problem: the unknown coordinating body is dropped.
    text = without_problems(render_draft(result))
    text = re.sub(r'\["\?Hội Nông dân tỉnh"\]|\[\?Hội Nông dân tỉnh\]', "[]", text)
    plan_file = tmp_path / "nghe-an-2026.yaml"
    plan_file.write_text(text, encoding="utf-8")

    ctx = EngineContext.open(database_url, plan_path=plan_file)
    try:
        sweep(ctx, date(2026, 1, 20))
        with session_scope(ctx.db) as session:
            rows = session.execute(
                select(Obligation.number, DeadlineItem.agency_code, DeadlineItem.period_key,
                       DeadlineItem.due)
                .join(Obligation, Obligation.id == DeadlineItem.obligation_id)
                .order_by(Obligation.number, DeadlineItem.due)
            ).all()  # fmt: skip
    finally:
        ctx.db.dispose()
    items = {(number, agency, key): due for number, agency, key, due in rows}
    # "Quí IV-2026" for Sở Tư pháp: the quarter's last working day.
    assert items[("I.1", "SO-TP", "2026-10-01/2026-12-31")] == date(2026, 12, 31)
    # "trước ngày 01/6 và 15/11 hằng năm (hoặc đột xuất …)": 31/5 and 14-15/11/2026 fall
    # on weekends, so the days before roll back to Friday.
    assert items[("I.2", "SO-NV", "2026-06-01")] == date(2026, 5, 29)
    assert items[("I.2", "SO-NV", "2026-11-15")] == date(2026, 11, 13)
    # "2026 - 2027" is due at the end of 2027: no item in the 2026 plan year.
    numbers = {number for number, *_ in rows}
    assert "II.2" not in numbers
    # A roadmap and an open-ended start have no date of their own.
    assert "II.1" not in numbers and "II.3" not in numbers
