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


class Trickle(threading.Thread):
    """Triplet records produced in small batches until `stop()`: the stream keeps flowing through a kill or a
    rebalance. `produced` holds the index of every record produced."""

    def __init__(self, broker, topic: str, texts: list[str], batch: int):
        super().__init__()
        self.broker, self.topic, self.texts, self.batch = broker, topic, texts, batch
        self.produced: list[int] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        i = 0
        while not self._stop_event.is_set() and i < 20_000:
            records = range(i, i + self.batch)
            produce(self.broker, self.topic, [triplet(j, self.texts[j % len(self.texts)]) for j in records])
            self.produced.extend(records)
            i += self.batch
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def consume(out, *args: str, env: dict, timeout: float = 120):
    return run_cli("consume", "--out", str(out), "--quiet", *args, env=env, timeout=timeout)


def test_sigkill_mid_stream_and_restart_gives_exactly_the_produced_ids(broker, names, pairstream_env, tmp_path):
    texts = stsb_sentences(1651)
    producer = Trickle(broker, names["triplets"], texts, batch=50)  # records keep arriving until the kill
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
        producer.stop()
    produced = producer.produced

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
    assert manifest["rows"]["triplets"] == len(expected) and all(s["rows"] <= 100 for s in manifest["shards"])
    # the views hold each record once too: every one has an LLM negative, none has mined negatives
    assert manifest["rows"]["triplet"] == manifest["rows"]["pairs"] == len(expected)
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


def test_unreadable_records_become_rejects_and_the_sink_keeps_going(broker, names, pairstream_env, tmp_path):
    """Review item: one tombstone or non-JSON value made `pairstream consume` crash on it forever (its offset
    was never committed). Now it is kept in DIR/rejects/ with where it came from and why, and committed past."""
    texts = stsb_sentences(6)
    bad = [None, b"\xff\xfe not json", b"[1, 2, 3]", orjson.dumps({"id": "no-positive", "anchor": "x"})]
    values = [triplet(i, texts[i]) for i in range(3)] + bad + [triplet(i, texts[i]) for i in range(3, 6)]
    produce(broker, names["triplets"], values, keys=[f"k{i}".encode() for i in range(len(values))], partition=0)
    out = tmp_path / "ds"
    done = consume(out, "--until-idle", "2", env=pairstream_env)
    assert done.returncode == 0, done.stderr
    assert "wrote 6 triplets" in done.stdout and "rejected 4 unreadable records" in done.stdout
    rows = [orjson.loads(x) for f in out.glob("*.jsonl") for x in f.read_bytes().splitlines()]
    assert sorted(r["id"] for r in rows) == [f"rec-{i}" for i in range(6)]
    rejects = sorted((orjson.loads(x) for f in (out / "rejects").glob("*.jsonl") for x in f.read_bytes().splitlines()),
                     key=lambda r: r["source"]["offset"])
    assert [r["source"] for r in rejects] == [{"topic": names["triplets"], "partition": 0, "offset": o}
                                              for o in (3, 4, 5, 6)]
    assert [r["reason"].split(":")[0] for r in rejects] == [
        "tombstone (null value)", "not JSON", "not a JSON object", "not a triplet record"]
    assert rejects[1]["value_encoding"] == "base64" and rejects[3]["value_encoding"] == "utf-8"

    again = consume(out, "--until-idle", "2", env=pairstream_env)  # committed past them: nothing to redo
    assert again.returncode == 0 and "wrote 0 triplets" in again.stdout and "rejected 0" in again.stdout


