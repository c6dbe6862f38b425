"""`pairstream consume` against the real broker: SIGKILL mid-stream and restart gives a dataset whose ids are
exactly the produced ids (none missing, none twice, redeliveries dropped), in shards that `datasets` loads;
`--format parquet --columns anchor,positive,negative` gives the sentence-transformers triplet layout."""

import threading
import time

import datasets
import orjson
import pytest

from support.kafka import produce
from support.processes import run_cli, spawn_cli, stsb_sentences
from support.wait import wait_until

pytestmark = pytest.mark.integration


def triplet(i: int, text: str, *, pair: bool = False) -> bytes:
    return orjson.dumps({
        "id": f"rec-{i}", "anchor": text, "positive": f"Put another way: {text}",
        "negative": None if pair else f"Not about this: {i}", "model_name": "fake", "action": "paraphrase",
        "triplet": not pair, "hard_negative": False, "context": None, "metadata": None,
        "usage": {"prompt_tokens": 50, "completion_tokens": 20}, "attempts": 1, "latency_ms": 3.0,
        "generated_at": "2026-11-24T10:00:00Z", "source": {"topic": "anchors", "partition": 0, "offset": i},
        "schema_version": 1,
    })


def consume(out, *args: str, env: dict, timeout: float = 120):
    return run_cli("consume", "--out", str(out), "--quiet", *args, env=env, timeout=timeout)


def test_sigkill_mid_stream_and_restart_gives_exactly_the_produced_ids(broker, names, pairstream_env, tmp_path):
    texts = stsb_sentences(1651)
    produced: list[int] = []
    stop = threading.Event()

    def trickle():  # records keep arriving until the kill, so it always lands mid-stream
        i = 0
        while not stop.is_set() and i < 20_000:
            produce(broker, names["triplets"], [triplet(j, texts[j % len(texts)]) for j in range(i, i + 50)])
            produced.extend(range(i, i + 50))
            i += 50
            time.sleep(0.05)

    producer = threading.Thread(target=trickle)
    producer.start()
    out = tmp_path / "ds"
    proc = spawn_cli("consume", "--out", str(out), "--quiet", "--shard-rows", "100", "--shard-seconds", "1",
                     env=pairstream_env, log=tmp_path / "sink.log")
    try:
        def some_shards_complete() -> bool:  # and more being written
            assert proc.poll() is None, (tmp_path / "sink.log").read_text()
            return len(list(out.glob("*.jsonl"))) >= 3

        wait_until(some_shards_complete, 60, "three complete shards", interval=0.05)
        proc.kill()
        proc.wait()
    finally:
        stop.set()
        producer.join()

    # the stream goes on: new records, and redeliveries of records already in the dataset
    n = len(produced)
    more = range(n, n + 500)
    produce(broker, names["triplets"], [triplet(i, texts[i % len(texts)]) for i in more]
            + [triplet(i, texts[i % len(texts)]) for i in produced[::10]])
    done = consume(out, "--shard-rows", "100", "--until-idle", "3", env=pairstream_env)
    assert done.returncode == 0, done.stderr
    assert "dropped" in done.stdout and "shards" in done.stdout

    expected = {f"rec-{i}" for i in [*produced, *more]}
    ds = datasets.load_dataset("json", data_files=f"{out}/*.jsonl", split="train")
    ids = list(ds["id"])
    assert len(ids) == len(set(ids)) == len(expected), f"{len(ids)} rows, {len(set(ids))} unique, {len(expected)} produced"
    assert set(ids) == expected
    first = ds.select_columns(["anchor", "positive", "negative"])[0]
    assert first["anchor"] == texts[int(ids[0].split("-")[1]) % len(texts)] and first["negative"]
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert sum(manifest["rows"].values()) == len(expected) and all(s["rows"] <= 100 for s in manifest["shards"])
    assert not list((out / ".pairstream").glob("*.tmp"))


def test_parquet_in_the_sentence_transformers_layout(broker, names, pairstream_env, tmp_path):
    texts = stsb_sentences(30)
    produce(broker, names["triplets"], [triplet(i, texts[i], pair=i % 10 == 0) for i in range(30)])
    out = tmp_path / "pq"
    done = consume(out, "--format", "parquet", "--columns", "anchor,positive,negative", "--until-idle", "2",
                   env=pairstream_env)
    assert done.returncode == 0, done.stderr
    assert "wrote 30 triplets" in done.stdout
    trip = datasets.load_dataset("parquet", data_files=f"{out}/*.parquet", split="train")
    assert trip.column_names == ["anchor", "positive", "negative"] and trip.num_rows == 27
    pairs = datasets.load_dataset("parquet", data_files=f"{out}/pairs/*.parquet", split="train")
    assert pairs.column_names == ["anchor", "positive"] and pairs.num_rows == 3
    assert sorted(list(trip["anchor"]) + list(pairs["anchor"])) == sorted(texts)

    other = consume(out, "--until-idle", "1", env=pairstream_env, timeout=60)
    assert other.returncode == 2 and "format" in other.stderr  # a dataset keeps its format
