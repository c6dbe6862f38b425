"""Child processes of the local stack: starting them, free ports, waiting for a server to answer, stopping.

Shared by the embedded broker, the local model server, `demo` and `bench`, which
all start servers on free loopback ports and must stop every child on exit.

Every child is started by `spawn`: in its own session (a Ctrl-C in the terminal reaches
only the parent, which stops the children in order) and tied to the parent by Linux's
`PR_SET_PDEATHSIG`, so that a parent killed outright (SIGKILL, or a signal it does not
handle) takes its children with it instead of leaving a broker, a SeaweedFS server or a
model server running on their ports and data. `signals_stop()` turns SIGTERM and SIGHUP
into KeyboardInterrupt, so that `demo`, `broker` and the like stop cleanly on them as on
Ctrl-C.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import httpx

PR_SET_PDEATHSIG = 1
try:
    # this process's own libc symbols: `ctypes.util.find_library` would run ldconfig in a child process at import,
    # a child that a signal can race (the broker's start was killed by a SIGTERM meant for after its handler)
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None
_spawning = False  # spawn() is between its fork and handing the Popen over: no KeyboardInterrupt now
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})  # what signals_stop and Ctrl-C stop on


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


def die_with_parent(sig: int = signal.SIGTERM, mask: set[int] | None = None) -> Callable[[], None] | None:
    """A `preexec_fn` that ties the child to this process: the kernel sends it `sig` when this process dies
    (then the child's signal mask is set back to `mask`, if given). None outside the main thread, where the death
    signal would come when the forking thread ends, and where prctl is missing.

    It runs in the child, after fork and before exec; the death signal outlives exec. If this process died between
    the fork and the prctl, the kernel will never send it: the child sees it has been reparented and exits at once
    instead of running the command.
    """
    if _prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent, sig = os.getpid(), int(sig)

    def preexec() -> None:
        if _prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0 and os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    return preexec


def open_log(path: Path) -> int:
    """`path` opened for appending as a descriptor, the owner's only (0600, also if it existed): logs hold records."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    return fd


def spawn(cmd: Sequence[str], log_file: Path | None = None, *, env: dict[str, str] | None = None,
          death_signal: int = signal.SIGTERM) -> subprocess.Popen:
    """`cmd` as a child of the local stack: its own session, output (stdout and stderr) appended to `log_file`
    (mode 0600; none: discarded), and `death_signal` sent to it by the kernel if this process dies first.

    The death signal is tied to the *thread* that forks, so it is only asked for from the main thread (a child
    started from another thread would be killed when that thread ends); children started elsewhere rely on their
    owner's stop(). In the main thread, Ctrl-C, SIGTERM and SIGHUP wait while the child starts, so that their
    KeyboardInterrupt cannot come between the fork and the caller holding the Popen (`signals_stop` defers it;
    with Ctrl-C's default handler, the child is stopped). This process keeps no handle on the log: the child
    has its own.
    """
    global _spawning
    mask = preexec = None
    if _prctl is not None and threading.current_thread() is threading.main_thread():
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # the child sets it back before exec
        preexec = die_with_parent(death_signal, mask)
    proc, _spawning = None, True
    try:  # preexec_fn despite threads: it only makes system calls (prctl, getppid, sigprocmask), takes no lock
        out = open_log(log_file) if log_file is not None else subprocess.DEVNULL
        try:
            proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True, preexec_fn=preexec)
        finally:
            if log_file is not None:
                os.close(out)
    finally:
        try:
            if mask is not None:
                try:
                    signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal that came meanwhile is handled here
                except BaseException:  # Ctrl-C's default handler, outside `signals_stop`
                    stop_process(proc, timeout=5)
                    raise
        finally:
            _spawning = False
    return proc


def _unsafe_to_interrupt(frame) -> bool:
    """Whether a KeyboardInterrupt raised at `frame` could leave this process broken: inside `spawn` (a child
    nobody holds), inside an import (a half-run module), or in code compiled from a string, as dataclasses and
    namedtuples make while their module is imported. CPython 3.11 marks a KeyboardInterrupt that leaves such
    code as unhandled even when a caller catches it, and then ends the process by SIGINT: `broker`, stopped
    cleanly by a SIGTERM that came during `import httpcore`, exited -2 instead of 0."""
    if _spawning:
        return True
    while frame is not None:
        name = frame.f_code.co_filename
        if name == "<string>" or name.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


@contextmanager
def signals_stop(*signals: int) -> Iterator[None]:
    """Within the block, `signals` (default SIGINT, SIGTERM and SIGHUP) raise KeyboardInterrupt in the main
    thread, as Ctrl-C does, so that the code in the block stops its children on its way out; another such signal
    during that clean-up is ignored. A signal that comes where raising is unsafe (`_unsafe_to_interrupt`) is sent
    again 20 ms later, until it lands in the block's own code (for at most a second: then it raises wherever it
    lands); one still waiting when the block ends raises there.
    The previous handlers come back after the block. Outside the main thread: no change."""
    signals = signals or (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    interrupted = False
    deferred: int | None = None
    active, deferrals = True, 0

    def again(signum: int) -> None:
        if active:
            os.kill(os.getpid(), signum)

    def handler(signum, frame) -> None:
        nonlocal interrupted, deferred, deferrals
        if interrupted:
            return
        if deferrals < 50 and _unsafe_to_interrupt(frame):
            deferred, deferrals = signum, deferrals + 1
            timer = threading.Timer(0.02, again, (signum,))
            timer.daemon = True
            timer.start()
            return
        interrupted = True
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in signals}
    try:
        yield
    finally:
        active = False
        for sig, old in previous.items():
            signal.signal(sig, old)
    if deferred is not None and not interrupted:
        raise KeyboardInterrupt(signal.Signals(deferred).name)


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
    """`pairstream worker` as a child process, exactly as deployed, its output appended to `log_file`.

    SIGKILL if this process dies outright: its broker and model die with it, so the worker could not commit
    anything more, and a graceful stop would wait forever on anchors it can no longer finish (seen: an orphaned
    worker draining against a dead broker for 20 minutes). What it did not commit is redelivered.
    `stop_process` (SIGTERM, then SIGKILL) is the graceful way, used while the stack is still up."""
    return spawn([sys.executable, "-m", "streams.cli", "worker"], log_file, env=env, death_signal=signal.SIGKILL)
