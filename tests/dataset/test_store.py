"""The dataset directory: complete shards only, rotation by rows and time, ids deduplicated across restarts
through the SQLite index, crash leftovers cleaned up, the sentence-transformers column layout, and shards that
`datasets` loads as they are (JSONL and Parquet holding the same rows)."""

import time

import datasets
import orjson
import pytest

from streams.dataset.store import Dataset, DatasetError


def record(i: int, *, pair: bool = False) -> dict:
    return {
        "id": f"id-{i}", "anchor": f"Anchor {i}.", "positive": f"Positive {i}.",
        "negative": None if pair else f"Negative {i}.", "model_name": "m", "action": "paraphrase",
        "triplet": not pair, "hard_negative": False, "context": None, "metadata": {"n": i} if i % 2 else None,
        "usage": {"prompt_tokens": 10, "completion_tokens": 5}, "attempts": 1, "latency_ms": 12.5,
        "generated_at": "2026-11-24T10:00:00Z", "source": {"topic": "t", "partition": 0, "offset": i},
        "quality": None if i % 3 == 0 else {
            "anchor_positive": 0.8, "anchor_negative": None if pair else 0.3 + i / 100, "margin": None if pair else 0.5 - i / 100,
            "model": "sentence-transformers/all-MiniLM-L6-v2", "verdict": "pass", "problems": []},
        "mined_negatives": [{"text": f"Mined {i}.{k}", "score": 0.5 - k / 10, "source_id": f"id-{i - k - 1}"}
                            for k in range(i % 4)],
        "schema_version": 3,
    }


def fill(ds: Dataset, ids) -> None:
    for i in ids:
        ds.add(record(i))
        if ds.due():
            ds.checkpoint()


def load(path, fmt: str):
    return datasets.load_dataset("json" if fmt == "jsonl" else "parquet", data_files=f"{path}/*.{fmt}", split="train")


def test_shards_rotate_by_rows_and_are_only_visible_when_complete(tmp_path):
    ds = Dataset(tmp_path, shard_rows=4, views=())
    fill(ds, range(10))
    assert sorted(p.name for p in tmp_path.glob("*.jsonl")) == ["triplets-000001.jsonl", "triplets-000002.jsonl"]
    assert list((tmp_path / ".pairstream").glob("*.tmp"))  # rows 8-9 are in an unfinished shard
    ds.close()
    assert len(list(tmp_path.glob("*.jsonl"))) == 3 and not list((tmp_path / ".pairstream").glob("*.tmp"))
    manifest = orjson.loads((tmp_path / "manifest.json").read_bytes())
    assert manifest["rows"] == {"triplets": 10} and [s["rows"] for s in manifest["shards"]] == [4, 4, 2]


def test_shards_rotate_by_time(tmp_path):
    ds = Dataset(tmp_path, shard_rows=1000, shard_seconds=0.2, views=())
    ds.add(record(1))
    assert not ds.due()
    time.sleep(0.25)
    assert ds.due() and ds.checkpoint() == 1
    ds.close()


def test_duplicates_are_dropped_within_a_shard_and_across_restarts(tmp_path):
    ds = Dataset(tmp_path, shard_rows=3)
    fill(ds, [0, 1, 1, 2, 3])
    ds.close()
    again = Dataset(tmp_path, shard_rows=3)
    fill(again, range(6))  # 0-3 are already in the dataset
    assert again.duplicates == 4 and again.written["triplets"] == 2
    again.close()
    rows = load(tmp_path, "jsonl")
    assert sorted(rows["id"]) == [f"id-{i}" for i in range(6)]


def test_crash_leftovers_are_removed_and_their_ids_not_remembered(tmp_path):
    ds = Dataset(tmp_path, shard_rows=2)
    fill(ds, range(3))  # one complete shard (0, 1); id 2 in an open temp shard
    # a crash now; also simulate one between "rename into place" and "index commit":
    orphan = tmp_path / "triplets-000099.jsonl"
    orphan.write_bytes(orjson.dumps(record(7)) + b"\n")
    ds.index.close()
    restarted = Dataset(tmp_path, shard_rows=2)
    assert not orphan.exists() and not list((tmp_path / ".pairstream").glob("*.tmp"))
    assert restarted.add(record(2)) and restarted.add(record(7))  # redelivered, not duplicates
    assert not restarted.add(record(1))
    restarted.close()
    assert sorted(load(tmp_path, "jsonl")["id"]) == ["id-0", "id-1", "id-2", "id-7"]


