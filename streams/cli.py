"""`pairstream` command line: the command group and its wiring.

Each command parses its options and calls one function in its package, and lives next to the code it
drives: `streams.dataset.cli` (publish, consume, report, export), `streams.local.cli` (broker, demo),
`streams.bench.cli` (bench), `streams.training.cli` (evaluate, train); `worker` is here. Options are
derived from pydantic models (`streams.flags`), so every default, bound and description lives in one
place: the worker's flags from `Settings` (every `PAIRSTREAM_*` variable has a matching flag; flags win),
`consume`'s from `SinkOptions`, `bench`'s from `BenchConfig`.

Exit codes: 0 success, 2 usage or configuration error (one line naming the setting), 1 runtime failure,
130 interrupted (`streams.flags`: `usage_error`, `fail`, `interrupted`).
"""

from typing import Any

import click

from streams.bench.cli import bench
from streams.dataset.cli import consume, export, publish, report
from streams.flags import ALL_SETTINGS, fail, model_options, settings_from
from streams.local.cli import broker, demo
from streams.settings import Settings
from streams.training.cli import evaluate, train


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


for command in (publish, consume, report, export, broker, demo, bench, evaluate, train):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="pairstream")


if __name__ == "__main__":
    main()
