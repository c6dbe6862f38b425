"""Review item 3: the sink reads records of an upgraded worker. Fields it does not know (on the record or in a
nested object) are ignored, so the dataset keeps growing; only a record whose `schema_version` is newer than
the sink knows is refused, with both versions in the reason (it becomes a reject: kept with its offset and
counted, like every record the sink cannot read). No broker here: `read_record` is what the sink runs on
every message (tests/dataset/test_sink.py runs it through `pairstream consume`)."""

import copy

import datasets
import orjson
import pytest

from schemas import SCHEMA_VERSION
from streams.dataset.sink import read_record
from streams.dataset.store import Dataset


def triplet(i: int, version: int = SCHEMA_VERSION) -> dict:
    record = {
        "id": f"rec-{i}", "anchor": f"Anchor {i}.", "positive": f"Positive {i}.", "negative": f"Negative {i}.",
        "model_name": "m", "action": "paraphrase", "triplet": True, "hard_negative": False, "context": None,
        "metadata": {"keep": "me"}, "usage": {"prompt_tokens": 10, "completion_tokens": 5}, "attempts": 1,
        "latency_ms": 3.0, "generated_at": "2026-11-24T10:00:00Z",
        "source": {"topic": "anchors", "partition": 0, "offset": i},
        "quality": {"anchor_positive": 0.8, "anchor_negative": 0.3, "margin": 0.5, "model": "e", "verdict": "pass",
                    "problems": []},
        "mined_negatives": [{"text": "Mined.", "score": 0.4, "source_id": "rec-0"}],
        "schema_version": version,
    }
    if version < 3:
        del record["mined_negatives"]
    if version < 2:
        del record["quality"]
    return record


def with_new_fields(record: dict) -> dict:
    """What a newer worker might send: a field at the top, and fields inside nested objects and list items."""
    newer = copy.deepcopy(record)
    newer["reranker_score"] = 0.93
    newer["quality"]["calibrated"] = {"p": 0.7}
    newer["mined_negatives"][0]["rank"] = 1
    newer["source"]["leader_epoch"] = 4
    return newer


def test_fields_the_sink_does_not_know_are_ignored_and_the_record_is_kept():
    record = triplet(1)
    ignored: set[str] = set()
    read = read_record(orjson.dumps(with_new_fields(record)), False, ignored)
    assert read == record  # exactly the fields the sink knows, every one of them
    assert ignored == {"reranker_score", "quality.calibrated", "mined_negatives.rank", "source.leader_epoch"}
    assert read_record(orjson.dumps(record), False) == record


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_records_with_new_fields_are_written_to_the_dataset_with_the_columns_it_has(tmp_path, fmt):
    ds = Dataset(tmp_path, fmt=fmt)
    for i in range(4):
        value = with_new_fields(triplet(i)) if i % 2 else triplet(i)
        assert ds.add(read_record(orjson.dumps(value), False))
    ds.close()
    rows = datasets.load_dataset("json" if fmt == "jsonl" else "parquet", data_files=f"{tmp_path}/*.{fmt}",
                                 split="train")
    assert sorted(rows["id"]) == [f"rec-{i}" for i in range(4)]
    assert "reranker_score" not in rows.column_names
    assert all(set(q) >= {"anchor_positive", "verdict"} and "calibrated" not in q for q in rows["quality"])


def test_a_dead_letter_with_new_fields_is_kept():
    letter = {"id": "x", "stage": "llm", "attempts": 3, "error": {"type": "timeout", "message": "down"},
              "raw": "{}", "source": {"topic": "anchors", "partition": 0, "offset": 7},
              "failed_at": "2026-11-24T10:00:00Z"}
    newer = {**letter, "trace_id": "abc", "error": {**letter["error"], "retryable": True}}
    assert read_record(orjson.dumps(newer), True) == letter


@pytest.mark.parametrize("newer_by", [1, 7])
def test_a_record_of_a_newer_schema_version_is_refused_naming_both_versions(newer_by):
    version = SCHEMA_VERSION + newer_by
    reason = read_record(orjson.dumps(triplet(1, version)), False)
    assert isinstance(reason, str)
    assert f"schema_version {version}" in reason and f"({SCHEMA_VERSION}" in reason and "newer" in reason
    # the version is what it is refused for, even when its fields changed in ways this sink cannot read
    changed = {**with_new_fields(triplet(1, version)), "usage": "a new shape"}
    assert read_record(orjson.dumps(changed), False) == reason


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION + 1))
def test_records_of_this_or_an_older_schema_version_are_kept(version):
    record = triplet(1, version)
    assert read_record(orjson.dumps(record), False) == record
    assert read_record(orjson.dumps(with_new_fields(record) if version >= 3 else {**record, "x": 1}), False) \
        == record


def test_a_wrong_field_is_still_a_reject_and_its_reason_is_the_wrong_field_not_the_new_one():
    reason = read_record(orjson.dumps({**with_new_fields(triplet(1)), "action": "summarise"}), False)
    assert isinstance(reason, str) and reason.startswith("not a triplet record: action: Input should be")
    assert "reranker_score" not in reason and "calibrated" not in reason
