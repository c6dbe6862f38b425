"""`pairstream bench`: its options (most derived from `BenchConfig`) and the one call each mode makes (wired into
the command group by `streams.cli`). `--downstream` runs the training package's benchmark."""

from pathlib import Path
from typing import Any

import click

from streams.bench.config import INTERNAL_FIELDS, BenchConfig
from streams.flags import fail, interrupted, log_line, model_from, model_options, progress_bar, usage_errors


@click.command()
@model_options(BenchConfig, [n for n in BenchConfig.model_fields if n not in INTERNAL_FIELDS])
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/bench"),
              show_default=True, help="Logs of the broker, backend and worker.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object on stdout.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also sweep the concurrency (--sweep) and draw throughput against it to this PNG.")
@click.option("--sweep", default="1,2,4,8,16,32,48,64", show_default=True, help="Concurrency values for --plot.")
@click.option("--compare", type=click.Choice(["quality", "mining", "embedder"]), default=None,
              help="Run twice, without and with quality scoring (flag), or with scoring and without and with "
                   "in-stream mining (window --mining-window), and print both with the cost; `embedder`: gate "
                   "off, on in the worker, on through a remote /v1/embeddings (where to move the gate out).")
@click.option("--workers", default=None, metavar="N[,N...]",
              help="Scale out: N workers in one group against N x --slots (1 is always run, as the baseline): "
                   "rate, ratio to N x one worker, rebalance pauses when one joins and leaves, CPU per worker.")
@click.option("--judge", "judge_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Only measure the quality gate's checks against a labelled set (precision, recall; e.g. "
                   "tests/data/judge/labelled.jsonl, anchors read from --judge-data), in process.")
@click.option("--judge-data", type=click.Path(file_okay=False, path_type=Path), default=Path("../shared/data"),
              show_default=True,
              help="With --judge: the directory of the STS-B files, stsb_test_sentences.txt (the labelled records' "
                   "anchors, by line) and stsb_train.tsv (gold paraphrases, if there).")
@click.option("--checks", is_flag=True,
              help="Only time the near-copy text check per call, rapidfuzz beside the old difflib, on its worst "
                   "cases (no broker, no worker).")
@click.option("--downstream", "downstream_anchors", type=click.IntRange(min=10), default=None, metavar="N",
              help="Only the downstream benchmark: generate from N anchors of STS-B train on the embedded default "
                   "(gate on, and off), train two students on it and on controls of the same size (gold pairs, "
                   "copies), evaluate on held-out pairs. Needs the train extra; long (about an hour for 1,000).")
@click.option("--downstream-data", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="With --downstream: a dataset already generated from those anchors (gate on), reused.")
@click.option("--downstream-off", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="With --downstream: the same anchors generated with the gate off, reused.")
@click.option("--seeds", default="12,13", show_default=True, help="With --downstream: training seeds.")
def bench(workdir: Path, as_json: bool, plot: Path | None, sweep: str, compare: str | None, workers: str | None,
          checks: bool, judge_file: Path | None, judge_data: Path, downstream_anchors: int | None,
          downstream_data: Path | None, downstream_off: Path | None, seeds: str, **kwargs: Any) -> None:
    """Measure throughput, latency and overhead against a fake LLM of known capacity (real broker and worker)."""
    from streams.bench.modes import bench_output, parse_sweep

    if downstream_anchors is not None:
        from streams.training.cli import training_modules

        training_modules()
        from streams.training import downstream

        with usage_errors(ValueError):
            seed_list = tuple(int(x) for x in seeds.split(","))
        result = downstream.run(downstream_anchors, workdir, seed_list, gate_dir=downstream_data,
                                off_dir=downstream_off, log=log_line)
        click.echo(downstream.as_json(result) if as_json else "\n".join(downstream.table(result)))
        return

    if judge_file is not None:
        from streams.bench.judge_eval import judge_output

        with usage_errors(FileNotFoundError, KeyError, ValueError):
            click.echo(judge_output(judge_file, judge_data, as_json=as_json))
        return
    if checks:
        from streams.bench.checks_cost import checks_output

        click.echo(checks_output(as_json))
        return

    config = model_from(BenchConfig, kwargs)
    with usage_errors(ValueError):
        values = parse_sweep(sweep)
        counts = parse_sweep(workers, "--workers") if workers else None
        if counts and max(counts) >= config.partitions:
            raise ValueError(f"--workers: at most {config.partitions - 1} (one more joins; {config.partitions} "
                             "partitions)")
    try:
        with progress_bar(as_json or plot is not None or compare is not None or bool(counts)) as progress:
            task = progress.add_task("saturation", total=None)
            out = bench_output(config, workdir, as_json=as_json, plot=plot, sweep=values, compare=compare,
                               log=log_line, workers=counts, on_progress=lambda phase, done, total: progress.update(
                                   task, completed=done, total=total))
    except KeyboardInterrupt:
        interrupted()
    except Exception as exc:
        fail(f"bench failed: {exc}")
    if out:
        click.echo(out)
