"""Serving every deployment, ready in seconds: `dunghan serve`'s Prefect side.

Prefect's `serve` registers deployments one by one, each with a client of its own, a
look-up by name, an update and its automations replaced, after asking git for a version
(about 0.3 s each here, 50 of them). Here one client registers them in turn (Prefect's
server writes one at a time anyway: concurrent registrations were slower, measured in
bench/serve.py), and a deployment whose specification has not changed since the last
start is not written again, only resumed (its schedule was paused when serving stopped).
The specification's fingerprint is the deployment's version.

Once registered, the runner serves them, and a run of the plan's status (`plan-status`)
is queued first, so the UI shows the plan as soon as it opens.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from uuid import UUID

from prefect import __version__ as prefect_version
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName
from prefect.context import AsyncClientContext
from prefect.deployments.runner import RunnerDeployment, VersionInfo
from prefect.exceptions import TerminationSignal
from prefect.runner import Runner

PAGE = 200  # deployments read per request


@dataclass
class Registration:
    ids: dict[str, UUID]  # deployment name -> id
    written: int  # created or changed
    kept: int  # unchanged since the last start
    seconds: float


def fingerprint(deployment: RunnerDeployment) -> str:
    """What the server would be told about the deployment, hashed."""
    spec = deployment.model_dump(mode="json", exclude={"version", "version_type", "storage"})
    spec["schema"] = deployment._parameter_openapi_schema.model_dump(mode="json")
    spec["path"] = str(deployment._path)
    spec["prefect"] = prefect_version
    text = json.dumps(spec, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


async def register(deployments: Sequence[RunnerDeployment]) -> Registration:
    """Register every deployment with the API: new and changed ones written, unchanged
    ones resumed; one client for all of it."""
    began = time.perf_counter()
    ids: dict[str, UUID] = {}
    written = kept = 0
    async with AsyncClientContext() as context:
        client = context.client
        existing = await read_existing(client, {d.flow_name for d in deployments})
        for deployment in deployments:
            version = fingerprint(deployment)
            old = existing.get((deployment.flow_name, deployment.name))
            if old is not None and old.version == version:
                if old.paused:
                    await client.resume_deployment(old.id)
                ids[deployment.name] = old.id
                kept += 1
                continue
            deployment.version, deployment.paused = version, False
            ids[deployment.name] = await deployment.aapply(
                version_info=VersionInfo(type="prefect:simple", version=version)
            )
            written += 1
    return Registration(ids, written, kept, time.perf_counter() - began)


async def read_existing(client, flow_names: set[str]) -> dict[tuple[str, str], object]:
    flows = {f.id: f.name for f in await client.read_flows(flow_filter=_flows(flow_names))}
    found: dict[tuple[str, str], object] = {}
    offset = 0
    while page := await client.read_deployments(
        flow_filter=_flows(flow_names), limit=PAGE, offset=offset
    ):
        for deployment in page:
            found[(flows.get(deployment.flow_id, ""), deployment.name)] = deployment
        offset += len(page)
    return found


def _flows(names: set[str]) -> FlowFilter:
    return FlowFilter(name=FlowFilterName(any_=sorted(names)))


async def serve(
    deployments: Sequence[RunnerDeployment],
    *,
    limit: int,
    first_run: str | None,
    announce: Callable[[Registration], None],
) -> None:
    """Register, queue a run of the deployment named `first_run`, then serve until
    stopped (SIGTERM or Ctrl-C: runs in progress cancelled, schedules paused)."""
    registration = await register(deployments)
    runner = Runner(limit=limit, pause_on_shutdown=True)
    for deployment in deployments:
        await runner_knows(runner, deployment, registration.ids[deployment.name])
    if first_run is not None:
        async with get_client() as client:
            await client.create_flow_run_from_deployment(registration.ids[first_run])
    announce(registration)
    with contextlib.suppress(KeyboardInterrupt, TerminationSignal):
        await runner.start()


async def runner_knows(runner: Runner, deployment: RunnerDeployment, deployment_id: UUID):
    """Tell the runner a registered deployment is its to run. Prefect's runner has no
    public way to take an id it did not register itself; with another Prefect whose
    runner differs, it registers the deployment again (slower, same result)."""
    registry = getattr(runner, "_deployment_registry", None)
    if registry is not None and hasattr(registry, "register_deployment"):
        registry.register_deployment(deployment_id, deployment.name)
    else:
        await runner.aadd_deployment(deployment)
