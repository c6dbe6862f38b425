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


def crash(ds: Dataset) -> None:
    """The process dies: nothing is flushed or checkpointed; the kernel closes its files and lets go of the lock."""
    ds.index.close()
    ds.lock.release()


def test_crash_leftovers_are_removed_and_their_ids_not_remembered(tmp_path):
    ds = Dataset(tmp_path, shard_rows=2)
    fill(ds, range(3))  # one complete shard (0, 1); id 2 in an open temp shard
    # a crash now; also one between "rename into place" and "index commit": the index names it as pending
    orphan = tmp_path / "triplets-000099.jsonl"
    ds.index.mark_pending([orphan.name])
    orphan.write_bytes(orjson.dumps(record(7)) + b"\n")
    crash(ds)
    restarted = Dataset(tmp_path, shard_rows=2)
    assert not orphan.exists() and not list((tmp_path / ".pairstream").glob("*.tmp"))
    assert restarted.add(record(2)) and restarted.add(record(7))  # redelivered, not duplicates
    assert not restarted.add(record(1))
    restarted.close()
    assert sorted(load(tmp_path, "jsonl")["id"]) == ["id-0", "id-1", "id-2", "id-7"]


def test_a_shard_named_file_the_index_never_recorded_is_left_alone(tmp_path):
    ds = Dataset(tmp_path, shard_rows=2)
    fill(ds, range(2))
    ds.close()
    stranger = tmp_path / "triplets-000050.jsonl"  # not pending, not indexed: not pairstream's to delete
    stranger.write_bytes(orjson.dumps(record(50)) + b"\n")
    again = Dataset(tmp_path, shard_rows=2)
    fill(again, range(2, 4))
    again.close()
    assert stranger.read_bytes() == orjson.dumps(record(50)) + b"\n"
    assert stranger.name not in [s["name"] for s in orjson.loads((tmp_path / "manifest.json").read_bytes())["shards"]]
    assert all(int(p.stem[-6:]) > 50 for p in tmp_path.glob("triplets-*.jsonl") if p != stranger and
               p.name not in ("triplets-000001.jsonl",))  # new shards are numbered past it, never over it


@pytest.mark.parametrize("how", ["index deleted", "copied without the hidden folder"])
def test_shards_without_their_index_are_adopted_and_the_index_rebuilt(tmp_path, how, caplog):
    """Issue 23 item 1: a directory of shards without .pairstream/ used to lose every shard on open."""
    import shutil

    source = tmp_path / "ds"
    ds = Dataset(source, shard_rows=3, dead_letters=True)
    fill(ds, range(7))
    ds.add({"id": "dl-1", "stage": "llm", "error": {"type": "http_500", "message": "x"}}, dead_letter=True)
    ds.close()
    target = source
    if how == "index deleted":
        shutil.rmtree(source / ".pairstream")
    else:
        target = tmp_path / "copy"
        target.mkdir()
        for item in source.iterdir():  # cp -r ds/* copy/
            if item.name != ".pairstream":
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, target / item.name)
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*.jsonl"))
    with caplog.at_level("WARNING", logger="pairstream.dataset"):
        again = Dataset(target, shard_rows=3, dead_letters=True)
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*.jsonl")) == files  # nothing deleted
    assert "rebuilt it from its" in caplog.text
    assert again.tally.triplets == 7 and again.tally.dead_letters == 1  # the figures, from the shards
    assert not again.add(record(3)) and not again.add(record(6))  # redelivered: still duplicates
    assert again.add(record(7))
    again.close()
    assert sorted(load(target, "jsonl")["id"]) == [f"id-{i}" for i in range(8)]
    triplet_view = datasets.load_dataset(str(target), "triplet", split="train")
    assert triplet_view.num_rows == 8


def test_shards_of_a_columns_layout_without_their_index_are_refused_not_deleted(tmp_path):
    import shutil

    ds = Dataset(tmp_path, columns=("anchor", "positive", "negative"))
    fill(ds, range(3))
    ds.close()
    shutil.rmtree(tmp_path / ".pairstream")
    with pytest.raises(DatasetError, match="holds shards but no index.*restore"):
        Dataset(tmp_path, columns=("anchor", "positive", "negative"))
    assert len(load(tmp_path, "jsonl")) == 3


def test_a_second_writer_of_one_directory_is_refused_with_the_holders_pid(tmp_path):
    """Issue 23 item 2: two sinks on one directory numbered shards from one index and deleted each other's."""
    import os

    from streams.dataset.store import DirectoryBusy

    first = Dataset(tmp_path)
    with pytest.raises(DirectoryBusy, match=f"{tmp_path}.*pid {os.getpid()}"):
        Dataset(tmp_path)
    first.add(record(1))
    first.close()
    Dataset(tmp_path).close()  # free again once the first has stopped


def dead_letter(i: int) -> dict:
    return {"id": f"id-{i}", "stage": "llm", "attempts": 3, "error": {"type": "timeout", "message": "LLM down"},
            "raw": "{}", "source": {"topic": "t", "partition": 0, "offset": i}, "failed_at": "2026-11-24T10:00:00Z"}


@pytest.mark.parametrize("restart", [False, True])
def test_a_triplet_supersedes_a_dead_letter_of_the_same_id(tmp_path, restart):
    """Issue 23 item 4: dead-lettered in an outage, then redelivered and generated: the triplet is kept."""
    ds = Dataset(tmp_path, dead_letters=True)
    assert ds.add(dead_letter(1), dead_letter=True) and ds.add(dead_letter(2), dead_letter=True)
    if restart:
        ds.close()
        ds = Dataset(tmp_path, dead_letters=True)
    assert ds.add(record(1))  # not a duplicate
    assert not ds.add(record(1)) and not ds.add(dead_letter(1), dead_letter=True)  # both kinds now duplicates
    assert not ds.add(dead_letter(2), dead_letter=True)
    ds.close()
    assert list(load(tmp_path, "jsonl")["id"]) == ["id-1"]
    reopened = Dataset(tmp_path, dead_letters=True)
    assert (reopened.tally.triplets, reopened.tally.dead_letters, reopened.tally.superseded) == (1, 1, 1)
    assert reopened.tally.rejections == {"llm: timeout": 1} and reopened.tally.yield_ == 0.5
    reopened.close()
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "- records: 1; dead letters: 1" in card and "superseded by a later triplet" in card


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
