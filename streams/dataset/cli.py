"""`pairstream publish`, `consume`, `report` and `export`: data in and out, each its options and one call into
this package (wired into the command group by `streams.cli`)."""

from pathlib import Path
from typing import Any

import click

from streams.dataset.sink import SinkOptions
from streams.dataset.store import DatasetError
from streams.flags import (DATASET_DIR, KAFKA_SETTINGS, err_console, fail, model_from, model_options, progress_bar,
                           settings_from, usage_errors)
from streams.settings import Settings


@click.command()
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


@click.command()
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


@click.command()
@DATASET_DIR
@click.option("--plots/--no-plots", default=True, show_default=True, help="Also write PNG plots to DIR/report/.")
def report(out_dir: Path, plots: bool) -> None:
    """Print a dataset's figures (rows, yield, scores, negatives, dead letters, rows over time) and plot them."""
    from streams.dataset.report import run_report

    with usage_errors(DatasetError):
        click.echo("\n".join(run_report(out_dir, plots)))


@click.command()
@DATASET_DIR
@click.option("--to", type=click.Choice(["llamaindex"]), default="llamaindex", show_default=True,
              help="Target format: llamaindex (EmbeddingQAFinetuneDataset JSON: queries, corpus, relevant_docs).")
@click.option("--out", "dest", type=click.Path(dir_okay=False, path_type=Path), required=True, help="File to write.")
def export(out_dir: Path, to: str, dest: Path) -> None:
    """Export a dataset directory's full records to another tool's training format."""
    from streams.dataset.export import export as run_export

    with usage_errors(DatasetError):
        click.echo(f"exported {run_export(out_dir, to, dest)} queries to {dest} ({to})")
