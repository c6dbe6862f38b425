"""What `pairstream bench` prints: the result record, its text form, and the concurrency-sweep plot."""

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import orjson

from streams.bench.config import BenchConfig


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
    mined_per_record: float | None  # mean mined negatives per delivered triplet (None: no triplet)
    worker_peak_rss_mb: float
    worker_rss_mb_start: float  # after warm-up, before the backlog
    delivered: int
    dead_letters: int
    duplicates: int
    elapsed_s: float
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..1)."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))
    return ordered[k]


def ratio(rate: float, capacity: float) -> float:
    return round(rate / capacity, 4) if math.isfinite(capacity) else 0.0


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
        *([f"mined negatives    {r.mined_per_record:.2f} per record"] if r.mined_per_record else []),
        f"worker RSS         peak {r.worker_peak_rss_mb:.0f} MB ({r.worker_rss_mb_start:.0f} MB before the backlog)",
        f"records            {r.delivered} delivered, {r.dead_letters} dead letters, {r.duplicates} duplicates",
        f"wall               {r.elapsed_s:.0f} s",
    ]
    lines += [f"note               {n}" for n in r.notes]
    return "\n".join(lines)


def format_comparison(runs: list[tuple[str, BenchResult]]) -> str:
    """Every run in full, then what each one after the first costs against the first."""
    label_a, a = runs[0]
    lines = [part for label, r in runs for part in (label, format_result(r), "")]
    for label_b, b in runs[1:]:
        cost = b.records_per_s / a.records_per_s if a.records_per_s else float("nan")
        lines.append(f"cost               {label_b}: throughput {b.records_per_s:.1f} vs {a.records_per_s:.1f} "
                     f"records/s: ratio {cost:.3f}; worker CPU {b.worker_cpu_s_per_1000:.2f} vs "
                     f"{a.worker_cpu_s_per_1000:.2f} s per 1000 records; peak RSS {b.worker_peak_rss_mb:.0f} vs "
                     f"{a.worker_peak_rss_mb:.0f} MB")
    return "\n".join(lines)


@dataclass
class SweepPoint:
    concurrency: int
    records_per_s: float
    ratio_to_capacity: float
    cpu_s_per_1000: float


def plot_sweep(config: BenchConfig, points: list[SweepPoint], plot: Path, log: Callable[[str], None] = print) -> None:
    """Throughput against concurrency, with the backend's capacity, drawn to `plot` (needs matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed (pip install 'pairstream[bench]'): no plot drawn")
        return
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
