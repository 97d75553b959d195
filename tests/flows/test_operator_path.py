"""The operator's path (docs/operators.md): `dunghan serve --local` (what `make serve` runs)
starts Prefect's server, serves every deployment and stops cleanly on Ctrl-C; the shipped
escalation automation runs an inspection when an item reaches overdue_10; and a normal
run of the CLI prints no traceback, no warning, no Prefect server noise."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
from contextlib import suppress
from pathlib import Path

import pytest
import yaml

from flows.announce import ESCALATION_REACHED
from flows.local_server import check_port_free, healthy
from tests.flows.prefect_support import events_since

ROOT = Path(__file__).resolve().parents[2]
DUNGHAN = Path(sys.executable).with_name("dunghan")
PREFECT = Path(sys.executable).with_name("prefect")
AUTOMATION_FILE = ROOT / "docs" / "examples" / "automation-escalation.yaml"
PLACEHOLDER = "ID_DEPLOYMENT_KIEM_TRA"

# What Prefect prints when a flow runs with no server configured and it starts its own,
# and its first-run telemetry notice in a terminal.
PREFECT_NOISE = ("temporary server", "dedicated Prefect server", "ephemeral", "usage data")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def user_environment(tmp_path: Path, database_url: str) -> dict[str, str]:
    """An operator's shell: no Prefect API configured, a Prefect home and a database of
    the test's own, the shipped calendar."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PREFECT_", "DUNGHAN_"))
    }
    environment["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    environment["DUNGHAN_DATABASE_URL"] = database_url
    return environment


def processes_with(marker: str) -> list[int]:
    """Live processes whose environment contains `marker` (Linux /proc)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker.encode() in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


class Terminal:
    """A pseudo-terminal running `command` as in an operator's terminal: stdout and
    stderr are a TTY (where Prefect prints what it hides from pipes), what it prints is
    read as it comes, and typing Ctrl-C interrupts its foreground process group."""

    def __init__(self, command: list[str], cwd: Path, environment: dict[str, str]):
        self.main, secondary = pty.openpty()
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            env=environment,
            stdin=secondary,
            stdout=secondary,
            stderr=secondary,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(secondary)
        self.printed = bytearray()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        with suppress(OSError):  # EIO: every process has closed the terminal
            while chunk := os.read(self.main, 65536):
                self.printed += chunk

    def type(self, keys: bytes) -> None:
        os.write(self.main, keys)

    def output(self) -> str:
        return self.printed.decode("utf-8", errors="replace")

    def wait(self, seconds: float) -> int:
        try:
            code = self.process.wait(seconds)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.reader.join(10)
        os.close(self.main)
        return code


# ------------------------------------------------------------------- make serve


def test_serve_local_serves_every_deployment_and_stops_cleanly_on_ctrl_c(tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.deployments import DAILY_SWEEP_NAME, build_deployments, load_reference

    expected = {
        d.name for d in build_deployments(load_reference(f"sqlite:///{tmp_path}/reference.db"))
    }
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    environment = user_environment(tmp_path, f"sqlite:///{tmp_path}/dunghan.db")
    home = environment["PREFECT_HOME"]
    terminal = Terminal(
        [str(DUNGHAN), "serve", "--local", "--port", str(port)], tmp_path, environment
    )
    serving = terminal.process
    try:
        wait_for(lambda: serving.poll() is not None or healthy(api_url), 120, "the server")
        assert serving.poll() is None, terminal.output()

        with (
            temporary_settings(updates={PREFECT_API_URL: api_url}),
            get_client(sync_client=True) as client,
        ):

            def registered():
                deployments = client.read_deployments(limit=200)
                active = {d.name for d in deployments if not d.paused}
                return deployments if active == expected else None

            deployments = wait_for(registered, 120, "every deployment to be registered")
            # A served deployment runs on the embedded defaults (here: the test's
            # database, var/ under the working folder).
            sweep = next(d for d in deployments if d.name == DAILY_SWEEP_NAME)
            run = client.create_flow_run_from_deployment(
                sweep.id, parameters={"date": "2025-03-03"}
            )

            def finished():
                state = client.read_flow_run(run.id).state
                return state if state.is_final() else None

            state = wait_for(finished, 60, "the served sweep to finish")
            assert state.is_completed(), state
        # Once the run's process has gone: the supervisor, the server, `dunghan serve`.
        wait_for(lambda: len(processes_with(home)) == 3, 30, "the run's process to exit")

        # Ctrl-C typed in the terminal, then an impatient second one.
        terminal.type(b"\x03")
        time.sleep(0.5)
        terminal.type(b"\x03")
    finally:
        code = terminal.wait(90)

    printed = terminal.output()
    assert code == 0, printed
    for noise in ("Traceback", "Warning", "WARNING", *PREFECT_NOISE):
        assert noise not in printed, printed
    assert f"Giao diện Prefect: http://127.0.0.1:{port}" in printed
    assert f"Sẵn sàng: {len(expected)} deployment đã đăng ký trong " in printed
    assert printed.rstrip().endswith("Đã dừng.")
    assert processes_with(home) == []  # no orphan server, serve or flow run
    assert not healthy(api_url)


def test_serve_local_refuses_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [str(DUNGHAN), "serve", "--local", "--port", str(port)],
            cwd=tmp_path,
            env=user_environment(tmp_path, f"sqlite:///{tmp_path}/dunghan.db"),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 3
    assert f"Cổng {port} trên 127.0.0.1 đang được dùng" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_port_of_a_server_just_stopped_is_free_again():
    """Restarting `make serve` right after Ctrl-C: the old server's connections waiting
    to close (TIME_WAIT) do not make the port look taken."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = server.accept()
        accepted.close()  # the server side closes first: it is left in TIME_WAIT
        client.close()
    check_port_free(port)


def test_serve_local_says_why_the_server_did_not_start(tmp_path):
    environment = user_environment(tmp_path, f"sqlite:///{tmp_path}/dunghan.db")
    unreachable = "postgresql+asyncpg://prefect:s3cret-pw@127.0.0.1:1/prefect"
    environment["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = unreachable
    result = subprocess.run(
        [str(DUNGHAN), "serve", "--local", "--port", str(free_port())],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3
    assert "Máy chủ Prefect đã dừng" in result.stderr
    assert "Connect call failed ('127.0.0.1', 1)" in result.stderr  # the cause
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert processes_with(environment["PREFECT_HOME"]) == []


# ------------------------------------------------------ the escalation automation


@pytest.fixture
def inspect_deployment(prefect_api):
    """The "Kiểm tra" deployment, registered as `dunghan serve` registers it."""
    from prefect.client.orchestration import get_client

    from flows.admin import inspect_flow
    from flows.deployments import ADMIN_DEPLOYMENTS

    name = next(name for flow, name in ADMIN_DEPLOYMENTS if flow is inspect_flow)
    deployment_id = inspect_flow.to_deployment(name=name, tags=["admin"]).apply()
    yield f"{inspect_flow.name}/{name}"
    with get_client(sync_client=True) as client:
        client.delete_deployment(deployment_id)


def prefect_cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    """The `prefect` command as the operator runs it, against the test server."""
    from prefect.settings import PREFECT_API_URL

    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")},
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_HOME": str(home),
    }
    result = subprocess.run(
        [str(PREFECT), *args], env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_the_documented_automation_runs_an_inspection_on_overdue_10(
    inspect_deployment, dunghan_env, since, tmp_path
):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    from flows.admin import inspect_flow
    from flows.daily_sweep import daily_sweep

    # The steps of docs/operators.md: the deployment's id, into a copy of the shipped
    # file, then `prefect automation create --from-file`.
    shown = prefect_cli(
        "deployment", "inspect", inspect_deployment, "--output", "json", home=tmp_path
    )
    deployment_id = json.loads(shown.stdout)["id"]
    shipped = AUTOMATION_FILE.read_text(encoding="utf-8")
    assert yaml.safe_load(shipped)["actions"][0]["deployment_id"] == PLACEHOLDER
    automation_file = tmp_path / "automation-escalation.yaml"
    automation_file.write_text(shipped.replace(PLACEHOLDER, deployment_id), encoding="utf-8")
    prefect_cli("automation", "create", "--from-file", str(automation_file), home=tmp_path)
    name = yaml.safe_load(shipped)["name"]

    try:
        # A fresh database swept on 14/3/2025: every step of the ladder is reached at
        # once, overdue_10 by the items due on 28/2/2025.
        reached = daily_sweep(date="2025-03-14")["new_escalations"]
        assert reached > 0
        escalations = events_since(ESCALATION_REACHED, since, reached)
        overdue_10 = sorted(
            e.resource["dunghan.agency"]
            for e in escalations
            if e.resource["dunghan.step"] == "overdue_10"
        )
        assert overdue_10 and len(overdue_10) < len(escalations)

        deployments = DeploymentFilter(
            name=DeploymentFilterName(any_=[inspect_deployment.split("/")[1]])
        )
        with get_client(sync_client=True) as client:

            def inspections():
                runs = client.read_flow_runs(deployment_filter=deployments)
                return runs if len(runs) >= len(overdue_10) else None

            runs = wait_for(inspections, 60, "the automation's inspection runs")
            time.sleep(2)  # no more than one run per overdue_10 event
            runs = client.read_flow_runs(deployment_filter=deployments)
    finally:
        with get_client(sync_client=True) as client:
            for automation in client.read_automations_by_name(name):
                client.delete_automation(automation.id)

    assert sorted(r.parameters["agency"] for r in runs) == overdue_10
    assert {
        (r.parameters["from_date"], r.parameters["to_date"], r.parameters["date"]) for r in runs
    } == {("2025-01-01", "2025-03-14", "2025-03-14")}
    # The rendered parameters are a valid inspection: it runs and reports the overdue.
    report = inspect_flow(**runs[0].parameters)
    assert report["overdue"] > 0


# ----------------------------------------------------------------------- no noise


def test_a_normal_run_prints_no_traceback_no_warning_no_prefect_noise(database_url, tmp_path):
    environment = user_environment(tmp_path, database_url)

    def dunghan(*command: str) -> None:
        terminal = Terminal([str(DUNGHAN), *command], tmp_path, environment)
        code, printed = terminal.wait(120), terminal.output()
        shown = f"dunghan {' '.join(command)}\n{printed[-3000:]}"
        assert code == 0, shown
        assert printed.strip(), shown
        for noise in ("Traceback", "Warning", "WARNING", *PREFECT_NOISE):
            assert noise not in printed, shown

    dunghan("procedures", "import", str(ROOT / "plans" / "sample-procedures.csv"))
    dunghan("dossiers", "sample", "--count", "300", "--output", "var/sample-dossiers.csv")
    dunghan("dossiers", "import", "var/sample-dossiers.csv")
    dunghan("run", "--date", "2025-03-03")
    dunghan("calendar", "show", "2026")
    dunghan("kpi", "--month", "2025-05")
    dunghan("deployments", "write", "--output", "var/prefect.yaml")  # the one importing Prefect
