"""`pairstream bench --workers 1,2,4`: the consumer group scaled out, measured.

For each N (1 is always run: it is the baseline), on a fresh broker: a backend of N x
`--slots` at the same latency, so N workers have N times the capacity one has; N
workers of `--concurrency` each, all ready; a warm-up; then a backlog of N x
`--anchors` (each worker as busy as the single one was), its rate taken over the
middle 90% of deliveries, with each worker's CPU over the phase. Then, while another
backlog flows, one more worker joins and, later, one leaves (SIGTERM: it finishes its
anchors in flight and leaves the group). A rebalance's cost is the longest pause in
deliveries after the event (the steady flow's longest pause is printed beside it) and
the LLM calls it made twice: first attempts the backend saw for an anchor it had
already been asked for (anchors are distinct texts, `unique_anchors`). The workers run
without the produced-ids skip (PAIRSTREAM_SKIP_PRODUCED=false): it would ack such an
anchor unasked and so hide an ack the rebalance failed to commit, the cost measured
here. With the quality embeddings on (`--quality flag`), the negatives mined per
record of the backlog and their median score show whether N workers mine as one does
(the group-wide window): on the same stream, that is over the anchors both runs had in
their backlogs. Anchors
are distinct texts taken in the same order in every run, so an anchor stands at the
same place in the stream for every N, with the same sentences before it; one worker
mines from all of them, and so does each of N workers if the window is the group's.
"""

import asyncio
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from streams.bench.config import BenchConfig
from streams.bench.load import Load
from streams.bench.runner import Bench, Log, WorkerProbe, backend_stats
from streams.kafka import ensure_topics, worker_topics
from streams.local.broker import EmbeddedBroker
from streams.local.processes import free_port, stop_process, wait_http
from streams.settings import Settings


@dataclass
class ScalePoint:
    workers: int
    rate: float
    capacity: float
    cpu_percent: list[float]  # each worker's CPU over the saturation phase, % of one core
    cpu_s_per_1000: float  # all workers together
    steady_pause_s: float
    join_pause_s: float
    leave_pause_s: float
    dead_letters: int = 0
    duplicates: int = 0
    duplicate_calls_join: int | None = None  # LLM first attempts paid twice between the join and the leave
    duplicate_calls_leave: int | None = None  # ... after the leave
    # over the backlog's anchors that one worker's run had in its backlog too (None with the quality embeddings off)
    mined_per_record: float | None = None
    mined_median_score: float | None = None
    single_mined_per_record: float | None = None  # one worker's, over the same anchors
    single_mined_median_score: float | None = None
    mined_by_anchor: dict[str, list[float]] = field(default_factory=dict)  # the backlog's, for `compare_mining`
    notes: list[str] = field(default_factory=list)
    ratio_to_n_single: float | None = None  # rate / (N x one worker's rate), filled in by `run_scale`


def longest_pause(times: list[float], start: float, end: float) -> float:
    """The longest gap between consecutive deliveries (or the window's edges and them) within [start, end]."""
    inside = sorted(t for t in times if start <= t <= end)
    edges = [start, *inside, end]
    return max(b - a for a, b in zip(edges, edges[1:]))


