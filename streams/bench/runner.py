"""`pairstream bench`: how close pairstream keeps an LLM backend to saturation, and what that costs.

Everything is real except the model: the embedded broker, a worker subprocess
(`pairstream worker`, exactly as deployed) and a fake OpenAI-compatible backend
(`streams.bench.fake_llm`) in its own process with `slots` parallel slots and
lognormal latency. Its capacity is known (`BenchConfig.capacity`).

Phases, on one broker and one warm worker:
1. warm-up: `warmup` anchors end to end (group join, connections, caches);
2. saturation: `anchors` anchors published at once, a backlog (`burst` times as
   many with --burst, to show memory stays flat). Throughput is taken over the
   middle 90% of deliveries, so ramp-up and the final drain do not count;
   worker CPU per 1000 records and the backend's slot utilisation over the same
   phase; peak RSS of the worker process;
3. latency: anchors published at a steady `latency_load` x the measured
   throughput; end-to-end latency from publish to the triplet's arrival.
"""

import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx
import psutil

from streams.bench.config import BenchConfig
from streams.bench.load import AnchorSource, Load, load_sentences
from streams.bench.report import BenchResult, SweepPoint, percentile, plot_sweep, ratio
from streams.kafka import ensure_topics, worker_topics
from streams.local.broker import EmbeddedBroker
from streams.local.processes import free_port, spawn, start_worker, stop_process, wait_http, worker_env
from streams.settings import Settings

Log = Callable[[str], None]
Progress = Callable[[str, int, int], None]


class WorkerProbe:
    """CPU time and memory of the worker process (psutil; peak RSS from the kernel's high-water mark)."""

    def __init__(self, proc: subprocess.Popen, log_file: Path):
        self.popen = proc
        self.proc = psutil.Process(proc.pid)
        self.log_file = log_file
        self.peak_rss = 0

    def cpu_s(self) -> float:
        t = self.proc.cpu_times()
        return t.user + t.system

    def rss(self) -> int:
        rss = self.proc.memory_info().rss
        self.peak_rss = max(self.peak_rss, rss)
        return rss

    def peak(self) -> int:
        try:  # VmHWM: the true peak, including between samples
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return max(self.peak_rss, int(line.split()[1]) * 1024)
        except OSError:
            pass
        return self.peak_rss

    def alive(self) -> None:
        """Sample memory; raise if the worker died (a benchmark of a dead worker means nothing)."""
        self.rss()
        if self.popen.poll() is not None:
            raise RuntimeError(f"the worker exited with code {self.popen.returncode} (see {self.log_file})")


@dataclass
class Saturation:
    n: int
    rate: float
    overall: float
    utilisation: float
    measured_capacity: float
    cpu_s: float
    rejected: int
    requests: int


