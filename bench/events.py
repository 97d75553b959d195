"""Measurement: are the Prefect events a flow emits lost, or only late? (issue 16)

A real Prefect server (`prefect server start`, SQLite, its event persister flushing every
`--flush` seconds as in the tests), CPU burners on every core and a process writing flow
runs, task runs and logs to the same server the whole time (the load of a test suite).
Then, for each scenario, a flow emits `--events` events and the server is polled until it
has stored all of them or `--deadline` seconds have passed:

- `in-process`: the flow runs in this long-lived process (as in the tests); right after
  it ends a sentinel event is emitted, as `tests/flows/prefect_support.events_since` used
  to do, and we note how many of the flow's events the server had stored when the
  sentinel became readable (what the old helper counted), then when the last one came.
- `exit`: the flow runs in a child process that exits normally right after it (Prefect
  drains its events worker at interpreter exit).
- `killed`: the child dies (`os._exit`) right after the flow returns, before the events
  worker drained: what a SIGKILL or an OOM kill after the sweep's commit does.
- `killed-flushed`: the same, but the flow flushes its events worker before returning
  (`flows.announce.flush_events`, what dunghan's announcing step now does).

Run: `.venv/bin/python bench/events.py [--events N] [--burners K] [--rounds R]`.
Exits non-zero if an event is lost in a scenario that must not lose any
(`in-process`, `exit`, `killed-flushed`).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

# bench/ holds email.py and calendar.py, named like standard modules everything imports:
# take the script's own folder off the import path, and put the repository's there.
ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]
sys.path.insert(0, str(ROOT))

NAME = "dunghan.bench.event"
SENTINEL = "dunghan.bench.sentinel"
MUST_NOT_LOSE = ("in-process", "exit", "killed-flushed")


# ------------------------------------------------------------------- child roles


def emit_flow(run: str, count: int, flush: bool) -> None:
    """A flow that emits `count` events from a task, as dunghan's announcing step does."""
    from prefect import flow, task
    from prefect.events import emit_event

    from flows.announce import flush_events

    @task(name="emit")
    def emit_all() -> None:
        for index in range(count):
            emit_event(
                NAME,
                resource={"prefect.resource.id": f"dunghan.bench.{run}.{index}"},
                payload={"index": index},
            )
        if flush and not flush_events(60):
            raise RuntimeError("the events worker did not drain in 60 s")

    @flow(name="bench-emit")
    def emitting() -> None:
        emit_all()

    emitting()


def noise(stop_after: float) -> None:
    """Flow runs with tasks and log lines, back to back: the server's database stays busy."""
    from prefect import flow, get_run_logger, task

    @task
    def step(i: int) -> int:
        get_run_logger().info("noise %d", i)
        return i

    @flow(name="bench-noise")
    def noisy() -> None:
        for i in range(10):
            step(i)

    end = time.monotonic() + stop_after
    while time.monotonic() < end:
        noisy()


def burn(stop: multiprocessing.synchronize.Event) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 31 + 7) % 1_000_003


# ------------------------------------------------------------------- measuring


def stored(run: str, since: datetime, names=(NAME,)) -> dict[str, set[str]]:
    """The resource ids of the events the server has stored for `run`, by event name."""
    from prefect.client.orchestration import get_client
    from prefect.events.filters import (
        EventFilter,
        EventNameFilter,
        EventOccurredFilter,
        EventResourceFilter,
    )

    found: dict[str, set[str]] = {name: set() for name in names}
    with get_client(sync_client=True) as client:
        page = client.read_events(
            filter=EventFilter(
                occurred=EventOccurredFilter(since=since, until=datetime.now(UTC) + timedelta(1)),
                event=EventNameFilter(name=list(names)),
                resource=EventResourceFilter(id_prefix=[f"dunghan.bench.{run}"]),
            ),
            limit=50,
        )
        while True:
            for event in page.events:
                found[event.event].add(event.resource.id)
            if not page.next_page:
                break
            page = client.read_events_page(page.next_page)
    return found


@dataclass
class Outcome:
    scenario: str
    emitted: int
    at_sentinel: int | None  # stored when the sentinel became readable
    at_end: int  # stored when the flow (or its process) ended
    stored: int
    seconds_to_all: float | None

    @property
    def lost(self) -> int:
        return self.emitted - self.stored


