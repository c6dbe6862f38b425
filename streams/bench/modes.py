"""What `pairstream bench` prints, for each of its modes: one run, a concurrency sweep (`--plot`), a
comparison without and with a part of the worker (`--compare quality|mining`), or the consumer group scaled
out (`--workers 1,2,4`)."""

from pathlib import Path

import orjson

from streams.bench.config import BenchConfig
from streams.bench.report import format_comparison, format_result
from streams.bench.runner import Log, Progress, run_bench, run_comparison, run_sweep


def parse_sweep(sweep: str, flag: str = "--sweep") -> list[int]:
    """`1,2,4` -> [1, 2, 4]; raises ValueError naming the flag."""
    if not all(v.strip().isdigit() and int(v) >= 1 for v in sweep.split(",")):
        raise ValueError(f"{flag}: comma-separated integers >= 1 (got {sweep!r})")
    return [int(v) for v in sweep.split(",")]


def bench_output(config: BenchConfig, workdir: Path, *, as_json: bool, plot: Path | None, sweep: list[int],
                 compare: str | None, log: Log, on_progress: Progress | None = None,
                 workers: list[int] | None = None) -> str:
    if workers:
        from streams.bench.scale import format_scale, run_scale

        points = run_scale(config, workers, workdir, log=log)
        return orjson.dumps([p.__dict__ for p in points]).decode() if as_json else format_scale(points, config)
    if plot is not None:
        points = run_sweep(config, sweep, workdir, plot, log=log)
        return orjson.dumps([p.__dict__ for p in points], option=orjson.OPT_INDENT_2).decode() if as_json else ""
    if compare:
        runs = run_comparison(config, compare, workdir, log=log)
        return f"[{', '.join(r.to_json().decode() for _, r in runs)}]" if as_json else format_comparison(runs)
    result = run_bench(config, workdir, log=log, on_progress=on_progress)
    return result.to_json().decode() if as_json else format_result(result)
