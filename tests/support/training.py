"""A small real dataset directory for the training tests: human paraphrases from the generation side of the
STS-B train split (`streams.training.stsb`), written by the dataset sink's own store, so `datasets` loads it
from its card exactly as it loads a generated one."""

from pathlib import Path

from streams.dataset.store import Dataset
from streams.training.stsb import read_pairs, split
from support.processes import SHARED_DATA

STSB_TRAIN = SHARED_DATA.parent / "stsb_train.tsv"


def stsb_split():
    return split(read_pairs(STSB_TRAIN))


def record(i: int, anchor: str, positive: str, negative: str) -> dict:
    return {
        "id": f"stsb-{i}", "anchor": anchor, "positive": positive, "negative": negative, "model_name": "human",
        "action": "paraphrase", "triplet": True, "hard_negative": False, "context": None, "metadata": None,
        "usage": {"prompt_tokens": 0, "completion_tokens": 0}, "attempts": 1, "latency_ms": 0.0,
        "generated_at": "2026-12-02T00:00:00Z", "source": {"topic": "anchors", "partition": 0, "offset": i},
        "quality": None, "mined_negatives": [], "schema_version": 3,
    }


def gold_dataset(path: Path, rows: int = 64, shard_rows: int = 32) -> Path:
    gold = stsb_split().gold_pairs[:rows]
    ds = Dataset(path, shard_rows=shard_rows)
    for i, pair in enumerate(gold):
        ds.add(record(i, pair.sentence1, pair.sentence2, gold[(i + 7) % len(gold)].sentence2))
        if ds.due():
            ds.checkpoint()
    ds.close()
    return path
