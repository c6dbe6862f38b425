"""`pairstream` command line. Flags are derived from the `Settings` model, so every
`PAIRSTREAM_*` variable has a matching flag and flags win.

Exit codes: 0 success, 2 usage or configuration error (one line naming the
setting), 1 runtime failure.
"""

import asyncio
import signal
import sys
from pathlib import Path
from typing import Any, Callable

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streams.settings import Settings, SettingsError, env_name, load_settings

err_console = Console(stderr=True)

KAFKA_SETTINGS = ("broker", "broker_security_protocol", "broker_sasl_mechanism", "broker_sasl_username",
                  "broker_sasl_password", "broker_ca_file", "broker_session_timeout_s", "topic_partitions",
                  "topic_replicas")
ALL_SETTINGS = tuple(Settings.model_fields)
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def setting_options(*names: str) -> Callable:
    """Add a `--flag` for each named setting (bools get `--flag/--no-flag`)."""

    def decorate(func: Callable) -> Callable:
        for name in reversed(names):
            field = Settings.model_fields[name]
            flag = "--" + name.replace("_", "-")
            help_text = f"{field.description} [env {env_name(name)}]"
            if field.annotation is bool:
                func = click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=help_text)(func)
            else:
                func = click.option(flag, name, default=None, help=help_text, show_default=False)(func)
        return func

    return decorate


def settings_from(kwargs: dict[str, Any], names: tuple[str, ...] = ALL_SETTINGS, **extra) -> Settings:
    """Pop the setting flags out of `kwargs` and load Settings; exit 2 on a bad value."""
    flags = {name: kwargs.pop(name) for name in names if name in kwargs}
    try:
        settings = load_settings(**flags, **extra)
    except SettingsError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USAGE)
    from streams.logs import register_secret
    for secret in (settings.llm_api_key, settings.broker_sasl_password):
        if secret is not None:
            register_secret(secret.get_secret_value())
    return settings


def fail(message: str, code: int = EXIT_FAILURE) -> None:
    err_console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def usage_error(message: str) -> None:
    fail(message, EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="pairstream")
def cli() -> None:
    """pairstream: a streaming generator of (anchor, positive, negative) training data."""


@cli.command()
@setting_options(*ALL_SETTINGS)
def worker(**kwargs: Any) -> None:
    """Run the Faust worker: consume anchors, call the LLM, produce triplets and dead letters."""
    settings = settings_from(kwargs)
    run_worker(settings)


def run_worker(settings: Settings) -> None:
    import faust

    from streams.app import create_app
    from streams.kafka import ensure_topics
    from streams.logs import configure_logging, logging_config

    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(ensure_topics(settings, [settings.anchors_topic, settings.triplets_topic, settings.dlq_topic]))
    except Exception as exc:
        fail(f"cannot reach the broker at {settings.broker}: {exc}")
    import uvloop  # about a third less event-loop overhead per record than asyncio's default loop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.set_event_loop(asyncio.new_event_loop())
    app = create_app(settings)
    loglevel = {"warning": "warn"}.get(settings.log_level, settings.log_level)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False,
                          logging_config=logging_config(settings.log_level, settings.log_format))
    # Faust's terminal spinner sets the root logger to DEBUG at levels >= warning, so that every debug
    # call of every library (httpcore: several per request) builds a log record. A worker has no terminal.
    worker.spinner = None
    worker.execute_from_commandline()