def measure(scenario: str, count: int, deadline: float, environ: dict[str, str]) -> Outcome:
    from prefect.events import emit_event

    run = uuid.uuid4().hex[:12]
    since = datetime.now(UTC) - timedelta(seconds=5)
    at_sentinel = None
    if scenario == "in-process":
        emit_flow(run, count, flush=False)
    else:
        mode = {"exit": "exit", "killed": "kill", "killed-flushed": "kill-flushed"}[scenario]
        subprocess.run(
            [sys.executable, __file__, "--child", mode, "--run", run, "--events", str(count)],
            env=environ,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ended = time.monotonic()
    at_end = len(stored(run, since)[NAME])
    if scenario == "in-process":
        emit_event(SENTINEL, resource={"prefect.resource.id": f"dunghan.bench.{run}.sentinel"})
        while time.monotonic() < ended + deadline:
            found = stored(run, since, (NAME, SENTINEL))
            if found[SENTINEL]:
                at_sentinel = len(found[NAME])
                break
            time.sleep(0.1)
    seconds, have = None, at_end
    while time.monotonic() < ended + deadline:
        have = len(stored(run, since)[NAME])
        if have >= count:
            seconds = time.monotonic() - ended
            break
        time.sleep(0.2)
    return Outcome(scenario, count, at_sentinel, at_end, have, seconds)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--burners", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--deadline", type=float, default=120.0)
    parser.add_argument("--flush", type=float, default=0.2, help="event persister interval")
    parser.add_argument("--child", choices=("exit", "kill", "kill-flushed", "noise"))
    parser.add_argument("--run", default="")
    parser.add_argument("--seconds", type=float, default=0)
    args = parser.parse_args()

    if args.child == "noise":
        noise(args.seconds)
        return 0
    if args.child:
        emit_flow(args.run, args.events, flush=args.child == "kill-flushed")
        if args.child.startswith("kill"):
            os._exit(0)  # no atexit drain: as if killed right after the flow's last step
        return 0

    from flows.local_server import local_server

    home = Path(tempfile.mkdtemp(prefix="dunghan-bench-events-"))
    os.environ["PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL"] = str(args.flush)
    port = free_port()
    scenarios = ("in-process", "exit", "killed", "killed-flushed")
    outcomes: list[Outcome] = []
    with local_server(port, home) as server:
        environ = {
            **os.environ,
            "PREFECT_API_URL": server.api_url,
            "PREFECT_HOME": str(home),
            "PREFECT_LOGGING_LEVEL": "CRITICAL",
        }
        os.environ.update(environ)
        stop = multiprocessing.Event()
        burners = [
            multiprocessing.Process(target=burn, args=(stop,), daemon=True)
            for _ in range(args.burners)
        ]
        for burner in burners:
            burner.start()
        noisy = subprocess.Popen(
            [sys.executable, __file__, "--child", "noise", "--seconds", "3600"],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for round_ in range(args.rounds):
                for scenario in scenarios:
                    outcome = measure(scenario, args.events, args.deadline, environ)
                    outcomes.append(outcome)
                    print(
                        f"round {round_ + 1} {scenario:15} emitted {outcome.emitted:4}  "
                        f"stored at the flow's end {outcome.at_end:4}  "
                        + (
                            f"when the sentinel was readable {outcome.at_sentinel:4}  "
                            if outcome.at_sentinel is not None
                            else ""
                        )
                        + f"in the end {outcome.stored:4}  lost {outcome.lost:4}  "
                        + (
                            f"all stored after {outcome.seconds_to_all:.1f} s"
                            if outcome.seconds_to_all is not None
                            else f"not all after {args.deadline:.0f} s"
                        ),
                        flush=True,
                    )
        finally:
            noisy.kill()
            noisy.wait()
            stop.set()
            for burner in burners:
                burner.join()
        dropped = [
            line
            for line in server.log.read_text(errors="replace").splitlines()
            if "dropping" in line.lower() or "dead letter" in line.lower()
        ]
    print()
    print(f"load: {args.burners} CPU burners on {os.cpu_count()} cores + a process writing runs")
    for scenario in scenarios:
        mine = [o for o in outcomes if o.scenario == scenario]
        emitted = sum(o.emitted for o in mine)
        lost = sum(o.lost for o in mine)
        slowest = max((o.seconds_to_all or float("inf")) for o in mine)
        line = f"{scenario:15} emitted {emitted:5}, stored {emitted - lost:5}, lost {lost:5}"
        if scenario == "in-process":
            early = sum(o.emitted - (o.at_sentinel or 0) for o in mine)
            line += f", not yet stored when the sentinel was: {early}"
        line += f", slowest to all stored: {slowest:.1f} s"
        print(line)
    print(f"server log lines about dropped events: {len(dropped)}")
    for line in dropped[:5]:
        print("   ", line)
    wrong = [o for o in outcomes if o.scenario in MUST_NOT_LOSE and o.lost]
    if wrong:
        print(f"WRONG: events lost in {sorted({o.scenario for o in wrong})}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
