"""How a run ends, in the domain's words: the state an operator reads on the Runs page.

| state name  | type      | means                                                         |
|-------------|-----------|---------------------------------------------------------------|
| Đúng hạn    | COMPLETED | an obligation's run: none of its items is overdue              |
| Quá hạn     | FAILED    | an obligation's run: items are overdue; the message names the  |
|             |           | agencies (the run itself did its work: nothing to retry)       |
| Ngày nghỉ   | COMPLETED | a sweep on a day off: nothing evaluated, the message says why  |
| Từ chối     | FAILED    | a request refused (bad parameter, bad data file): the message  |
|             |           | says what to give instead                                      |
| Failed      | FAILED    | a technical failure (database unreachable after the retries…)  |
| Crashed     | CRASHED   | the process running the flow died                              |

Lateness is a failed-type state so the dashboard counts it and automations can match on
it, but it is named, so it is never mistaken for a technical failure, which keeps
Prefect's own names. docs/operators.md lists the same table for operators.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import date

from prefect.states import Completed, Failed, State

from flows.reports.review import ItemView
from flows.reports.status import NAMED_AGENCIES
from models.tables import ItemStatus

ON_TIME = "Đúng hạn"
LATE = "Quá hạn"
DAY_OFF = "Ngày nghỉ"
REFUSED = "Từ chối"


class Overdue(Exception):
    """What a late obligation run gives a Python caller: raised by a direct call, returned
    by `state.result(raise_on_failure=False)`; `counts` are the sweep's figures."""

    def __init__(self, message: str, counts: dict):
        super().__init__(message, counts)
        self.message, self.counts = message, counts

    def __str__(self) -> str:
        return self.message


def late_agencies(views: Sequence[ItemView], today: date) -> list[tuple[str, int]]:
    """The agencies with open items past due on `today`, most overdue items first."""
    late = Counter(v.agency_name for v in views if v.status == ItemStatus.OPEN and v.due < today)
    return sorted(late.items(), key=lambda kv: (-kv[1], kv[0]))


def agencies_text(agencies: Sequence[tuple[str, int]]) -> str:
    shown = [f"{name} ({count})" for name, count in agencies[:NAMED_AGENCIES]]
    if len(agencies) > NAMED_AGENCIES:
        shown.append(f"và {len(agencies) - NAMED_AGENCIES} cơ quan khác")
    return ", ".join(shown)


def obligation_state(number: str, views: Sequence[ItemView], today: date, data: dict) -> State:
    """Đúng hạn, or Quá hạn naming the agencies with overdue items, as of `today`."""
    late = late_agencies(views, today)
    if not late:
        return Completed(
            name=ON_TIME,
            message=f"Nhiệm vụ {number}: không có việc quá hạn ngày {today:%d/%m/%Y}.",
            data=data,
        )
    items = sum(count for _, count in late)
    message = (
        f"Nhiệm vụ {number}: {items} việc quá hạn ngày {today:%d/%m/%Y} — {agencies_text(late)}."
    )
    return Failed(name=LATE, message=message, data=Overdue(message, data))


def day_off(reason: str) -> State:
    return Completed(name=DAY_OFF, message=reason, data={"skipped": reason})


def refused(message: str, exc: Exception) -> State:
    return Failed(name=REFUSED, message=message, data=exc)
