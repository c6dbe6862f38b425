"""`pairstream demo`: the whole job on this machine with embedded defaults.

Starts the embedded broker and (unless `PAIRSTREAM_LLM_BASE_URL` is set) a real
small model behind `python -m llama_cpp.server`, runs a worker subprocess
against them, publishes the anchors, consumes the results into a dataset and
prints a summary. Every child process is stopped on exit and on Ctrl-C.
"""

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from streams.dataset.publish import load_anchor_file, publish
from streams.dataset.sink import ConsumeStats, SinkOptions, consume
from streams.kafka import TopicCreationError, ensure_topics
from streams.local.broker import BrokerError, EmbeddedBroker
from streams.local.model_server import MODEL_ALIAS, ModelServer, ModelServerError
from streams.local.processes import ProcessError, start_worker, stop_process, worker_env
from streams.settings import Settings

SAMPLE = Path(__file__).parent / "samples" / "anchors.jsonl"


class DemoError(RuntimeError):
    """The demo could not run or did not finish; `str()` says why (exit code 1)."""


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

    @property
    def complete(self) -> bool:
        """Every anchor ended as a triplet or a dead letter (or was already in the dataset)."""
        return self.accounted + self.stats.duplicates >= self.anchors

    def summary(self) -> str:
        s = self.stats
        return (
            f"anchors        {self.anchors}\n"
            f"triplets       {s.triplets}  ({s.triplets / max(self.anchors, 1):.0%} valid)\n"
            f"dead letters   {s.dead_letters}\n"
            f"duplicates     {s.duplicates} (already in the dataset, dropped)\n"
            f"model          {self.model}\n"
            f"time           {self.elapsed:.1f}s  ({self.anchors / max(self.elapsed, 1e-9):.2f} anchors/s)\n"
            f"dataset        {self.out_dir}/*.jsonl  (manifest.json; load_dataset(\"json\", data_files=...))\n"
            f"dead letters   {self.out_dir / 'dead_letters'}/*.jsonl"
        )


def demo_worker_env(broker: EmbeddedBroker, llm_url: str, local_model: bool) -> dict[str, str]:
    env = worker_env(broker.url, llm_url)
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
    try:
        return _run(settings, records, out_dir=out_dir, timeout=timeout, on_progress=on_progress, log=log)
    except (BrokerError, ModelServerError, ProcessError, TopicCreationError) as exc:
        raise DemoError(str(exc)) from exc


def _run(settings: Settings, records: list[tuple[bytes | None, bytes]], *, out_dir: Path, timeout: float,
         on_progress, log) -> DemoResult:
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
        env = demo_worker_env(broker, llm_url, local)
        run_settings = Settings(broker=broker.url, llm_base_url=llm_url, broker_session_timeout_s=4,
                                anchors_topic=settings.anchors_topic, triplets_topic=settings.triplets_topic,
                                dlq_topic=settings.dlq_topic, app_id=settings.app_id)
        asyncio.run(ensure_topics(run_settings, [run_settings.anchors_topic, run_settings.triplets_topic,
                                                 run_settings.dlq_topic]))
        worker = start_worker(env, logs / "worker.log")
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

            options = SinkOptions(dead_letters=True, group=f"{run_settings.app_id}-demo-sink", limit=sent)
            task = asyncio.create_task(consume(run_settings, out_dir, options, on_progress=progress, stop=stop))
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