class ScaleRun(Bench):
    def __init__(self, config: BenchConfig, n: int, workdir: Path, log: Log):
        super().__init__(config.model_copy(update={
            "slots": config.slots * n, "unique_anchors": True,
            "worker_env": {**config.worker_env, "PAIRSTREAM_SKIP_PRODUCED": "false"}}), workdir, log)
        self.per_worker = config
        self.n = n
        self.ports: dict[int, int] = {}

    def spawn(self, broker: EmbeddedBroker, llm_base: str, i: int):
        port = free_port()
        proc = self.start_worker(broker, llm_base, name=f"worker-{i}", web_port=port)
        self.ports[proc.pid] = port
        return proc

    async def repeated_first_asks(self, llm_base: str) -> int:
        """The fake backend's count of first attempts for anchors it had already been asked for."""
        return (await backend_stats(llm_base))["repeated_first_asks"]

    def ready(self, proc, timeout: float = 120) -> None:
        wait_http(f"http://127.0.0.1:{self.ports[proc.pid]}/ready", timeout, proc, f"worker pid {proc.pid}",
                  ready=lambda status: status == 200)

    async def run_point(self) -> ScalePoint:
        c, n = self.config, self.n
        broker = backend = None
        workers: list = []
        try:
            broker = EmbeddedBroker(log_file=self.workdir / "broker.log").start()
            settings = Settings(broker=broker.url, topic_partitions=c.partitions, broker_session_timeout_s=4)
            await ensure_topics(settings, worker_topics(settings))
            backend, llm_base = self.start_backend()
            workers = [self.spawn(broker, llm_base, i) for i in range(n)]
            for w in workers:
                await asyncio.to_thread(self.ready, w)
            probes = [WorkerProbe(w, self.workdir / f"worker-{i}.log") for i, w in enumerate(workers)]
            async with Load(settings, c.partitions) as load:
                return await self._measure(load, broker, llm_base, workers, probes)
        finally:
            for w in workers:
                stop_process(w, timeout=30)
            stop_process(backend, timeout=5)
            if broker:
                broker.stop()

    async def _measure(self, load: Load, broker, llm_base: str, workers: list, probes: list) -> ScalePoint:
        c, n, deliveries = self.config, self.n, load.deliveries

        def alive() -> None:
            for p in probes:
                p.alive()

        if c.warmup:
            warm = self.source.take("warmup", c.warmup * n)
            await load.publish(warm)
            await deliveries.wait_for([rid for rid, _ in warm], c.timeout_s, alive)
        cpu0 = [p.cpu_s() for p in probes]
        batch = self.source.take("load", self.per_worker.anchors * n)
        t0 = time.monotonic()
        await load.publish(batch)
        await deliveries.wait_for([rid for rid, _ in batch], c.timeout_s, alive)
        phase_s = time.monotonic() - t0
        cpu = [p.cpu_s() - before for p, before in zip(probes, cpu0)]
        times = sorted(deliveries.at[rid] for rid, _ in batch)
        lo, hi = int(0.05 * len(times)), int(0.95 * len(times)) - 1
        rate = (hi - lo) / max(times[hi] - times[lo], 1e-9)
        self.log(f"{n} worker(s): {len(batch)} anchors at {rate:.1f} records/s")

        # a flow long enough for 5 s steady, a join (start-up and rebalance), 5 s, a leave, and some after it
        flow = self.source.take("flow", int(rate * 28))
        t_flow = time.monotonic()
        await load.publish(flow)
        await asyncio.sleep(5)
        t_join = time.monotonic()
        paid_twice = [await self.repeated_first_asks(llm_base)]
        joiner = self.spawn(broker, llm_base, n)
        workers.append(joiner)
        await asyncio.to_thread(self.ready, joiner)
        await asyncio.sleep(5)
        t_leave = time.monotonic()
        paid_twice.append(await self.repeated_first_asks(llm_base))
        leaver = workers.pop(0)
        # stopped in a thread: the event loop, and with it the reader that timestamps deliveries, keeps running
        # (a blocking wait here would stamp every delivery of the shutdown with the moment it ended, one late burst)
        await asyncio.to_thread(stop_process, leaver, 30)
        await deliveries.wait_for([rid for rid, _ in flow], c.timeout_s)
        await asyncio.sleep(2)  # a redelivery after the flow's last record would come now
        paid_twice.append(await self.repeated_first_asks(llm_base))
        mined_by_anchor = {deliveries.anchors[rid]: deliveries.mined[rid] for rid, _ in batch
                           if rid in deliveries.anchors} if c.quality != "off" else {}
        t_end = max(deliveries.at[rid] for rid, _ in flow)
        arrivals = [deliveries.at[rid] for rid, _ in flow]
        point = ScalePoint(
            workers=n, rate=round(rate, 2), capacity=round(c.capacity, 2),
            cpu_percent=[round(100 * s / phase_s, 1) for s in cpu],
            cpu_s_per_1000=round(sum(cpu) / len(batch) * 1000, 3),
            steady_pause_s=round(longest_pause(arrivals, t_flow + 1, t_join), 2),
            join_pause_s=round(longest_pause(arrivals, t_join, t_leave), 2),
            leave_pause_s=round(longest_pause(arrivals, t_leave, t_end), 2),
            dead_letters=deliveries.dead_letters, duplicates=deliveries.duplicates,
            duplicate_calls_join=paid_twice[1] - paid_twice[0], duplicate_calls_leave=paid_twice[2] - paid_twice[1],
            mined_by_anchor=mined_by_anchor)
        if t_end < t_leave + 3:
            point.notes.append("the flow ran dry soon after the leave: its pause is a lower bound")
        return point