def test_triplet_columns_layout_puts_pairs_apart(tmp_path):
    ds = Dataset(tmp_path, columns=("anchor", "positive", "negative"))
    ds.add(record(1))
    ds.add(record(2, pair=True))
    ds.close()
    triplets = load(tmp_path, "jsonl")
    assert triplets.column_names == ["anchor", "positive", "negative"] and triplets[0]["negative"] == "Negative 1."
    pairs = datasets.load_dataset("json", data_files=f"{tmp_path}/pairs/*.jsonl", split="train")
    assert pairs.column_names == ["anchor", "positive"] and pairs[0]["anchor"] == "Anchor 2."


def test_a_directory_keeps_its_format_and_columns(tmp_path):
    Dataset(tmp_path).close()
    with pytest.raises(DatasetError, match="format"):
        Dataset(tmp_path, fmt="parquet")
    with pytest.raises(DatasetError, match="columns"):
        Dataset(tmp_path, columns=("anchor", "positive"))


def test_parquet_and_jsonl_hold_the_same_rows(tmp_path):
    for fmt in ("jsonl", "parquet"):
        ds = Dataset(tmp_path / fmt, fmt=fmt, shard_rows=7)
        fill(ds, range(20))
        ds.add(record(20, pair=True))
        ds.close()
    as_json, as_parquet = load(tmp_path / "jsonl", "jsonl"), load(tmp_path / "parquet", "parquet")
    assert as_json.num_rows == as_parquet.num_rows == 21
    a = sorted(as_json.to_list(), key=lambda r: r["id"])
    b = sorted(as_parquet.to_list(), key=lambda r: r["id"])
    for row in b:  # Parquet keeps the free-form metadata object as a JSON string, the time as UTC timestamp
        row["metadata"] = orjson.loads(row["metadata"]) if row["metadata"] else None
        row["generated_at"] = row["generated_at"].replace(tzinfo=None)
    for row in a:
        row["generated_at"] = row["generated_at"].replace(tzinfo=None)
    assert a == b
    triplet_view = as_parquet.select_columns(["anchor", "positive", "negative"])
    assert triplet_view[0] == {"anchor": "Anchor 0.", "positive": "Positive 0.", "negative": "Negative 0."}


def test_a_checkpoint_that_fails_halfway_leaves_no_shard_outside_the_index(tmp_path, monkeypatch):
    """The disk fills up while the second shard of a checkpoint is finished: the first, already renamed into
    place, is taken back (it is not indexed), the error names the disk, and a restart writes both again."""
    import errno

    from streams.dataset.shard import Shard
    from streams.dataset.disk import StorageError

    ds = Dataset(tmp_path, shard_rows=1000)
    fill(ds, range(10))
    ds.checkpoint()
    visible = sorted(p.name for p in tmp_path.rglob("*.jsonl"))
    fill(ds, range(10, 20))
    real_finish, calls = Shard.finish, []

    def finish_then_fill_up(shard):
        calls.append(shard.final.name)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(shard.tmp))
        real_finish(shard)

    monkeypatch.setattr(Shard, "finish", finish_then_fill_up)
    with pytest.raises(StorageError, match="No space left on device.*free some space"):
        ds.checkpoint()
    assert sorted(p.name for p in tmp_path.rglob("*.jsonl")) == visible  # nothing new visible, nothing half-indexed
    ds.abort()
    monkeypatch.setattr(Shard, "finish", real_finish)

    again = Dataset(tmp_path, shard_rows=1000)
    assert not again.add(record(5)) and again.add(record(15))  # 0-9 are in, 10-19 were not
    fill(again, range(16, 20))
    again.close()
    ids = list(load(tmp_path, "jsonl")["id"])
    assert sorted(ids) == sorted([f"id-{i}" for i in range(10)] + [f"id-{i}" for i in range(15, 20)])