class Bench:
    def __init__(self, config: BenchConfig, workdir: Path, log: Log = print, on_progress: Progress | None = None):
        self.config = config
        self.workdir = workdir
        self.log = log
        self.on_progress = on_progress or (lambda phase, done, total: None)
        self.source = AnchorSource(load_sentences(config.sentences), unique=config.unique_anchors)

    # -- processes ---------------------------------------------------------------------------
    def start_backend(self) -> tuple[subprocess.Popen, str]:
        c = self.config
        port = free_port()
        cmd = [sys.executable, "-m", "streams.bench.fake_llm", "--port", str(port), "--slots", str(c.slots),
               "--latency-ms", str(c.latency_ms), "--sigma", str(c.sigma), "--seed", str(c.seed)]
        if c.max_queue is not None:
            cmd += ["--max-queue", str(c.max_queue)]
        (self.workdir / "backend.log").unlink(missing_ok=True)  # one run's log (spawn appends)
        proc = spawn(cmd, self.workdir / "backend.log")
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/v1/models", 30, proc, "the fake backend")
        return proc, base

    def start_worker(self, broker: EmbeddedBroker, llm_base: str, name: str = "worker",
                     web_port: int = 0) -> subprocess.Popen:
        env = worker_env(broker.url, f"{llm_base}/v1", PAIRSTREAM_LLM_MODEL="fake-model",
                         PAIRSTREAM_CONCURRENCY=self.config.concurrency, PAIRSTREAM_WEB_PORT=str(web_port),
                         PAIRSTREAM_BROKER_SESSION_TIMEOUT_S="4",
                         PAIRSTREAM_TOPIC_PARTITIONS=str(self.config.partitions),
                         PAIRSTREAM_QUALITY=self.config.quality, **self.config.worker_env)
        if self.config.remote_embeddings:  # an embedding server of no cost: the worker's own ceiling with the gate
            env["PAIRSTREAM_EMBEDDINGS_BASE_URL"] = f"{llm_base}/v1"
        log_file = self.workdir / f"{name}.log"
        log_file.unlink(missing_ok=True)
        return start_worker(env, log_file)

    async def run(self) -> BenchResult:
        c = self.config
        t_start = time.monotonic()
        broker = backend = worker = None
        try:
            (self.workdir / "broker.log").unlink(missing_ok=True)
            broker = EmbeddedBroker(log_file=self.workdir / "broker.log").start()
            settings = Settings(broker=broker.url, topic_partitions=c.partitions, broker_session_timeout_s=4)
            await ensure_topics(settings, worker_topics(settings))
            backend, llm_base = self.start_backend()
            self.log(f"backend    {c.slots} slots, median {c.latency_ms:g} ms, sigma {c.sigma:g}"
                     f" -> capacity {c.capacity:.1f} req/s (slots / mean latency {c.mean_latency_s * 1000:.0f} ms)")
            worker = self.start_worker(broker, llm_base)
            probe = WorkerProbe(worker, self.workdir / "worker.log")
            self.log(f"worker     pid {worker.pid}, concurrency {c.concurrency}")
            async with Load(settings, c.partitions) as load:
                return await self._phases(load, llm_base, probe, t_start)
        finally:
            stop_process(worker, timeout=30)
            stop_process(backend, timeout=5)
            if broker:
                broker.stop()

    # -- phases ------------------------------------------------------------------------------
    async def _phases(self, load: Load, llm_base: str, probe: WorkerProbe, t_start: float) -> BenchResult:
        c = self.config
        deliveries = load.deliveries
        if c.warmup:
            warm = self.source.take("warmup", c.warmup)
            await load.publish(warm)
            await deliveries.wait_for([rid for rid, _ in warm], c.timeout_s, probe.alive)
            self.log(f"warm-up    {c.warmup} anchors done")
        rss_start = probe.rss()
        sat = await self._saturation(load, llm_base, probe)
        p50 = p95 = p99 = offered = in_p50 = in_p99 = None
        lat_n = c.latency_phase_anchors
        if lat_n:
            offered = c.latency_load * sat.rate
            lat = self.source.take("latency", lat_n)
            sent_at = await load.publish_paced(lat, offered)
            await deliveries.wait_for([rid for rid, _ in lat], c.timeout_s, probe.alive)
            e2e = [(deliveries.at[rid] - sent_at[rid]) * 1000 for rid, _ in lat]
            p50, p95, p99 = (round(percentile(e2e, q), 1) for q in (0.5, 0.95, 0.99))
            inside = [deliveries.worker_ms[rid] for rid, _ in lat if rid in deliveries.worker_ms]
            if inside:
                in_p50, in_p99 = (round(percentile(inside, q), 1) for q in (0.5, 0.99))
            self.log(f"latency    {lat_n} anchors at {offered:.1f}/s: p50 {p50} ms, p99 {p99} ms")
        probe.alive()
        result = BenchResult(
            config=c.model_dump(mode="json"),
            records_per_s=round(sat.rate, 2),
            records_per_s_overall=round(sat.overall, 2),
            capacity_per_s=round(c.capacity, 2),
            ratio_to_capacity=ratio(sat.rate, c.capacity),
            ratio_to_slots_over_median=ratio(sat.rate, c.capacity_by_median),
            ratio_to_measured_capacity=ratio(sat.rate, sat.measured_capacity),
            backend_utilisation=round(sat.utilisation, 4),
            backend_429=sat.rejected,
            backend_requests=sat.requests,
            latency_ms_p50=p50, latency_ms_p95=p95, latency_ms_p99=p99,
            latency_offered_per_s=round(offered, 2) if offered else None,
            latency_in_worker_ms_p50=in_p50, latency_in_worker_ms_p99=in_p99,
            worker_cpu_s_per_1000=round(sat.cpu_s / sat.n * 1000, 3),
            mined_per_record=mean_mined(deliveries.mined, "bench-load-"),
            worker_peak_rss_mb=round(probe.peak() / 2**20, 1),
            worker_rss_mb_start=round(rss_start / 2**20, 1),
            delivered=len(deliveries.at),
            dead_letters=deliveries.dead_letters,
            duplicates=deliveries.duplicates,
            elapsed_s=round(time.monotonic() - t_start, 1),
        )
        if deliveries.dead_letters:
            result.notes.append(f"{deliveries.dead_letters} anchors became dead letters (see the worker log)")
        return result

    async def _saturation(self, load: Load, llm_base: str, probe: WorkerProbe) -> Saturation:
        """A backlog published at once; the rate over the middle 90% of its deliveries."""
        c = self.config
        deliveries = load.deliveries
        n = c.saturation_anchors
        batch = self.source.take("load", n)
        ids = [rid for rid, _ in batch]
        before = await backend_stats(llm_base)
        cpu0 = probe.cpu_s()
        t0 = time.monotonic()
        seen_before = len(deliveries.at)

        def tick() -> None:
            probe.alive()
            self.on_progress("saturation", len(deliveries.at) - seen_before, n)

        await load.publish(batch)
        await deliveries.wait_for(ids, c.timeout_s, tick)
        cpu1 = probe.cpu_s()
        after = await backend_stats(llm_base)
        times = sorted(deliveries.at[i] for i in ids)
        lo, hi = int(0.05 * n), int(0.95 * n) - 1
        rate = (hi - lo) / max(times[hi] - times[lo], 1e-9)
        phase_s = times[-1] - t0
        busy = after["busy_s"] - before["busy_s"]
        served = after["served"] - before["served"]
        rejected = after["rejected"] - before["rejected"]
        self.log(f"saturation {n} anchors in {phase_s:.1f}s: {rate:.1f} records/s")
        return Saturation(
            n=n, rate=rate, overall=n / max(phase_s, 1e-9),
            utilisation=busy / (c.slots * phase_s) if c.latency_ms > 0 else float("nan"),
            measured_capacity=c.slots * served / busy if busy > 0 else math.inf,
            cpu_s=cpu1 - cpu0, rejected=rejected, requests=served + rejected,
        )


