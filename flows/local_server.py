"""`dunghan serve --local` (`make serve`): Prefect's server with its UI on 127.0.0.1 and
`dunghan serve` against it, as two child processes this one supervises and always stops.

Both children run in sessions of their own, so a Ctrl-C in the terminal reaches the
supervisor only, which stops them in order: first `dunghan serve` (SIGTERM: Prefect's
runner cancels the runs in progress and pauses the deployments' schedules, with no
traceback), then the server. The server's home (its run history database, the UI build,
its log) is `PREFECT_HOME`, else var/prefect, so it never touches ~/.prefect.

Prefect is not imported here: the children are `python -m prefect server start` and
`dunghan serve`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from models.db import redact

HOST = "127.0.0.1"
DEFAULT_PORT = 4200
HOME_ENV = "PREFECT_HOME"
API_ENV = "PREFECT_API_URL"
UI_API_ENV = "PREFECT_UI_API_URL"
WAIT_ENV = "DUNGHAN_WAIT_FOR_API"  # seconds `dunghan serve` waits for the API to answer
DEFAULT_HOME = Path("var/prefect")
LOG_NAME = "server.log"

STARTUP_SECONDS = 180  # the first start creates the database and copies the UI
SERVER_STOP_SECONDS = 15
SERVE_STOP_SECONDS = 60  # cancel the runs in progress, pause every deployment's schedule
POLL_SECONDS = 0.2
LOG_TAIL_LINES = 4

# What the server reads: no telemetry calls, no marketing in the UI, and only warnings in
# its log (var/prefect/server.log), never in the operator's terminal.
SERVER_SETTINGS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}

# `dunghan serve` in a child process, whichever way this one was started.
SERVE_COMMAND = (sys.executable, "-c", "from flows.cli import main; main()", "serve")

PR_SET_PDEATHSIG = 1  # linux/prctl.h


class LocalServerError(Exception):
    """The local server could not start or stopped on its own; the message says why."""


@dataclass(frozen=True)
class LocalServer:
    url: str  # the UI: http://127.0.0.1:4200
    home: Path
    log: Path
    log_start: int  # where this start's lines begin in the log
    process: subprocess.Popen

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"

    def failure(self) -> str:
        return (
            f"Máy chủ Prefect đã dừng (mã {self.process.returncode}). "
            f"Nhật ký {self.log}:\n{self.log_tail()}"
        )

    def log_tail(self) -> str:
        """This start's last messages, without traceback frames (the file has them) and
        with any URL's password masked."""
        with self.log.open("rb") as log:
            log.seek(self.log_start)
            lines = log.read().decode("utf-8", errors="replace").splitlines()
        messages = [
            redact(line)
            for line in lines
            if line.strip() and not line[0].isspace() and "Traceback (most recent" not in line
        ]
        return "\n".join(messages[-LOG_TAIL_LINES:])


def prefect_home() -> Path:
    """`PREFECT_HOME` if set, else var/prefect (absolute: flow runs may change folder)."""
    return Path(os.environ.get(HOME_ENV) or DEFAULT_HOME).resolve()


@contextmanager
def local_server(port: int, home: Path, *, wait: bool = True) -> Iterator[LocalServer]:
    """Prefect's server on 127.0.0.1:`port`, once its API answers (`wait=False`: at once,
    for the caller to start what needs it meanwhile, then `wait_until_healthy`); stopped
    on the way out, however the way out is taken."""
    check_port_free(port)
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / LOG_NAME
    log_start = log_path.stat().st_size if log_path.exists() else 0
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", HOST]
    with (
        log_path.open("ab") as log,
        child_process(
            [*command, "--port", str(port)],
            {
                **os.environ,
                HOME_ENV: str(home),
                **SERVER_SETTINGS,
                # The UI's pages call the API at this address (else at port 4200).
                UI_API_ENV: f"http://{HOST}:{port}/api",
            },
            SERVER_STOP_SECONDS,
            signal.SIGTERM,
            output=log,
        ) as process,
    ):
        server = LocalServer(f"http://{HOST}:{port}", home, log_path, log_start, process)
        if wait:
            wait_until_healthy(server)
        yield server


@contextmanager
def served(server: LocalServer, options: Sequence[str]) -> Iterator[subprocess.Popen]:
    """`dunghan serve` against the local server; its output is the terminal's. It may
    start while the server does: it loads the plan and builds the deployments, then
    waits for the API (`WAIT_ENV`) before registering them."""
    environment = {
        **os.environ,
        HOME_ENV: str(server.home),
        API_ENV: server.api_url,
        WAIT_ENV: str(STARTUP_SECONDS),
    }
    # Killed outright if we are: its graceful stop needs the server, which goes with us.
    with child_process(
        [*SERVE_COMMAND, *options], environment, SERVE_STOP_SECONDS, signal.SIGKILL
    ) as process:
        yield process


def first_to_exit(*processes: subprocess.Popen) -> subprocess.Popen:
    while True:
        for process in processes:
            if process.poll() is not None:
                return process
        time.sleep(POLL_SECONDS)


# --------------------------------------------------------------------- processes


@contextmanager
def child_process(
    command: Sequence[str],
    environment: Mapping[str, str],
    stop_seconds: float,
    death_signal: signal.Signals,
    output=None,
) -> Iterator[subprocess.Popen]:
    """A child in a session of its own (out of reach of the terminal's Ctrl-C), which
    gets `death_signal` if we are killed, and is stopped with its own children on exit."""
    process = subprocess.Popen(
        command,
        env=dict(environment),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
        start_new_session=True,
        preexec_fn=die_with_parent(death_signal),
    )
    try:
        yield process
    finally:
        stop_group(process, stop_seconds)


def die_with_parent(death_signal: signal.Signals) -> Callable[[], None] | None:
    """On Linux, the child gets `death_signal` when we die without cleaning up."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def in_child() -> None:
        libc.prctl(PR_SET_PDEATHSIG, death_signal)
        if os.getppid() != parent:  # we died before prctl took effect
            os._exit(1)

    return in_child


def stop_group(process: subprocess.Popen, seconds: float) -> None:
    """SIGTERM to the child's process group (it and whatever it started); SIGKILL if
    the child is still there after `seconds`; then nothing of the group is left."""
    with suppress(ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(seconds)
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


# ------------------------------------------------------------------------ server


def check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server binds: connections of a previous run waiting to close do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, port))
        except OSError:
            raise LocalServerError(
                f"Cổng {port} trên {HOST} đang được dùng (có thể một máy chủ Prefect khác đang "
                f"chạy). Dừng chương trình đó, hoặc chọn cổng khác: dunghan serve --local "
                f"--port {port + 1}; hoặc phục vụ trên máy chủ đang chạy: "
                f"PREFECT_API_URL=http://{HOST}:{port}/api dunghan serve"
            ) from None


def wait_until_healthy(server: LocalServer) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise LocalServerError(server.failure())
        if healthy(server.api_url):
            return
        time.sleep(POLL_SECONDS)
    raise LocalServerError(
        f"Máy chủ Prefect chưa sẵn sàng sau {STARTUP_SECONDS} giây. "
        f"Nhật ký {server.log}:\n{server.log_tail()}"
    )


def wait_for_api(api_url: str, seconds: float) -> bool:
    """Whether the API answered within `seconds`."""
    deadline = time.monotonic() + seconds
    while not healthy(api_url):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True


def healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