def mining_figures(by_anchor: dict[str, list[float]], anchors: set[str]) -> tuple[float | None, float | None]:
    """Mined negatives per record and their median score, over `anchors`."""
    if not anchors:
        return None, None
    scores = [score for a in anchors for score in by_anchor[a]]
    return (round(statistics.fmean(len(by_anchor[a]) for a in anchors), 3),
            round(statistics.median(scores), 4) if scores else None)


def compare_mining(points: list[ScalePoint]) -> None:
    """Each point's mining figures and one worker's, over the anchors both backlogs held (the same stream)."""
    single = points[0].mined_by_anchor
    for p in points:
        common = set(p.mined_by_anchor) & set(single)
        p.mined_per_record, p.mined_median_score = mining_figures(p.mined_by_anchor, common)
        p.single_mined_per_record, p.single_mined_median_score = mining_figures(single, common)
    for p in points:
        p.mined_by_anchor = {}


def run_scale(config: BenchConfig, counts: list[int], workdir: Path, log: Log = print) -> list[ScalePoint]:
    import uvloop

    counts = sorted(set([1, *counts]))  # N + 1 workers must each get a partition: the CLI checks N < partitions
    points = []
    for n in counts:
        run = ScaleRun(config, n, workdir / f"workers-{n}", log)
        run.workdir.mkdir(parents=True, exist_ok=True)
        points.append(uvloop.run(run.run_point()))
    single = points[0].rate
    for p in points:
        p.ratio_to_n_single = round(p.rate / (p.workers * single), 3) if single else None
    compare_mining(points)
    return points


def format_scale(points: list[ScalePoint], config: BenchConfig) -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [f"scale-out: {config.slots} backend slots and concurrency {config.concurrency} per worker, median "
             f"{config.latency_ms:g} ms, {config.partitions} partitions, {cores} cores, quality {config.quality}",
             f"{'workers':>7} {'records/s':>10} {'vs N x 1':>8} {'of capacity':>11} {'CPU s/1000':>10} "
             f"{'steady pause':>12} {'join pause':>10} {'leave pause':>11} {'paid twice join':>15} "
             f"{'leave':>5} {'mined/record':>12} {'(1 worker)':>10} {'median score':>12} {'(1 worker)':>10}  "
             "CPU per worker (% of a core)"]

    def shown(value, spec: str) -> str:
        return "-" if value is None else format(value, spec)

    for p in points:
        lines.append(f"{p.workers:>7} {p.rate:>10.1f} {p.ratio_to_n_single:>8.3f} {p.rate / p.capacity:>11.3f} "
                     f"{p.cpu_s_per_1000:>10.2f} {p.steady_pause_s:>11.2f}s {p.join_pause_s:>9.2f}s "
                     f"{p.leave_pause_s:>10.2f}s {shown(p.duplicate_calls_join, 'd'):>15} "
                     f"{shown(p.duplicate_calls_leave, 'd'):>5} {shown(p.mined_per_record, '.3f'):>12} "
                     f"{shown(p.single_mined_per_record, '.3f'):>10} {shown(p.mined_median_score, '.4f'):>12} "
                     f"{shown(p.single_mined_median_score, '.4f'):>10}  {', '.join(f'{c:.0f}' for c in p.cpu_percent)}")
        lines += [f"        note: {note}" for note in p.notes]
        if p.dead_letters or p.duplicates:
            lines.append(f"        {p.dead_letters} dead letters, {p.duplicates} duplicates")
    return "\n".join(lines)