def test_two_sinks_in_one_group_rebalance_mid_stream_and_write_each_id_once(broker, names, pairstream_env, tmp_path):
    """Review item: positions of revoked partitions were kept, so `commit()` raised once a second sink joined
    the group. Two sinks share a group, the second joins mid-stream: together their datasets hold exactly the
    produced ids, none twice, none missing (on revocation the first commits what is durable, then lets go)."""
    producer = Trickle(broker, names["triplets"], stsb_sentences(1651), batch=40)  # flows through the rebalance
    producer.start()
    sinks = []
    try:
        first = spawn_cli("consume", "--out", str(tmp_path / "a"), "--quiet", "--group", "shared", "--shard-rows",
                          "200", "--until-idle", "6", env=pairstream_env, log=tmp_path / "a.log")
        sinks.append(first)
        wait_until(lambda: len(list((tmp_path / "a").glob("*.jsonl"))) >= 2, 60, "the first sink's shards")
        second = spawn_cli("consume", "--out", str(tmp_path / "b"), "--quiet", "--group", "shared", "--shard-rows",
                           "200", "--until-idle", "6", env=pairstream_env, log=tmp_path / "b.log")
        sinks.append(second)
        wait_until(lambda: list((tmp_path / "b").glob("*.jsonl")), 60, "the second sink's shards")
        time.sleep(2)  # both own partitions while the stream goes on
    finally:
        producer.stop()
    produced = producer.produced
    codes = [p.wait(120) for p in sinks]
    logs = [(tmp_path / n).read_text() for n in ("a.log", "b.log")]
    assert codes == [0, 0], logs

    def ids(folder):
        return [orjson.loads(x)["id"] for f in (tmp_path / folder).glob("*.jsonl") for x in f.read_bytes().splitlines()]

    a, b = ids("a"), ids("b")
    assert a and b, "both sinks should have written records"
    assert len(a) == len(set(a)) and len(b) == len(set(b))
    assert not set(a) & set(b), f"{len(set(a) & set(b))} ids written by both sinks"
    assert set(a) | set(b) == {f"rec-{i}" for i in produced}


def test_wrong_but_well_formed_records_become_rejects_and_the_sink_keeps_going(broker, names, pairstream_env,
                                                                               tmp_path):
    """Issue 23 item 3: a record with a field of the wrong shape (`quality: "bad"`, a mined negative without a
    score, a dead letter whose error is a string) passed the sink's presence check, raised inside the dataset,
    and stopped `consume` with exit 1 on every restart. Now it is validated against `schemas` and rejected."""
    texts = stsb_sentences(4)
    good = [orjson.loads(triplet(i, texts[i])) for i in range(4)]
    wrong = [{**good[0], "id": "bad-quality", "quality": "bad"},
             {**good[0], "id": "bad-mined", "mined_negatives": [{"text": "z"}]},
             {**good[0], "id": "bad-action", "action": "summarise"}]
    values = [orjson.dumps(r) for r in good[:2] + wrong + good[2:]]
    produce(broker, names["triplets"], values, partition=0)
    produce(broker, names["dlq"], [orjson.dumps({"id": "x", "error": "boom"})], partition=0)
    out = tmp_path / "ds"
    done = consume(out, "--until-idle", "2", "--dead-letters", env=pairstream_env)
    assert done.returncode == 0, done.stderr
    assert "wrote 4 triplets" in done.stdout and "rejected 4 unreadable records" in done.stdout
    rejects = {r["source"]["offset"] if r["source"]["topic"] == names["triplets"] else "dlq": r["reason"]
               for f in (out / "rejects").glob("*.jsonl") for r in map(orjson.loads, f.read_bytes().splitlines())}
    assert rejects[2].startswith("not a triplet record: quality: Input should be a valid dictionary")
    assert rejects[3].startswith("not a triplet record: mined_negatives.0.score: Field required")
    assert rejects[4].startswith("not a triplet record: action: Input should be")
    assert rejects["dlq"].startswith("not a dead-letter record: error: Input should be a valid dictionary")
    again = consume(out, "--until-idle", "2", "--dead-letters", env=pairstream_env)  # committed past them
    assert again.returncode == 0 and "wrote 0 triplets" in again.stdout and "rejected 0" in again.stdout


