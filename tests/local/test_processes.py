"""The local stack's children die with their parent: a SIGKILLed `pairstream broker` leaves no Tansu or
SeaweedFS behind, SIGTERM and SIGHUP stop `broker` and `demo` cleanly even while they start, a durable
broker's DIR is locked, and the parent keeps no handle on its children's log files."""

import gc
import os
import signal
import subprocess
import sys
import threading
import time
import warnings

import psutil
import pytest

from streams.local import processes
from streams.local.processes import free_port, start_worker, stop_process
from support.processes import ROOT, clean_env, spawn_cli
from support.wait import wait_until


def gone(p: psutil.Process) -> bool:
    """Exited (a zombie nobody reaped yet counts: it runs no code and holds no port)."""
    try:
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def alive(procs: list[psutil.Process]) -> list[str]:
    """The ones still running, as "pid name" (the names were read when they were found)."""
    return [f"{p.pid} {p.info['name']}" for p in procs if not gone(p)]


@pytest.fixture
def reap():
    """Kill whatever a test's processes left running (today's failures must not leave servers behind): the
    processes tracked, and their descendants then and at the end of the test."""
    tracked: list[psutil.Process] = []

    def descendants(proc: psutil.Process) -> list[psutil.Process]:
        try:
            return proc.children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def track(*pids: int) -> None:
        for pid in pids:
            try:
                proc = psutil.Process(pid)
            except psutil.NoSuchProcess:
                continue
            tracked.extend([proc, *descendants(proc)])

    yield track
    for proc in [*tracked, *(d for t in tracked for d in descendants(t))]:
        try:
            if proc.is_running():
                proc.kill()
        except psutil.NoSuchProcess:
            pass


def children_of(proc: subprocess.Popen, n: int, reap, timeout: float = 30) -> list[psutil.Process]:
    """The first `n` descendants of `proc`, waited for (the caller's cleanup tracks them)."""
    parent = psutil.Process(proc.pid)

    def found():
        assert proc.poll() is None, f"exited with {proc.returncode}"
        kids = parent.children(recursive=True)
        reap(*(k.pid for k in kids))
        for k in kids:
            k.info = {"name": k.name()}
        return kids if len(kids) >= n else None

    return wait_until(found, timeout, f"{n} child processes of pid {proc.pid}", interval=0.02)


# -- the helper ---------------------------------------------------------------------------------------

PARENT = """
import sys, time
from streams.local.processes import spawn
child = spawn(["sleep", "60"])
print(child.pid, flush=True)
time.sleep(60)
"""


def test_a_spawned_child_dies_when_its_parent_is_killed(reap):
    parent = subprocess.Popen([sys.executable, "-c", PARENT], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    reap(parent.pid)
    line = parent.stdout.readline()
    assert line.strip().isdigit(), f"parent said {line!r}, exit {parent.wait(5)}"
    child = psutil.Process(int(line))
    reap(child.pid)
    parent.kill()
    parent.wait(5)
    wait_until(lambda: gone(child), 5, f"the exit of child {child.pid} of a SIGKILLed parent")


def test_a_child_whose_parent_died_before_the_prctl_does_not_run(monkeypatch):
    """The race between fork and prctl: a child that finds another parent than the one that forked it (as if
    that one had died meanwhile, and the death signal would never come) exits before exec."""
    monkeypatch.setattr(os, "getpid", lambda: 1)  # "the parent was pid 1": the child's real parent is another
    preexec = processes.die_with_parent()
    monkeypatch.undo()
    child = subprocess.Popen(["sleep", "30"], preexec_fn=preexec)
    assert child.wait(5) == -signal.SIGKILL


def test_a_child_spawned_from_another_thread_outlives_that_thread(reap):
    """The death signal comes when the forking *thread* ends: outside the main thread, spawn does not ask for it
    (the child would die with the thread)."""
    started = []
    thread = threading.Thread(target=lambda: started.append(processes.spawn(["sleep", "30"])))
    thread.start()
    thread.join()
    reap(started[0].pid)
    time.sleep(0.5)
    assert started[0].poll() is None
    stop_process(started[0])


def open_fds() -> set[str]:
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            pass
    return out


def test_the_parent_keeps_no_handle_on_a_childs_log(tmp_path, monkeypatch):
    """The broker's and a worker's log files: no file object left to the garbage collector (ResourceWarning),
    no descriptor left open in this process, however many times they start."""
    from streams.local.broker import EmbeddedBroker

    log = tmp_path / "broker.log"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):
            broker = EmbeddedBroker(log_file=log).start()
            assert str(log) not in open_fds()
            broker.stop()
        worker = start_worker(dict(os.environ, PAIRSTREAM_BROKER="kafka://127.0.0.1:9"), tmp_path / "worker.log")
        try:
            assert str(tmp_path / "worker.log") not in open_fds()
        finally:
            stop_process(worker, timeout=20)
        gc.collect()
    leaks = [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)]
    assert leaks == []


