"""`pairstream demo`: the whole job on this machine with embedded defaults.

Starts the embedded broker and (unless `PAIRSTREAM_LLM_BASE_URL` is set) a real
small model on llama.cpp's server (`streams.local.model_server`), runs a worker
subprocess against them with its concurrency set to the server's slots, publishes
the anchors, consumes the results into a dataset and prints a summary, with how
many outputs hit `max_tokens` (read from the worker's /metrics). Every child
process is stopped on exit and on Ctrl-C, SIGTERM or SIGHUP, and dies with the demo if
it is killed outright. With `broker_data` the broker is durable
(`streams.local.object_store`): topics and offsets outlive the run, so anchors a
stopped run left unprocessed are finished by the next, and the dataset keeps growing.
"""

import asyncio
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from streams.dataset.publish import load_anchor_file, publish
from streams.dataset.sink import ConsumeStats, SinkOptions, consume
from streams.kafka import TopicCreationError, ensure_topics, worker_topics
from streams.local.broker import BrokerError, EmbeddedBroker
from streams.local.model_server import ModelServer, ModelServerError
from streams.local.weights import DEFAULT_MODEL
from streams.local.processes import (ProcessError, free_port, signals_stop, start_worker, stop_process, wait_http,
                                     worker_env)
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
    engine: str = "the server at PAIRSTREAM_LLM_BASE_URL"
    worker_metrics: dict[str, float] = field(default_factory=dict)  # a few totals from the worker's /metrics

    @property
    def accounted(self) -> int:
        return self.stats.triplets + self.stats.dead_letters

    @property
    def complete(self) -> bool:
        """Every anchor ended as a triplet or a dead letter (or was already in the dataset)."""
        return self.accounted + self.stats.duplicates >= self.anchors

    def gate_line(self) -> str:
        refused = {k.removeprefix("refused:"): v for k, v in self.worker_metrics.items() if k.startswith("refused:")}
        if not self.worker_metrics.get("judged"):
            return "off (no pair was scored)"
        reasons = ", ".join(f"{k} {v:.0f}" for k, v in sorted(refused.items(), key=lambda kv: -kv[1])) or "none"
        return (f"yield {self.stats.triplets}/{self.anchors} anchors ({self.stats.triplets / max(self.anchors, 1):.0%});"
                f" {self.worker_metrics['judged']:.0f} pairs judged, refusals: {reasons}")

    def mined_line(self) -> str:
        n = self.worker_metrics.get("mined_records", 0)
        if not n:
            return "none (no record was mined for)"
        full = self.worker_metrics.get("mined_full", 0)
        return (f"{self.worker_metrics.get('mined_total', 0) / n:.2f} negatives per record from the stream; "
                f"{full:.0f} of {n:.0f} records ({full / n:.0%}) have 3 or more")

    def summary(self) -> str:
        s = self.stats
        return (
            f"anchors        {self.anchors}\n"
            f"triplets       {s.triplets}  ({s.triplets / max(self.anchors, 1):.0%} valid)\n"
            f"dead letters   {s.dead_letters}\n"
            f"duplicates     {s.duplicates} (already in the dataset, dropped)\n"
            f"model          {self.model}\n"
            f"engine         {self.engine}\n"
            f"requests       {self.worker_metrics.get('requests', 0):.0f} to the LLM "
            f"({self.worker_metrics.get('requests', 0) / max(s.triplets, 1):.1f} per delivered record); "
            f"{self.worker_metrics.get('truncated', 0):.0f} outputs hit max_tokens (re-asked)\n"
            f"quality gate   {self.gate_line()}\n"
            f"time           {self.elapsed:.1f}s  ({self.anchors / max(self.elapsed, 1e-9):.2f} anchors/s)\n"
            f"mined          {self.mined_line()}\n"
            f"dataset        {self.out_dir}  (card README.md: load_dataset(\"{self.out_dir}\", \"triplet\") or "
            f"\"mined-negatives\", \"records\"; figures and plots: pairstream report {self.out_dir})\n"
            f"dead letters   {self.out_dir / 'dead_letters'}/*.jsonl"
        )


def demo_worker_env(broker: EmbeddedBroker, llm_url: str, model: ModelServer | None, web_port: int) -> dict[str, str]:
    env = worker_env(broker.url, llm_url)
    if "PAIRSTREAM_WEB_PORT" not in os.environ:
        env["PAIRSTREAM_WEB_PORT"] = str(web_port)  # the summary reads the worker's /metrics
    if model is not None:
        env.setdefault("PAIRSTREAM_LLM_MODEL", model.alias)
        env.setdefault("PAIRSTREAM_CONCURRENCY", str(model.slots))  # one request per slot
        for name, value in LOCAL_MODEL_ENV.get(model.model, {}).items():
            env.setdefault(name, value)
    return env