def test_limit_stops_at_exactly_n_records_and_commits_no_more(broker, names, pairstream_env, tmp_path):
    """Issue 23 item 5: `--limit N` wrote (and committed) the rest of a fetch, up to 1,000 records past N."""
    texts = stsb_sentences(300)
    produce(broker, names["triplets"], [triplet(i, t) for i, t in enumerate(texts)], partition=0)
    out = tmp_path / "ds"
    first = consume(out, "--limit", "7", env=pairstream_env)
    assert first.returncode == 0, first.stderr
    assert "wrote 7 triplets" in first.stdout
    rows = [orjson.loads(x)["id"] for f in out.glob("*.jsonl") for x in f.read_bytes().splitlines()]
    assert rows == [f"rec-{i}" for i in range(7)]
    rest = consume(out, "--until-idle", "2", env=pairstream_env)  # the next run starts right after the 7th
    assert "wrote 293 triplets" in rest.stdout and "dropped 0 duplicates" in rest.stdout, rest.stdout


def test_a_second_sink_on_one_directory_exits_1_naming_the_holder(broker, names, pairstream_env, tmp_path):
    """Issue 23 item 2: a second `consume --out DIR` shared the first's index and temp names, and its recovery
    deleted the first's open files. Now it stops at once with exit 1, naming DIR and the first sink's pid."""
    out = tmp_path / "ds"
    first = spawn_cli("consume", "--out", str(out), "--quiet", env=pairstream_env, log=tmp_path / "first.log")
    try:
        wait_until(lambda: (out / ".pairstream" / "lock").read_text().strip(), 60, "the first sink's lock")
        second = consume(out, "--until-idle", "2", "--group", "other", env=pairstream_env)
        assert second.returncode == 1, second.stderr
        assert str(out) in second.stderr and f"pid {first.pid}" in second.stderr
        assert first.poll() is None  # the first goes on
    finally:
        first.terminate()
        assert first.wait(60) == 0
    assert consume(out, "--until-idle", "1", env=pairstream_env).returncode == 0  # free once the first stopped


def test_a_newer_workers_records_are_kept_and_a_newer_schema_version_is_refused(broker, names, pairstream_env,
                                                                                 tmp_path):
    """Review item 3: the sink rejected every record with a field it did not know, so a worker upgraded before
    its sink stopped the dataset from growing. Now unknown fields (at the top, nested) are left out and the
    record is written; only a record of a newer schema_version is refused: kept in DIR/rejects/ with both
    versions in its reason, counted, one warning."""
    from schemas import SCHEMA_VERSION

    texts = stsb_sentences(5)
    good = [orjson.loads(triplet(i, texts[i])) for i in range(5)]
    newer_fields = {**good[1], "reranker_score": 0.9, "usage": {**good[1]["usage"], "cached_tokens": 3}}
    newer_version = {**good[3], "schema_version": SCHEMA_VERSION + 1}
    values = [good[0], newer_fields, good[2], newer_version, good[4]]
    produce(broker, names["triplets"], [orjson.dumps(v) for v in values], partition=0)
    out = tmp_path / "ds"
    done = consume(out, "--until-idle", "2", env=pairstream_env)
    assert done.returncode == 0, done.stderr
    assert "wrote 4 triplets" in done.stdout and "rejected 1 unreadable records" in done.stdout
    rows = {r["id"]: r for f in out.glob("*.jsonl") for r in map(orjson.loads, f.read_bytes().splitlines())}
    assert sorted(rows) == ["rec-0", "rec-1", "rec-2", "rec-4"]
    assert rows["rec-1"] == good[1]  # as the sink knows it: without the new fields
    [reject] = [orjson.loads(x) for f in (out / "rejects").glob("*.jsonl") for x in f.read_bytes().splitlines()]
    assert reject["source"]["offset"] == 3 and orjson.loads(reject["value"]) == newer_version
    assert f"schema_version {SCHEMA_VERSION + 1} is newer than this sink reads ({SCHEMA_VERSION})" in reject["reason"]
    assert "reranker_score" in done.stderr and "usage.cached_tokens" in done.stderr  # said once, not per record
    assert done.stderr.count(f"schema_version {SCHEMA_VERSION + 1}") == 1