def mean_mined(mined: dict[str, list[float]], prefix: str) -> float | None:
    """Mean mined negatives of the phase's triplets (the warm-up's first records find an empty window)."""
    counts = [len(scores) for rid, scores in mined.items() if rid.startswith(prefix)]
    return round(sum(counts) / len(counts), 3) if counts else None


async def backend_stats(base: str) -> dict:
    """The fake backend's counters: served, rejected, busy slot-seconds."""
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{base}/stats")).json()


def run_bench(config: BenchConfig, workdir: Path, log: Log = print, on_progress: Progress | None = None) -> BenchResult:
    workdir.mkdir(parents=True, exist_ok=True)
    import uvloop

    return uvloop.run(Bench(config, workdir, log, on_progress).run())


def run_comparison(config: BenchConfig, what: str, workdir: Path, log: Log = print) -> list[tuple[str, BenchResult]]:
    """The same load twice, without and with one part of the worker, labelled.

    - `quality`: scoring off, then on (`flag`: every record embedded and judged, nothing re-asked, so the
      difference is the gate itself, not re-asks the fake backend's canned pairs would cause);
    - `mining`: both runs score (`flag`), the second also mines 3 negatives per record from a window of
      `mining_window` sentences; the warm-up (distinct texts) fills the window before the saturation phase;
    - `embedder`: scoring off, then on (`flag`, mining on) with all-MiniLM-L6-v2 in the worker, then on with a
      remote `/v1/embeddings` (the fake backend's: deterministic vectors at no cost, like a GPU server far
      from saturation): where the in-process gate's CPU caps a worker, and what moving it out gives back.
    """
    if what == "quality":
        runs = [("quality off", {"quality": "off"}),
                ("quality on (flag: every record embedded and judged)", {"quality": "flag"})]
    elif what == "embedder":
        runs = [("gate off", {"quality": "off"}),
                ("gate on, all-MiniLM-L6-v2 in the worker (ONNX Runtime, CPU)", {"quality": "flag"}),
                ("gate on, a remote /v1/embeddings server", {"quality": "flag", "remote_embeddings": True})]
    else:
        fill = {"quality": "flag", "unique_anchors": True, "warmup": max(config.warmup, config.mining_window // 2 + 100)}
        env = {**config.worker_env, "PAIRSTREAM_MINING_WINDOW": str(config.mining_window)}
        runs = [("mining off (scoring on)", {**fill, "worker_env": {**env, "PAIRSTREAM_MINED_NEGATIVES": "0"}}),
                (f"mining on (3 negatives, window {config.mining_window})",
                 {**fill, "worker_env": {**env, "PAIRSTREAM_MINED_NEGATIVES": "3"}})]
    return [(label, run_bench(config.model_copy(update=update), workdir / f"{what}-{i}", log=log))
            for i, (label, update) in enumerate(runs)]


def run_sweep(config: BenchConfig, values: list[int], workdir: Path, plot: Path, log: Log = print) -> list[SweepPoint]:
    """Throughput against concurrency (saturation phase only), drawn to `plot`."""
    points = []
    for value in values:
        point_config = config.model_copy(update={"concurrency": str(value), "latency_anchors": 0})
        r = run_bench(point_config, workdir / f"c{value}", log=lambda line: None)
        points.append(SweepPoint(value, r.records_per_s, r.ratio_to_capacity, r.worker_cpu_s_per_1000))
        log(f"concurrency {value:>4}: {r.records_per_s:8.1f} records/s  ({r.ratio_to_capacity:.3f} of capacity)")
    plot_sweep(config, points, plot, log)
    return points
