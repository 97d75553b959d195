"""Reading back what a flow run left on the Prefect server and in the database."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)
from prefect.events import emit_event
from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter
from prefect.logging.handlers import APILogHandler
from sqlalchemy import func, select

from models.db import make_engine, session_scope

SENTINEL = "dunghan.test.sentinel"


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


def events_since(name: str, since: datetime) -> list:
    """The events named `name` emitted since `since`, once everything emitted before
    this call has reached the server (a sentinel event marks the point)."""
    marker = str(uuid.uuid4())
    emit_event(SENTINEL, resource={"prefect.resource.id": f"dunghan.test.{marker}"})
    deadline = time.monotonic() + 20
    with get_client(sync_client=True) as client:
        while True:
            page = client.read_events(
                filter=EventFilter(
                    occurred=EventOccurredFilter(since=since),
                    event=EventNameFilter(name=[name, SENTINEL]),
                ),
                limit=50,
            )
            events = list(page.events)
            while page.next_page:
                page = client.read_events_page(page.next_page)
                events += page.events
            if any(e.resource.id == f"dunghan.test.{marker}" for e in events):
                return [e for e in events if e.event == name]
            if time.monotonic() > deadline:
                raise AssertionError(f"events did not reach the server: {name}")
            time.sleep(0.2)


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
