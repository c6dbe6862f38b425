"""Child processes of the local stack: free ports, waiting for a server to answer, stopping cleanly.

Shared by the embedded broker, the local model server, `demo` and `bench`, which
all start servers on free loopback ports and must stop every child on exit.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import httpx


class ProcessError(RuntimeError):
    """A child process exited or never started listening."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now (SO_REUSEADDR, as servers bind: TIME_WAIT is no obstacle)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Until something accepts TCP connections on host:port; fails fast if `proc` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ProcessError(f"process exited with code {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise ProcessError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None, what: str,
              ready: Callable[[int], bool] = lambda status: status < 500) -> None:
    """Until `url` answers with a status `ready` accepts (default: below 500); fails fast if `proc` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ProcessError(f"{what} exited with code {proc.returncode}")
        try:
            if ready(httpx.get(url, timeout=5).status_code):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise ProcessError(f"{what} did not answer at {url} within {timeout:.0f}s")


def stop_process(proc: subprocess.Popen | None, timeout: float = 10, sig: int = signal.SIGTERM) -> None:
    """`sig` (SIGTERM), then SIGKILL if the process has not exited within `timeout` seconds."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def worker_env(broker_url: str, llm_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a local worker child: this process's, pointed at the local broker and LLM.

    Local defaults (no web port, a 4 s session timeout since the embedded broker makes a new member's first
    join wait half of it, warnings only) apply where the environment does not set them; `overrides` win.
    """
    env = dict(os.environ)
    for name, value in (("PAIRSTREAM_WEB_PORT", "0"), ("PAIRSTREAM_BROKER_SESSION_TIMEOUT_S", "4"),
                        ("PAIRSTREAM_LOG_LEVEL", "warning")):
        env.setdefault(name, value)
    env.update({"PAIRSTREAM_BROKER": broker_url, "PAIRSTREAM_LLM_BASE_URL": llm_url, "PYTHONUNBUFFERED": "1"})
    env.update(overrides)
    return env


def start_worker(env: dict[str, str], log_file: Path) -> subprocess.Popen:
    """`pairstream worker` as a child process, exactly as deployed, its output appended to `log_file`."""
    return subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env,
                            stdout=open(log_file, "ab"), stderr=subprocess.STDOUT)
