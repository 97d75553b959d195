"""Benchmark: how long `make serve` (`dunghan serve --local`) takes to have every
deployment ready, on a first start (a new Prefect home) and on a restart (the same home:
the deployments are there, paused by the last stop), and the registration alone against
Prefect's own way (`prefect.serve` applies each deployment in turn with a client of its
own, after asking git for a version).

1. End to end: `dunghan serve --local` in a child process, from its start to its line
   "Sẵn sàng…" (every deployment registered, the runner serving), first start then
   restart; each stopped with Ctrl-C (SIGINT) and waited for.
2. Registration only, against one local server: Prefect's `RunnerDeployment.apply()` one
   by one (what `prefect.serve` does) into a fresh server, then again (a restart), against
   `flows.serving.register` into another fresh server, then again.

Every registration is checked: all deployments present, none paused, with their
fingerprint as version (ours); a wrong answer exits 1.

Run: `.venv/bin/python bench/serve.py` (about 3-5 minutes; a loaded machine is slower).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bench/email.py would shadow the standard library's `email`: the repository, not the
# script's folder, goes on the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(ROOT))

from flows.local_server import HOST, local_server  # noqa: E402

READY = "Sẵn sàng"
TIMEOUT = 300


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def serve_once(home: Path, port: int, env: dict) -> float:
    """Seconds from starting `dunghan serve --local` to its ready line; then Ctrl-C."""
    began = time.perf_counter()
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/dunghan"), "serve", "--local", "--port", str(port)],
        cwd=ROOT,
        env={**env, "PREFECT_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for line in process.stdout:
            if line.startswith(READY):
                elapsed = time.perf_counter() - began
                print(f"    {line.strip()}")
                break
            if time.perf_counter() - began > TIMEOUT:
                raise SystemExit(f"not ready after {TIMEOUT} s")
        else:
            raise SystemExit(f"`dunghan serve --local` ended before being ready ({process.wait()})")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise SystemExit(f"`dunghan serve --local` exited with {process.returncode}")
    return elapsed


def check(deployments, *, ours: bool) -> None:
    """Every deployment registered, none paused (ours: versioned by fingerprint)."""
    from prefect.client.orchestration import get_client

    from flows.serving import fingerprint

    with get_client(sync_client=True) as client:
        for deployment in deployments:
            found = client.read_deployment_by_name(f"{deployment.flow_name}/{deployment.name}")
            if found.paused:
                raise SystemExit(f"wrong answer: {deployment.name} is paused")
            if ours and found.version != fingerprint(deployment):
                raise SystemExit(f"wrong answer: {deployment.name} has version {found.version}")
            if found.parameter_openapi_schema != deployment._parameter_openapi_schema.model_dump(
                exclude_unset=True
            ):
                raise SystemExit(f"wrong answer: {deployment.name}'s parameters differ")


def pause_all(deployments) -> None:
    """What a stop does: every deployment paused."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        for deployment in deployments:
            found = client.read_deployment_by_name(f"{deployment.flow_name}/{deployment.name}")
            client.pause_deployment(found.id)


def registration(home: Path, ours: bool) -> tuple[float, float]:
    """Seconds to register every deployment into a fresh server, then again after a stop."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (
        local_server(free_port(), home) as server,
        temporary_settings(updates={PREFECT_API_URL: server.api_url}),
    ):
        from flows.deployments import build_deployments, load_reference
        from flows.serving import register

        times = []
        for _ in range(2):
            deployments = build_deployments(load_reference())
            began = time.perf_counter()
            if ours:
                asyncio.run(register(deployments))
            else:
                for deployment in deployments:
                    deployment.apply()
            times.append(time.perf_counter() - began)
            check(deployments, ours=ours)
            pause_all(deployments)
    return times[0], times[1]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="dunghan-bench-serve-") as tmp:
        base = Path(tmp)
        env = {
            **os.environ,
            "DO_NOT_TRACK": "1",
            "DUNGHAN_DATABASE_URL": f"sqlite:///{base}/dunghan.db",
            "DUNGHAN_REPORTS_DIR": str(base / "reports"),
            "DUNGHAN_OUTBOX_DIR": str(base / "outbox"),
        }
        os.environ.update(
            {k: v for k, v in env.items() if k.startswith("DUNGHAN") or k == "DO_NOT_TRACK"}
        )
        print("make serve (dunghan serve --local), start to every deployment ready:")
        port = free_port()
        first = serve_once(base / "home", port, env)
        again = serve_once(base / "home", port, env)
        print(f"  first start {first:6.1f} s")
        print(f"  restart     {again:6.1f} s")

        print("registration alone (each deployment one by one with its own client, as")
        print("prefect.serve does, against flows.serving.register):")
        prefect_first, prefect_again = registration(base / "prefect-way", ours=False)
        ours_first, ours_again = registration(base / "ours", ours=True)
        for label, theirs, ours in (
            ("first start", prefect_first, ours_first),
            ("restart    ", prefect_again, ours_again),
        ):
            print(
                f"  {label}  prefect.serve {theirs:6.2f} s   dunghan {ours:6.2f} s   "
                f"ratio {theirs / ours:5.1f}x"
            )


if __name__ == "__main__":
    main()
