"""Who owes each obligation of the shipped plan through the 2025 reorganisation."""

from __future__ import annotations

from datetime import date

import pytest

from deadlines.agencies import load_registry
from deadlines.owners import (
    default_due_rows,
    obligations_owed,
    owner_changes,
    owners_on,
    unconfirmed_facts,
)
from deadlines.plan import load_plan


@pytest.fixture(scope="module")
def registry():
    return load_registry()


@pytest.fixture(scope="module")
def plan(registry):
    return load_plan(registry=registry)


def codes(agencies) -> set[str]:
    return {a.code for a in agencies}


def test_the_monthly_report_passes_from_the_districts_to_the_communes(plan, registry):
    x2 = plan.obligation("X.2")
    june = owners_on(plan, registry, x2, date(2025, 6, 30))
    july = owners_on(plan, registry, x2, date(2025, 7, 1))
    assert sum(a.kind == "district" for a in june) == 20
    assert sum(a.kind in ("commune", "ward") for a in july) == 130
    assert not any(a.kind == "district" for a in july)
    assert codes(june) - codes(july) >= {"HUYEN-NAM-DAN", "TP-VINH"}


def test_owner_changes_are_the_days_the_owners_change(plan, registry):
    changes = owner_changes(plan, registry, plan.obligation("X.2"))
    assert [day for day, _ in changes] == [date(2025, 2, 24), date(2025, 3, 1), date(2025, 7, 1)]
    (_, shares) = changes[-1]
    districts = next(s for s in shares if s.code == "GRP-UBND-HUYEN")
    assert districts.through == ("UBND cấp xã",) and len(districts.agencies) == 130
    # A provincial office's duty never changes hands.
    assert len(owner_changes(plan, registry, plan.obligation("V.7"))) == 1


def test_a_coordinators_share_follows_the_obligations_function(plan, registry):
    vii2 = plan.obligation("VII.2")
    after = owners_on(plan, registry, vii2, date(2025, 3, 3), role="coordinating")
    assert codes(after) == {"SO-NV", "SO-VHTTDL"}


def test_what_an_agency_owes_on_a_day(plan, registry):
    commune = [ob.number for ob in obligations_owed(plan, registry, "XA-17935", date(2025, 8, 1))]
    assert {"X.1", "X.2", "IX.2"} <= set(commune)
    assert obligations_owed(plan, registry, "XA-17935", date(2025, 6, 30)) == []
    office = [ob.number for ob in obligations_owed(plan, registry, "VP-UBND", date(2025, 8, 1))]
    assert "V.7" in office and "B.III.2.b.4" not in office


def test_the_unconfirmed_facts_a_row_rests_on(plan, registry):
    facts = unconfirmed_facts(plan, registry, plan.obligation("X.1"))
    assert "kế thừa nhóm GRP-UBND-HUYEN → GRP-UBND-XA: successors" in facts
    assert any(f.startswith("chế độ báo cáo hằng quý (Nghị định 09/2019/NĐ-CP") for f in facts)
    assert unconfirmed_facts(plan, registry, plan.obligation("IV.3")) == []
    assert [ob.number for ob, _ in default_due_rows(plan)] == ["V.7", "X.1", "B.III.2.b.4"]
