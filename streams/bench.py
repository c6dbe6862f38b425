"""`pairstream bench`: how close pairstream keeps an LLM backend to saturation, and what that costs.

Everything is real except the model: the embedded broker, a worker subprocess
(`pairstream worker`, exactly as deployed) and a fake OpenAI-compatible backend
in its own process with `slots` parallel slots and lognormal latency (median,
sigma). Its capacity is known: slots / mean latency, where the mean of a
lognormal is median * exp(sigma^2 / 2).

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

import asyncio
import itertools
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import httpx
import orjson
import psutil
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import BaseModel, Field

from streams.broker import EmbeddedBroker, free_port, stop_process
from streams.demo import SAMPLE, wait_http
from streams.kafka import aiokafka_kwargs, ensure_topics
from streams.settings import Settings

SHARED_SENTENCES = Path("../shared/data/stsb_test_sentences.txt")


class BenchConfig(BaseModel):
    """What to run: the backend's shape, the load and the worker's concurrency."""

    anchors: int = Field(2000, ge=20)
    warmup: int = Field(200, ge=0)
    slots: int = Field(32, ge=1)
    latency_ms: float = Field(500.0, ge=0)
    sigma: float = Field(0.6, ge=0)
    max_queue: int | None = Field(None, ge=0, description="backend answers 429 when more wait for a slot")
    concurrency: str = "32"  # an int or "auto"
    partitions: int = Field(8, ge=1)
    burst: int = Field(1, ge=1)
    latency_load: float = Field(0.8, gt=0, le=1.0)
    latency_anchors: int | None = Field(None, ge=0)
    sentences: Path | None = None
    seed: int = 0  # of the backend's latency draws
    timeout_s: float = 900.0
    worker_env: dict[str, str] = Field(default_factory=dict)

    @property
    def mean_latency_s(self) -> float:
        return self.latency_ms / 1000 * math.exp(self.sigma**2 / 2)

    @property
    def capacity(self) -> float:
        """Requests/s of a backend whose slots are always busy."""
        return self.slots / self.mean_latency_s if self.latency_ms > 0 else math.inf

    @property
    def capacity_by_median(self) -> float:
        return self.slots / (self.latency_ms / 1000) if self.latency_ms > 0 else math.inf


@dataclass
class BenchResult:
    config: dict
    records_per_s: float  # middle 90% of the saturation phase
    records_per_s_overall: float  # first publish to last delivery
    capacity_per_s: float
    ratio_to_capacity: float
    ratio_to_slots_over_median: float
    # The same against the capacity the backend really had in this run: slots / the mean of its latency draws
    # (a few thousand lognormal draws miss the distribution's mean by a few percent either way).
    ratio_to_measured_capacity: float
    backend_utilisation: float  # busy slot-seconds / (slots * phase duration)
    backend_429: int
    backend_requests: int
    latency_ms_p50: float | None
    latency_ms_p95: float | None
    latency_ms_p99: float | None
    latency_offered_per_s: float | None
    latency_in_worker_ms_p50: float | None  # decode to record built (waiting for a slot and the LLM included)
    latency_in_worker_ms_p99: float | None
    worker_cpu_s_per_1000: float
    worker_peak_rss_mb: float
    worker_rss_mb_start: float  # after warm-up, before the backlog
    delivered: int
    dead_letters: int
    duplicates: int
    elapsed_s: float
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)


def load_sentences(path: Path | None) -> list[str]:
    """The STS sentences when available (real lengths), else the shipped sample anchors."""
    for candidate in ([path] if path else [SHARED_SENTENCES]):
        if candidate and candidate.exists():
            lines = [ln.strip() for ln in candidate.read_text(encoding="utf-8").splitlines() if ln.strip()]
            if lines:
                return lines
    return [orjson.loads(ln)["anchor"] for ln in SAMPLE.read_text(encoding="utf-8").splitlines() if ln.strip()]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[k]


class WorkerProbe:
    """CPU time and memory of the worker process (psutil; peak RSS from the kernel's high-water mark)."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
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


class Deliveries:
    """Arrival time of each record id on the triplets and dead-letter topics."""

    def __init__(self):
        self.at: dict[str, float] = {}
        self.worker_ms: dict[str, float] = {}  # the triplet's own latency_ms: inside the worker, LLM included
        self.dead_letters = 0
        self.duplicates = 0
        self.changed = asyncio.Event()

    def add(self, key: bytes | None, value: bytes, is_dead_letter: bool, now: float) -> None:
        rid = key.decode() if key else f"dlq-{now}"
        if rid in self.at:
            self.duplicates += 1
            return
        self.at[rid] = now
        if not is_dead_letter:
            self.worker_ms[rid] = orjson.loads(value)["latency_ms"]
        self.dead_letters += is_dead_letter
        self.changed.set()

    async def wait_for(self, ids: list[str], timeout: float, tick: Callable[[], None] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = set(ids)
        while True:
            pending = {i for i in pending if i not in self.at}
            if not pending:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} of {len(ids)} anchors not delivered within {timeout:.0f}s")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 0.2)
            except asyncio.TimeoutError:
                pass
            if tick:
                tick()


class Bench:
    def __init__(self, config: BenchConfig, workdir: Path, log: Callable[[str], None] = print,
                 on_progress: Callable[[str, int, int], None] | None = None):
        self.config = config
        self.workdir = workdir
        self.log = log
        self.on_progress = on_progress or (lambda phase, done, total: None)
        self.sentences = load_sentences(config.sentences)
        self._seq = itertools.count()

    # -- processes ---------------------------------------------------------------------------
    def start_backend(self) -> tuple[subprocess.Popen, str]:
        c = self.config
        port = free_port()
        cmd = [sys.executable, "-m", "streams.testing.fake_llm", "--port", str(port), "--slots", str(c.slots),
               "--latency-ms", str(c.latency_ms), "--sigma", str(c.sigma), "--seed", str(c.seed)]
        if c.max_queue is not None:
            cmd += ["--max-queue", str(c.max_queue)]
        proc = subprocess.Popen(cmd, stdout=open(self.workdir / "backend.log", "wb"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/v1/models", 30, proc, "the fake backend")
        return proc, base

    def start_worker(self, broker: EmbeddedBroker, llm_base: str) -> subprocess.Popen:
        env = {k: v for k, v in os.environ.items()}
        env.update({"PAIRSTREAM_BROKER": broker.url, "PAIRSTREAM_LLM_BASE_URL": f"{llm_base}/v1",
                    "PAIRSTREAM_LLM_MODEL": "fake-model", "PAIRSTREAM_CONCURRENCY": self.config.concurrency,
                    "PAIRSTREAM_WEB_PORT": "0", "PAIRSTREAM_BROKER_SESSION_TIMEOUT_S": "4",
                    "PAIRSTREAM_TOPIC_PARTITIONS": str(self.config.partitions),
                    "PAIRSTREAM_LOG_LEVEL": env.get("PAIRSTREAM_LOG_LEVEL", "warning"), "PYTHONUNBUFFERED": "1"})
        env.update(self.config.worker_env)
        return subprocess.Popen([sys.executable, "-m", "streams.cli", "worker"], env=env,
                                stdout=open(self.workdir / "worker.log", "wb"), stderr=subprocess.STDOUT)

    # -- load --------------------------------------------------------------------------------
    def anchors(self, phase: str, n: int) -> list[tuple[str, bytes]]:
        out = []
        for _ in range(n):
            i = next(self._seq)
            rid = f"bench-{phase}-{i}"
            out.append((rid, orjson.dumps({"id": rid, "anchor": self.sentences[i % len(self.sentences)]})))
        return out

    async def run(self) -> BenchResult:
        c = self.config
        t_start = time.monotonic()
        broker = backend = worker = None
        try:
            (self.workdir / "broker.log").unlink(missing_ok=True)
            broker = EmbeddedBroker(log_file=self.workdir / "broker.log").start()
            settings = Settings(broker=broker.url, topic_partitions=c.partitions, broker_session_timeout_s=4)
            await ensure_topics(settings, [settings.anchors_topic, settings.triplets_topic, settings.dlq_topic])
            backend, llm_base = self.start_backend()
            self.log(f"backend    {c.slots} slots, median {c.latency_ms:g} ms, sigma {c.sigma:g}"
                     f" -> capacity {c.capacity:.1f} req/s (slots / mean latency {c.mean_latency_s * 1000:.0f} ms)")
            worker = self.start_worker(broker, llm_base)
            probe = WorkerProbe(worker.pid)
            self.log(f"worker     pid {worker.pid}, concurrency {c.concurrency}")
            return await self._drive(settings, llm_base, worker, probe, t_start)
        finally:
            stop_process(worker, timeout=30)
            stop_process(backend, timeout=5)
            if broker:
                broker.stop()

    async def _drive(self, settings: Settings, llm_base: str, worker: subprocess.Popen, probe: WorkerProbe,
                     t_start: float) -> BenchResult:
        c = self.config
        deliveries = Deliveries()
        producer = AIOKafkaProducer(**aiokafka_kwargs(settings), acks="all", linger_ms=5)
        consumer = AIOKafkaConsumer(**aiokafka_kwargs(settings), group_id=None, auto_offset_reset="earliest",
                                    fetch_max_wait_ms=50)
        await producer.start()
        await consumer.start()
        topics = {settings.triplets_topic: False, settings.dlq_topic: True}
        tps = [TopicPartition(t, p) for t in topics for p in range(c.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)

        async def collect() -> None:
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                now = time.monotonic()
                for tp, msgs in batches.items():
                    for m in msgs:
                        deliveries.add(m.key, m.value, topics[tp.topic], now)

        def alive() -> None:
            probe.rss()
            if worker.poll() is not None:
                raise RuntimeError(f"the worker exited with code {worker.returncode} "
                                   f"(see {self.workdir / 'worker.log'})")

        collector = asyncio.create_task(collect())
        try:
            # 1. warm-up
            if c.warmup:
                warm = self.anchors("warmup", c.warmup)
                await self._publish(producer, settings, warm)
                await deliveries.wait_for([rid for rid, _ in warm], c.timeout_s, alive)
                self.log(f"warm-up    {c.warmup} anchors done")
            rss_start = probe.rss()

            # 2. saturation: a backlog of anchors published at once
            n = c.anchors * c.burst
            batch = self.anchors("load", n)
            ids = [rid for rid, _ in batch]
            before = await self._backend_stats(llm_base)
            cpu0 = probe.cpu_s()
            t0 = time.monotonic()
            seen_before = len(deliveries.at)

            def tick() -> None:
                alive()
                self.on_progress("saturation", len(deliveries.at) - seen_before, n)

            await self._publish(producer, settings, batch)
            await deliveries.wait_for(ids, c.timeout_s, tick)
            cpu1 = probe.cpu_s()
            after = await self._backend_stats(llm_base)
            times = sorted(deliveries.at[i] for i in ids)
            lo, hi = int(0.05 * n), int(0.95 * n) - 1
            rate = (hi - lo) / max(times[hi] - times[lo], 1e-9)
            overall = n / max(times[-1] - t0, 1e-9)
            phase_s = times[-1] - t0
            busy = after["busy_s"] - before["busy_s"]
            served = after["served"] - before["served"]
            measured_capacity = c.slots * served / busy if busy > 0 else math.inf
            utilisation = busy / (c.slots * phase_s) if c.latency_ms > 0 else float("nan")
            self.log(f"saturation {n} anchors in {phase_s:.1f}s: {rate:.1f} records/s")

            # 3. latency at a steady offered load below saturation
            lat_n = c.latency_anchors if c.latency_anchors is not None else max(100, c.anchors // 2)
            p50 = p95 = p99 = offered = in_p50 = in_p99 = None
            if lat_n:
                offered = c.latency_load * rate
                lat = self.anchors("latency", lat_n)
                sent_at = await self._publish_paced(producer, settings, lat, offered)
                await deliveries.wait_for([rid for rid, _ in lat], c.timeout_s, alive)
                e2e = [(deliveries.at[rid] - sent_at[rid]) * 1000 for rid, _ in lat]
                p50, p95, p99 = (round(percentile(e2e, q), 1) for q in (0.5, 0.95, 0.99))
                inside = [deliveries.worker_ms[rid] for rid, _ in lat if rid in deliveries.worker_ms]
                if inside:
                    in_p50, in_p99 = (round(percentile(inside, q), 1) for q in (0.5, 0.99))
                self.log(f"latency    {lat_n} anchors at {offered:.1f}/s: p50 {p50} ms, p99 {p99} ms")
            alive()
            result = BenchResult(
                config=c.model_dump(mode="json"),
                records_per_s=round(rate, 2),
                records_per_s_overall=round(overall, 2),
                capacity_per_s=round(c.capacity, 2),
                ratio_to_capacity=round(rate / c.capacity, 4) if math.isfinite(c.capacity) else 0.0,
                ratio_to_slots_over_median=round(rate / c.capacity_by_median, 4)
                if math.isfinite(c.capacity_by_median) else 0.0,
                ratio_to_measured_capacity=round(rate / measured_capacity, 4) if math.isfinite(measured_capacity) else 0.0,
                backend_utilisation=round(utilisation, 4),
                backend_429=after["rejected"] - before["rejected"],
                backend_requests=after["served"] - before["served"] + after["rejected"] - before["rejected"],
                latency_ms_p50=p50, latency_ms_p95=p95, latency_ms_p99=p99,
                latency_offered_per_s=round(offered, 2) if offered else None,
                latency_in_worker_ms_p50=in_p50, latency_in_worker_ms_p99=in_p99,
                worker_cpu_s_per_1000=round((cpu1 - cpu0) / n * 1000, 3),
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
        finally:
            collector.cancel()
            await asyncio.gather(collector, return_exceptions=True)
            await consumer.stop()
            await producer.stop()

    async def _publish(self, producer: AIOKafkaProducer, settings: Settings, batch: list[tuple[str, bytes]]) -> None:
        futures = [await producer.send(settings.anchors_topic, value=v, key=rid.encode()) for rid, v in batch]
        await asyncio.gather(*futures)

    async def _publish_paced(self, producer: AIOKafkaProducer, settings: Settings, batch: list[tuple[str, bytes]],
                             rate: float) -> dict[str, float]:
        """Send at a steady `rate`; returns the send time of each id."""
        sent_at: dict[str, float] = {}
        futures = []
        t0 = time.monotonic()
        for i, (rid, value) in enumerate(batch):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at[rid] = time.monotonic()
            futures.append(await producer.send(settings.anchors_topic, value=value, key=rid.encode()))
        await asyncio.gather(*futures)
        return sent_at

    async def _backend_stats(self, base: str) -> dict:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{base}/stats")).json()


def run_bench(config: BenchConfig, workdir: Path, log: Callable[[str], None] = print,
              on_progress: Callable[[str, int, int], None] | None = None) -> BenchResult:
    workdir.mkdir(parents=True, exist_ok=True)
    import uvloop

    return uvloop.run(Bench(config, workdir, log, on_progress).run())


def format_result(r: BenchResult) -> str:
    c = r.config
    lines = [
        f"backend            {c['slots']} slots, median {c['latency_ms']:g} ms, sigma {c['sigma']:g}"
        + (f", 429 beyond a queue of {c['max_queue']}" if c["max_queue"] is not None else ""),
        f"worker             concurrency {c['concurrency']}, {c['partitions']} partitions",
        f"delivered          {r.records_per_s:.1f} records/s (middle 90% of {c['anchors'] * c['burst']} anchors;"
        f" {r.records_per_s_overall:.1f}/s first publish to last record)",
        f"capacity           {r.capacity_per_s:.1f} req/s = slots / mean latency -> ratio {r.ratio_to_capacity:.3f}",
        f"                   (slots / mean of this run's latency draws: ratio {r.ratio_to_measured_capacity:.3f};"
        f" slots / median latency: ratio {r.ratio_to_slots_over_median:.3f})",
        f"backend busy       {r.backend_utilisation:.1%} of slot time; {r.backend_requests} requests, "
        f"{r.backend_429} answered 429",
    ]
    if r.latency_ms_p50 is not None:
        lines.append(f"latency e2e        p50 {r.latency_ms_p50:.0f} ms, p95 {r.latency_ms_p95:.0f} ms, "
                     f"p99 {r.latency_ms_p99:.0f} ms (at {r.latency_offered_per_s:.1f} anchors/s offered)")
        lines.append(f"  in the worker    p50 {r.latency_in_worker_ms_p50:.0f} ms, p99 {r.latency_in_worker_ms_p99:.0f} ms "
                     f"(slot wait + LLM + validation; the rest is Kafka in and out)")
    lines += [
        f"worker CPU         {r.worker_cpu_s_per_1000:.2f} s per 1000 records",
        f"worker RSS         peak {r.worker_peak_rss_mb:.0f} MB ({r.worker_rss_mb_start:.0f} MB before the backlog)",
        f"records            {r.delivered} delivered, {r.dead_letters} dead letters, {r.duplicates} duplicates",
        f"wall               {r.elapsed_s:.0f} s",
    ]
    lines += [f"note               {n}" for n in r.notes]
    return "\n".join(lines)


@dataclass
class SweepPoint:
    concurrency: int
    records_per_s: float
    ratio_to_capacity: float
    cpu_s_per_1000: float


def run_sweep(config: BenchConfig, values: list[int], workdir: Path, plot: Path,
              log: Callable[[str], None] = print) -> list[SweepPoint]:
    """Throughput against concurrency (saturation phase only), drawn to `plot` with matplotlib."""
    points = []
    for value in values:
        point_config = config.model_copy(update={"concurrency": str(value), "latency_anchors": 0})
        r = run_bench(point_config, workdir / f"c{value}", log=lambda line: None)
        points.append(SweepPoint(value, r.records_per_s, r.ratio_to_capacity, r.worker_cpu_s_per_1000))
        log(f"concurrency {value:>4}: {r.records_per_s:8.1f} records/s  ({r.ratio_to_capacity:.3f} of capacity)")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed (pip install 'pairstream[bench]'): no plot drawn")
        return points
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([p.concurrency for p in points], [p.records_per_s for p in points], marker="o", label="pairstream")
    if math.isfinite(config.capacity):
        ax.axhline(config.capacity, color="grey", linestyle="--", label="backend capacity")
    ax.set_xlabel("worker concurrency (LLM requests in flight)")
    ax.set_ylabel("records / s")
    ax.set_title(f"{config.slots} slots, median {config.latency_ms:g} ms, sigma {config.sigma:g}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(plot, dpi=120)
    log(f"plot       {plot}")
    return points
