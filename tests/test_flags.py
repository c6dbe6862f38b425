"""CLI flags are derived from the config models: every field is a flag, its default and bounds come from the
model, and a bad value is one line naming the flag (exit 2)."""

import pytest
from click.testing import CliRunner

from streams.bench.config import INTERNAL_FIELDS, BenchConfig
from streams.cli import cli
from streams.dataset.sink import SinkOptions
from streams.flags import FlagError, build


def help_of(command: str) -> str:
    result = CliRunner().invoke(cli, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.output


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def test_every_sink_option_is_a_consume_flag():
    text = help_of("consume")
    for name in SinkOptions.model_fields:
        assert flag(name) in text
    assert "[default: 10000]" in text  # shard_rows' default, from the model


def test_every_bench_field_but_the_internal_ones_is_a_flag():
    text = help_of("bench")
    for name in BenchConfig.model_fields:
        assert (flag(name) in text) == (name not in INTERNAL_FIELDS), name


@pytest.mark.parametrize("command, args, named", [
    ("consume", ["--out", "ds", "--shard-rows", "0"], "--shard-rows"),
    ("consume", ["--out", "ds", "--columns", "anchor,nope"], "--columns"),
    ("consume", ["--out", "ds", "--format", "csv"], "--format"),
    ("bench", ["--latency-load", "2"], "--latency-load"),
    ("bench", ["--concurrency", "0"], "--concurrency"),
])
def test_a_bad_value_exits_2_with_one_line_naming_the_flag(tmp_path, command, args, named):
    result = CliRunner().invoke(cli, [command, *args])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and named in lines[0], result.output


def test_build_takes_only_the_models_flags_and_leaves_the_rest():
    kwargs = {"format": "parquet", "shard_rows": "5", "follow": False, "broker": "kafka://x:1", "limit": None}
    options = build(SinkOptions, kwargs)
    assert (options.format, options.shard_rows, options.idle_stop_s, options.limit) == ("parquet", 5, 5.0, None)
    assert kwargs == {"broker": "kafka://x:1"}
    with pytest.raises(FlagError, match="--until-idle"):
        build(SinkOptions, {"until_idle": "-1"})


def test_bench_concurrency_defaults_to_the_environment_then_the_slots(monkeypatch):
    monkeypatch.delenv("PAIRSTREAM_CONCURRENCY", raising=False)
    assert BenchConfig(slots=12).concurrency == "12"
    monkeypatch.setenv("PAIRSTREAM_CONCURRENCY", "auto")
    assert BenchConfig(slots=12).concurrency == "auto"
    assert BenchConfig(slots=12, concurrency="3").concurrency == "3"