# Worker settings tuned per local model (a user's PAIRSTREAM_* variables win).
LOCAL_MODEL_ENV: dict[str, dict[str, str]] = {
    "smollm2-135m": {
        "PAIRSTREAM_MAX_OUTPUT_CHARS": "200",
        # Grammar-constrained JSON lets a small model loop on whitespace until max_tokens: keep it tight
        # (two sentences of at most 200 characters fit; a truncated output is re-asked with twice as many).
        "PAIRSTREAM_LLM_MAX_TOKENS": "160",
        # Tuned for the quality gate on SmolLM2 (60 STS sentences; docs/quality.md): a warmer first attempt
        # copies the anchor less, and a fifth attempt recovers most of what the gate refuses.
        "PAIRSTREAM_LLM_TEMPERATURE": "0.7",
        "PAIRSTREAM_MAX_GENERATION_ATTEMPTS": "5",
    },
    "qwen2.5-coder-1.5b": {
        "PAIRSTREAM_MAX_OUTPUT_CHARS": "400",  # long news anchors need room to keep every fact
        "PAIRSTREAM_LLM_MAX_TOKENS": "256",
        # At 0.7 readers found 88-90% of its positives meaning-changed (tests/data/judge/qwen2.5-coder-1.5b.jsonl);
        # cooler invents less, and two candidates per attempt let the gate choose (best of n).
        "PAIRSTREAM_LLM_TEMPERATURE": "0.4",
        "PAIRSTREAM_CANDIDATES": "2",
        "PAIRSTREAM_MAX_GENERATION_ATTEMPTS": "2",
    },
}


def run_demo(settings: Settings, records: list[tuple[bytes | None, bytes]], *, out_dir: Path, timeout: float,
             on_progress=None, log=print, slots: int | None = None, threads: int | None = None,
             broker_data: Path | None = None, model: str = DEFAULT_MODEL,
             model_cache: Path | None = None) -> DemoResult:
    """Run the whole job for `records` (from `load_anchors`); children are stopped whatever happens. SIGTERM and
    SIGHUP (a closed terminal) stop it as Ctrl-C does: KeyboardInterrupt once every child is stopped."""
    try:
        with signals_stop():
            return _run(settings, records, out_dir=out_dir, timeout=timeout, on_progress=on_progress, log=log,
                        slots=slots, threads=threads, broker_data=broker_data, model=model,
                        model_cache=model_cache)
    except (BrokerError, ModelServerError, ProcessError, TopicCreationError) as exc:
        raise DemoError(str(exc)) from exc


def _run(settings: Settings, records: list[tuple[bytes | None, bytes]], *, out_dir: Path, timeout: float,
         on_progress, log, slots: int | None, threads: int | None, broker_data: Path | None, model: str,
         model_cache: Path | None) -> DemoResult:
    logs = out_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    broker = server = worker = None
    try:
        broker = EmbeddedBroker(log_file=logs / "broker.log", data_dir=broker_data)
        broker.start()  # `broker` is set first: an interrupted start is stopped below too
        log(f"broker     {broker.url}" + (f" (durable: {broker_data})" if broker_data else ""))
        local = "PAIRSTREAM_LLM_BASE_URL" not in os.environ
        if local:
            server = ModelServer(logs / "model-server.log", slots=slots, threads=threads, model=model,
                                 cache=model_cache, log=lambda line: log(f"model      {line}"))
            log(f"model      starting {server.alias} ({server.path}) on {server.engine}...")
            server.start()
            llm_url = server.base_url
        else:
            llm_url = settings.llm_base_url
        log(f"llm        {llm_url}")
        web_port = free_port()
        env = demo_worker_env(broker, llm_url, server, web_port)
        run_settings = Settings(broker=broker.url, llm_base_url=llm_url, broker_session_timeout_s=4,
                                anchors_topic=settings.anchors_topic, triplets_topic=settings.triplets_topic,
                                dlq_topic=settings.dlq_topic, app_id=settings.app_id)
        asyncio.run(ensure_topics(run_settings, worker_topics(run_settings)))
        worker = start_worker(env, logs / "worker.log")
        started = time.monotonic()
        port = int(env["PAIRSTREAM_WEB_PORT"])
        if port:  # the clock starts when the worker is ready: start-up is reported apart from throughput
            # /ready: broker answering, partitions assigned, LLM answering
            wait_http(f"http://127.0.0.1:{port}/ready", 120, worker, "the worker", ready=lambda status: status == 200)
            log(f"worker     ready in {time.monotonic() - started:.1f}s (consumer group joined, LLM answering)")
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
        elapsed = time.monotonic() - t0
        served = ", ".join(sorted(stats.models)) or env.get("PAIRSTREAM_LLM_MODEL", settings.llm_model)
        return DemoResult(sent, stats, elapsed, out_dir, served, server.engine if server else DemoResult.engine,
                          worker_metrics(port))
    finally:
        stop_process(worker, timeout=20)
        if server:
            server.stop()
        if broker:
            broker.stop()


def worker_metrics(port: int) -> dict[str, float]:
    """LLM requests, truncated outputs (re-asks for `truncated`), judged pairs and refusals, and mined negatives
    from the worker's /metrics; {} if unreadable."""
    if not port:
        return {}
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return {}
    totals = {"requests": 0.0, "truncated": 0.0, "judged": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "pairstream_llm_requests_total":
                totals["requests"] += sample.value
            elif sample.name == "pairstream_generation_retries_total" and sample.labels.get("problem") == "truncated":
                totals["truncated"] += sample.value
            elif sample.name == "pairstream_quality_score_count" and sample.labels.get("score") == "anchor_positive":
                totals["judged"] += sample.value
            elif sample.name == "pairstream_mined_negatives_count":
                totals["mined_records"] = sample.value
            elif sample.name == "pairstream_mined_negatives_sum":
                totals["mined_total"] = sample.value
            elif sample.name == "pairstream_mined_negatives_bucket" and sample.labels.get("le") == "2.0":
                totals["mined_under_3"] = sample.value
            elif sample.name == "pairstream_quality_rejections_total":
                key = "refused:" + sample.labels.get("problem", "?")
                totals[key] = totals.get(key, 0.0) + sample.value
    if "mined_records" in totals:
        totals["mined_full"] = totals["mined_records"] - totals.pop("mined_under_3", 0.0)
    return totals
