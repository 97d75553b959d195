"""Reading back what a flow run left on the Prefect server and in the database."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter
from prefect.logging.handlers import APILogHandler
from sqlalchemy import func, select

from models.db import make_engine, session_scope

# Five times the test server's event persister interval (tests/flows/conftest.py).
SETTLE_SECONDS = 1.0


def artifacts_of(state) -> dict[str, object]:
    """The keyed artifacts a flow run created, by key."""
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id]))
        )
    return {a.key: a for a in found if a.key}


def table_of(artifact) -> list[dict]:
    data = artifact.data
    return json.loads(data) if isinstance(data, str) else data


def latest_artifact(key: str):
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )
    return max(found, key=lambda a: a.created) if found else None


def log_messages(state) -> list[str]:
    """Every log line of a finished flow run and its tasks, as stored by the server."""
    APILogHandler().flush()
    run_id = state.state_details.flow_run_id
    deadline = time.monotonic() + 10
    with get_client(sync_client=True) as client:
        while True:
            messages = [
                log.message
                for log in client.read_logs(
                    log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id]))
                )
            ]
            # The engine's last line of a run says how it finished.
            if any(m.startswith("Finished in state") for m in messages):
                return messages
            if time.monotonic() > deadline:
                raise AssertionError(f"the run's logs did not reach the server: {messages}")
            time.sleep(0.2)


def read_events(name: str, since: datetime) -> dict:
    """The events named `name` the server has stored since `since`, by event id."""
    found = {}
    with get_client(sync_client=True) as client:
        page = client.read_events(
            filter=EventFilter(
                occurred=EventOccurredFilter(since=since, until=datetime.now(UTC) + timedelta(1)),
                event=EventNameFilter(name=[name]),
            ),
            limit=50,
        )
        while True:
            found |= {event.id: event for event in page.events}
            if not page.next_page:
                return found
            page = client.read_events_page(page.next_page)


def events_since(name: str, since: datetime, expected: int, deadline: float = 120) -> list:
    """The events named `name` emitted since `since`, once the server has stored the
    `expected` number of them (a flow run's result says how many it announced).

    Prefect's server stores events asynchronously and in batches, in no promised order,
    so the wait is for the count, with a generous deadline for a loaded machine; then
    a moment more, so that an event too many (announced twice) shows as well.
    """
    end = time.monotonic() + deadline
    while True:
        found = read_events(name, since)
        if len(found) >= expected:
            break
        if time.monotonic() > end:
            raise AssertionError(
                f"{len(found)} of {expected} '{name}' events reached the server in {deadline} s"
            )
        time.sleep(0.2)
    time.sleep(SETTLE_SECONDS)
    return sorted(read_events(name, since).values(), key=lambda e: (e.occurred, str(e.id)))


def count(url: str, model, *where) -> int:
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            return session.scalar(select(func.count()).select_from(model).where(*where))
    finally:
        engine.dispose()


def rows(url: str, query) -> list:
    engine = make_engine(url)
    try:
        with session_scope(engine) as session:
            return session.execute(query).all()
    finally:
        engine.dispose()
