"""pairstream as a user runs it: the CLI and workers as subprocesses, with an environment built one way."""

import os
import signal
import subprocess
import sys
from pathlib import Path

from streams.local.processes import die_with_parent, stop_process
from support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data" / "stsb_test_sentences.txt"
CLI = [sys.executable, "-m", "streams.cli"]


def stsb_sentences(n: int) -> list[str]:
    """The first n real sentences of the STS benchmark test split (from ../shared)."""
    lines = [line.strip() for line in SHARED_DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[:n]


def clean_env(**overrides: object) -> dict[str, str]:
    """This process's environment without any PAIRSTREAM_* variable, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAIRSTREAM_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120,
            stdin: bytes | str | None = None) -> subprocess.CompletedProcess:
    """`pairstream ARGS` to completion, output captured as text."""
    text_in = stdin.decode() if isinstance(stdin, bytes) else stdin
    return subprocess.run([*CLI, *args], env=env if env is not None else clean_env(), cwd=ROOT, input=text_in,
                          capture_output=True, text=True, timeout=timeout)


def spawn_cli(*args: str, env: dict[str, str] | None = None, log: Path | None = None,
              **popen: object) -> subprocess.Popen:
    """`pairstream ARGS` in the background; its output appended to `log` (or captured as pipes). It gets SIGKILL
    if the test process dies (a killed test run leaves no broker or worker behind: the session broker dies with
    the run, so a worker's graceful stop would wait for it forever; its own children die with it in turn)."""
    popen.setdefault("preexec_fn", die_with_parent(signal.SIGKILL))
    out = open(log, "ab") if log else subprocess.PIPE
    try:
        return subprocess.Popen([*CLI, *args], env=env if env is not None else clean_env(), cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT if log else subprocess.PIPE, **popen)
    finally:
        if log:
            out.close()  # the child has its own copy


class Worker:
    """`pairstream worker` as a subprocess, with its output captured to a file."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Worker":
        self.proc = spawn_cli("worker", env=self.env, log=self.log_path)
        return self

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        """True while running; AssertionError with the log's tail once it exited."""
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log[-3000:]}")
        return True

    def wait_assigned(self, timeout: float = 60) -> None:
        """Wait until the consumer group gave this worker its partitions (no fixed sleeps)."""
        wait_until(lambda: self.alive() and "partitions assigned:" in self.log, timeout,
                   f"worker assignment (log: {self.log_path})")

    def stop(self, sig: int = 15, timeout: float = 30) -> int:
        stop_process(self.proc, timeout, sig)
        return self.proc.returncode
