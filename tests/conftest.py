"""Shared fixtures. The calendar is pure and immutable, so one instance serves the session."""

from __future__ import annotations

import pytest

from deadlines.calendar import WorkCalendar


@pytest.fixture(scope="session")
def cal() -> WorkCalendar:
    return WorkCalendar.vietnam()