@cli.command()
@click.argument("source", default="-", metavar="[FILE|-]")
@click.option("--format", "fmt", type=click.Choice(["txt", "jsonl", "csv"]), default=None,
              help="Input format (default: from the file extension; stdin is txt).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@setting_options(*KAFKA_SETTINGS, "anchors_topic")
def publish(source: str, fmt: str | None, quiet: bool, **kwargs: Any) -> None:
    """Publish anchors from a .txt (one a line), .jsonl or .csv file, or stdin (-)."""
    from streams.publish import load_anchor_file, publish as do_publish

    settings = settings_from(kwargs, KAFKA_SETTINGS + ("anchors_topic",))
    try:
        records, bad = load_anchor_file(source, fmt)
    except OSError as exc:
        fail(f"cannot read {source}: {exc}")
    except UnicodeDecodeError as exc:
        fail(f"{source} is not UTF-8: {exc}")
    if bad:
        for b in bad[:10]:
            err_console.print(f"[red]line {b.line}:[/red] {b.message}", highlight=False)
        fail(f"{len(bad)} invalid record(s) in {source}; nothing was published")
    from streams.kafka import ensure_topics

    with _progress(quiet, "publishing", len(records)) as (progress, task):
        try:
            asyncio.run(ensure_topics(settings, [settings.anchors_topic]))
            sent = asyncio.run(do_publish(settings, records, on_sent=lambda n: progress.advance(task, n)))
        except Exception as exc:
            fail(f"publishing to {settings.broker} failed: {exc}")
    click.echo(f"published {sent} anchors to {settings.anchors_topic}")


@cli.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Dataset directory.")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet"]), default="jsonl", show_default=True,
              help="Shard format.")
@click.option("--columns", default=None, metavar="COLS",
              help="Write only these columns, e.g. anchor,positive,negative (the sentence-transformers layout; "
                   "pair records then go to DIR/pairs/). Default: the full record.")