def test_the_model_servers_log_is_closed_too(tmp_path, monkeypatch):
    """ModelServer.start without waiting for the model (the child is stopped at once): no ResourceWarning."""
    pytest.importorskip("xllamacpp")
    from streams.local import model_server

    monkeypatch.setattr(model_server, "wait_http", lambda *a, **k: None)
    fake = tmp_path / "none.gguf"
    fake.write_bytes(b"GGUF")  # a GGUF header: the engine fails on it, after the child is stopped
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        server = model_server.ModelServer(tmp_path / "model.log", slots=1, threads=1, model=str(fake)).start()
        try:
            assert str(tmp_path / "model.log") not in open_fds()
        finally:
            server.stop()
        gc.collect()
    assert [str(w.message) for w in seen if issubclass(w.category, ResourceWarning)] == []


STOPPED_DURING_EXEC = """
import os, signal, sys, time
from streams.local.processes import signals_stop
try:
    with signals_stop():
        # what a dataclass does while its module is imported: code compiled from a string; the signal lands in it
        exec("os.kill(os.getpid(), signal.SIG{sig}); [None for _ in range(100000)]")
        time.sleep(5)
        sys.exit(3)  # the signal was lost
except KeyboardInterrupt as exc:
    print("stopped by", exc)
"""


@pytest.mark.parametrize("sig", ["TERM", "HUP", "INT"])
def test_a_signal_inside_code_compiled_from_a_string_still_exits_cleanly(tmp_path, sig):
    """CPython 3.11 marks a KeyboardInterrupt that leaves exec'd code as unhandled, even when the caller catches
    it, and ends the process by SIGINT: before the deferral, this exited -2 (CI: `broker` stopped during
    `import httpcore`). Now the interrupt is raised once the exec'd code is left."""
    script = tmp_path / "stopped.py"  # a file: `python -c` code is compiled from a string itself
    script.write_text(STOPPED_DURING_EXEC.format(sig=sig))
    done = subprocess.run([sys.executable, str(script)], cwd=ROOT, env=clean_env(), capture_output=True, text=True,
                          timeout=30)
    assert (done.returncode, done.stdout.strip()) == (0, f"stopped by SIG{sig}"), done.stderr


# -- pairstream broker and demo -------------------------------------------------------------------------

@pytest.mark.integration
@pytest.mark.parametrize("durable", [False, True], ids=["memory", "durable"])
def test_a_killed_broker_leaves_no_child_behind(tmp_path, reap, durable):
    args = ["broker", "--port", str(free_port())] + (["--data", str(tmp_path / "data")] if durable else [])
    proc = spawn_cli(*args, text=True)
    reap(proc.pid)
    assert proc.stdout.readline().startswith("broker listening"), proc.communicate(timeout=30)
    kids = children_of(proc, 2 if durable else 1, reap)  # Tansu (and SeaweedFS)
    proc.kill()
    proc.wait(5)
    wait_until(lambda: not alive(kids), 5, f"the exit of the SIGKILLed broker's children {alive(kids)}")


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_a_signal_while_the_broker_starts_stops_it_and_its_children(tmp_path, reap, sig):
    """The signal arrives while SeaweedFS is starting (before `broker listening`): a clean stop, exit 0."""
    proc = spawn_cli("broker", "--data", str(tmp_path / "data"), text=True)
    reap(proc.pid)
    kids = children_of(proc, 1, reap)
    proc.send_signal(sig)
    code = proc.wait(60)
    assert alive(kids) == [], "the broker exited and left its children running"
    assert code == 0, proc.stderr.read()[-2000:]


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["sigterm", "sighup"])
def test_a_signal_while_the_demo_starts_stops_it_like_ctrl_c(tmp_path, reap, fake_llm, sig):
    """The signal arrives while the broker (the first child) starts: every child stopped, exit 130."""
    llm = fake_llm()
    env = clean_env(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_QUALITY="off")
    proc = spawn_cli("demo", "--limit", "3", "--out", str(tmp_path / "ds"), env=env, text=True)
    reap(proc.pid)
    kids = children_of(proc, 1, reap)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert alive(kids) == [], "the demo exited and left its children running"
    assert proc.returncode == 130 and "interrupted; every child process was stopped" in err, err[-2000:]


@pytest.mark.integration
def test_a_durable_brokers_directory_is_locked(tmp_path, reap, fake_llm):
    """A second `broker --data DIR`, or a `demo --broker-data DIR`, exits 1 at once naming DIR and the pid."""
    data = tmp_path / "data"
    first = spawn_cli("broker", "--data", str(data), text=True)
    reap(first.pid)
    assert first.stdout.readline().startswith("broker listening"), first.communicate(timeout=30)
    llm = fake_llm()
    env = clean_env(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_QUALITY="off")
    for args in (["broker", "--data", str(data)],
                 ["demo", "--limit", "1", "--out", str(tmp_path / "ds"), "--broker-data", str(data)]):
        second = spawn_cli(*args, env=env, text=True)
        reap(second.pid)
        try:
            _, err = second.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`{args[0]}` on a directory in use did not exit within 30s")
        lines = err.strip().splitlines()
        assert second.returncode == 1, err[-2000:]
        assert len(lines) == 1 and str(data) in lines[0] and f"pid {first.pid}" in lines[0], err
    assert (data / "broker.lock").read_text().strip() == str(first.pid)
    first.send_signal(signal.SIGTERM)
    assert first.wait(60) == 0