@click.option("--shard-rows", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Close a shard after this many rows.")
@click.option("--shard-seconds", type=click.FloatRange(min=0.1), default=300.0, show_default=True,
              help="Close a shard after this many seconds (also while the stream is quiet).")
@click.option("--follow/--no-follow", default=True, show_default=True,
              help="Keep consuming as the stream grows; --no-follow stops once the stream is quiet for 5 s.")
@click.option("--until-idle", type=float, default=None, metavar="SECONDS",
              help="Stop after this many seconds without records.")
@click.option("--group", default=None, help="Consumer group (default: <app id>-sink).")
@click.option("--limit", type=int, default=None, help="Stop after this many records (duplicates included).")
@click.option("--dead-letters/--no-dead-letters", default=False,
              help="Also write dead letters to DIR/dead_letters/.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@setting_options(*KAFKA_SETTINGS, "triplets_topic", "dlq_topic", "app_id")
def consume(out_dir: Path, fmt: str, columns: str | None, shard_rows: int, shard_seconds: float, follow: bool,
            until_idle: float | None, group: str | None, limit: int | None, dead_letters: bool, quiet: bool,
            **kwargs: Any) -> None:
    """Grow a dataset in DIR from the triplets topic: complete JSONL or Parquet shards, resumable, duplicates
    dropped by record id (see DIR/manifest.json)."""
    from streams.dataset import DatasetError, TRIPLET_COLUMNS
    from streams.sinks import SinkOptions, consume as do_consume

    settings = settings_from(kwargs, KAFKA_SETTINGS + ("triplets_topic", "dlq_topic", "app_id"))
    cols = tuple(c.strip() for c in columns.split(",") if c.strip()) if columns else None
    if cols is not None and (not cols or any(c not in TRIPLET_COLUMNS + ("id",) for c in cols)):
        usage_error(f"--columns: choose from {', '.join(TRIPLET_COLUMNS + ('id',))} (got {columns!r})")
    if until_idle is None and not follow:
        until_idle = 5.0
    options = SinkOptions(fmt=fmt, columns=cols, shard_rows=shard_rows, shard_seconds=shard_seconds,
                          dead_letters=dead_letters)
    stop = asyncio.Event()

    async def run():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        with _progress(quiet, "consuming", None) as (progress, task):
            def show(stats):
                progress.update(task, completed=stats.triplets + stats.dead_letters,
                                description=f"consuming ({stats.rate:.1f} rows/s, {stats.duplicates} duplicates, "
                                            f"{stats.shards} shards)")
            return await do_consume(settings, out_dir, group=group or f"{settings.app_id}-sink",
                                    until_idle=until_idle, limit=limit, options=options, on_progress=show, stop=stop)

    try:
        stats = asyncio.run(run())
    except DatasetError as exc:
        usage_error(str(exc))
    except Exception as exc:
        fail(f"consuming from {settings.broker} failed: {exc}")
    click.echo(f"wrote {stats.triplets} triplets, {stats.dead_letters} dead letters, "
               f"dropped {stats.duplicates} duplicates, in {stats.shards} shards, into {out_dir}")


@cli.command()
@click.option("--port", type=int, default=None, help="Port (default: a free one).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="PEM certificate: serve TLS only (clients use PAIRSTREAM_BROKER_SECURITY_PROTOCOL=SSL).")
@click.option("--key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="PEM private key of --cert.")
def broker(port: int | None, host: str, cert: Path | None, key: Path | None) -> None:
    """Run the embedded Kafka-compatible broker (Tansu, in memory) in the foreground."""
    from streams.broker import BrokerError, EmbeddedBroker

    if bool(cert) != bool(key):
        usage_error("--cert and --key go together")
    try:
        embedded = EmbeddedBroker(port=port, host=host, cert=cert, key=key).start()
    except BrokerError as exc:
        fail(str(exc))
    click.echo(f"broker listening: PAIRSTREAM_BROKER={embedded.url}", err=False)
    sys.stdout.flush()
    def on_sigterm(*_: Any) -> None:
        raise KeyboardInterrupt

    try:
        signal.signal(signal.SIGTERM, on_sigterm)
        embedded.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        embedded.stop()


@cli.command()
@click.option("--anchors", "anchors_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Anchors file (.txt/.jsonl/.csv; default: the sample shipped with pairstream).")
@click.option("--limit", type=int, default=None, help="Publish at most this many anchors.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/demo"),
              show_default=True, help="Dataset directory.")
@click.option("--timeout", type=float, default=1800, show_default=True, help="Give up after this many seconds.")
def demo(anchors_file: Path | None, limit: int | None, out_dir: Path, timeout: float) -> None:
    """The whole job on embedded defaults: broker, local model, worker, publish, consume, summary."""
    from streams.demo import DemoError, load_anchors, run_demo

    settings = settings_from({})
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err_console)
    task = None

    def log(line: str) -> None:
        err_console.print(line, highlight=False)

    def show(stats) -> None:
        nonlocal task
        if task is None:
            progress.start()
            task = progress.add_task("anchors accounted for", total=expected)
        rate = stats.seen / max(stats.elapsed, 1e-9)
        progress.update(task, completed=stats.seen,
                        description=f"triplets {stats.triplets}  dead letters {stats.dead_letters}  {rate:.2f}/s")

    try:
        records = load_anchors(anchors_file, limit)
        expected = len(records)
        result = run_demo(settings, records, out_dir=out_dir, timeout=timeout, on_progress=show, log=log)
    except DemoError as exc:
        progress.stop()
        fail(str(exc))
    except KeyboardInterrupt:
        progress.stop()
        err_console.print("interrupted; every child process was stopped")
        sys.exit(130)
    progress.stop()
    s = result.stats
    click.echo(
        f"\nanchors        {result.anchors}\n"
        f"triplets       {s.triplets}  ({s.triplets / max(result.anchors, 1):.0%} valid)\n"
        f"dead letters   {s.dead_letters}\n"
        f"duplicates     {s.duplicates} (already in the dataset, dropped)\n"
        f"model          {result.model}\n"
        f"time           {result.elapsed:.1f}s  ({result.anchors / max(result.elapsed, 1e-9):.2f} anchors/s)\n"
        f"dataset        {result.out_dir}/*.jsonl  (manifest.json; load_dataset(\"json\", data_files=...))\n"
        f"dead letters   {result.out_dir / 'dead_letters'}/*.jsonl"
    )
    if result.accounted + s.duplicates < result.anchors:
        sys.exit(EXIT_FAILURE)


@cli.command()
@click.option("--anchors", type=click.IntRange(min=20), default=2000, show_default=True,
              help="Anchors in the saturation phase (published at once, a backlog).")
@click.option("--warmup", type=click.IntRange(min=0), default=200, show_default=True, help="Warm-up anchors.")
@click.option("--slots", type=click.IntRange(min=1), default=32, show_default=True,
              help="Requests the fake backend serves at once.")
@click.option("--latency-ms", type=click.FloatRange(min=0), default=500.0, show_default=True,
              help="Median latency of the fake backend.")
@click.option("--sigma", type=click.FloatRange(min=0), default=0.6, show_default=True,
              help="Lognormal sigma of the backend's latency.")
@click.option("--max-queue", type=click.IntRange(min=0), default=None,
              help="Backend answers 429 when more than this many requests wait for a slot (default: it queues).")
@click.option("--concurrency", default=None,
              help="Worker concurrency: an integer or auto [default: PAIRSTREAM_CONCURRENCY, else --slots].")
@click.option("--burst", type=click.IntRange(min=1), default=1, show_default=True,
              help="Publish this many times --anchors at once (memory must stay flat).")
@click.option("--latency-load", type=click.FloatRange(min=0.05, max=1.0), default=0.8, show_default=True,
              help="Offered load of the latency phase, as a fraction of the measured throughput.")
@click.option("--latency-anchors", type=click.IntRange(min=0), default=None,
              help="Anchors in the latency phase [default: half of --anchors, at least 100; 0 skips it].")
@click.option("--sentences", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="One anchor a line [default: ../shared/data/stsb_test_sentences.txt, else the shipped sample].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the backend's latency draws.")
@click.option("--workdir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/bench"),
              show_default=True, help="Logs of the broker, backend and worker.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object on stdout.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also sweep the concurrency (--sweep) and draw throughput against it to this PNG.")
@click.option("--sweep", default="1,2,4,8,16,32,48,64", show_default=True,
              help="Concurrency values for --plot.")
def bench(anchors: int, warmup: int, slots: int, latency_ms: float, sigma: float, max_queue: int | None,
          concurrency: str | None, burst: int, latency_load: float, latency_anchors: int | None,
          sentences: Path | None, seed: int, workdir: Path, as_json: bool, plot: Path | None, sweep: str) -> None:
    """Measure throughput, latency and overhead against a fake LLM of known capacity (real broker and worker)."""
    import os

    from streams.bench import BenchConfig, format_result, run_bench, run_sweep

    concurrency = concurrency or os.environ.get("PAIRSTREAM_CONCURRENCY") or str(slots)
    if concurrency != "auto" and not (concurrency.isdigit() and int(concurrency) >= 1):
        usage_error(f"PAIRSTREAM_CONCURRENCY / --concurrency: an integer >= 1 or auto (got {concurrency!r})")
    config = BenchConfig(anchors=anchors, warmup=warmup, slots=slots, latency_ms=latency_ms, sigma=sigma,
                         max_queue=max_queue, concurrency=concurrency, burst=burst, latency_load=latency_load,
                         latency_anchors=latency_anchors, sentences=sentences, seed=seed)

    def log(line: str) -> None:
        err_console.print(line, highlight=False)

    try:
        if plot is not None:
            try:
                values = [int(v) for v in sweep.split(",") if v.strip()]
            except ValueError:
                usage_error(f"--sweep: comma-separated integers (got {sweep!r})")
            points = run_sweep(config, values, workdir, plot, log=log)
            if as_json:
                click.echo(orjson_dumps([p.__dict__ for p in points]))
            return
        with _progress(as_json, "saturation", None) as (progress, task):
            result = run_bench(config, workdir, log=log,
                               on_progress=lambda phase, done, total: progress.update(task, completed=done,
                                                                                       total=total))
    except KeyboardInterrupt:
        err_console.print("interrupted; every child process was stopped")
        sys.exit(130)
    except Exception as exc:
        fail(f"bench failed: {exc}")
    click.echo(result.to_json().decode() if as_json else format_result(result))


def orjson_dumps(obj: Any) -> str:
    import orjson

    return orjson.dumps(obj, option=orjson.OPT_INDENT_2).decode()


class _progress:
    """A rich progress bar on stderr (or nothing with --quiet)."""

    def __init__(self, quiet: bool, description: str, total: int | None):
        self.quiet, self.description, self.total = quiet, description, total

    def __enter__(self):
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=err_console, disable=self.quiet, transient=False)
        self.progress.__enter__()
        return self.progress, self.progress.add_task(self.description, total=self.total)

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)


def main() -> None:
    cli(prog_name="pairstream")


if __name__ == "__main__":
    main()
