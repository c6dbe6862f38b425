"""Review item 2: an index rebuilt from the shards (`.pairstream/` lost) records the layout the shards were written
with (format, columns, views, width of the mined negatives), not the flags of the run that rebuilt it. A run that
asks for another layout then fails as it would against an intact index, writing nothing, and the fix it suggests
works: with those flags the dataset carries on, one layout throughout."""

import shutil
from pathlib import Path

import datasets
import pytest

from streams.dataset.index import IdIndex
from streams.dataset.store import Dataset, DatasetError
from support.processes import clean_env, run_cli


def record(i: int, *, mined: int | None = None, negative: bool = True) -> dict:
    """A full record with `mined` mined negatives (by default i % 7: 0 to 6, so every width occurs)."""
    mined = i % 7 if mined is None else mined
    return {
        "id": f"id-{i}", "anchor": f"Anchor {i}.", "positive": f"Positive {i}.",
        "negative": f"Negative {i}." if negative else None, "model_name": "m", "action": "paraphrase",
        "triplet": negative, "hard_negative": False, "context": None, "metadata": None,
        "usage": {"prompt_tokens": 10, "completion_tokens": 5}, "attempts": 1, "latency_ms": 12.5,
        "generated_at": "2026-11-24T10:00:00Z", "source": {"topic": "t", "partition": 0, "offset": i},
        "quality": None,
        "mined_negatives": [{"text": f"Mined {i}.{k}", "score": 0.5 - k / 10, "source_id": f"id-{k}"}
                            for k in range(mined)],
        "schema_version": 3,
    }


def write(path: Path, ids, **layout) -> None:
    ds = Dataset(path, shard_rows=4, **layout)
    for i in ids:
        assert ds.add(record(i))
        if ds.due():
            ds.checkpoint()
    ds.close()


def shard_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.suffix in (".jsonl", ".parquet") and ".pairstream" not in p.parts}


def recorded(root: Path, key: str) -> str | None:
    index = IdIndex(root / ".pairstream" / "index.sqlite")
    try:
        return index.meta(key)
    finally:
        index.close()


def refusal(path: Path, **asked) -> str:
    with pytest.raises(DatasetError) as refused:
        Dataset(path, **asked)
    return str(refused.value)


def lose_index_of_a_twin(tmp_path: Path, ids, **layout) -> tuple[Path, Path]:
    """Two identical datasets: one keeps its index, the other loses it."""
    intact, lost = tmp_path / "intact", tmp_path / "lost"
    write(intact, ids, **layout)
    write(lost, ids, **layout)
    shutil.rmtree(lost / ".pairstream")
    return intact, lost


@pytest.mark.parametrize("written, asked", [("jsonl", "parquet"), ("parquet", "jsonl")])
def test_a_rebuilt_index_keeps_the_format_of_its_shards(tmp_path, written, asked):
    intact, lost = lose_index_of_a_twin(tmp_path, range(10), fmt=written)
    before = shard_files(lost)
    message = refusal(lost, fmt=asked)
    assert f"format {written!r}" in message and f"asked for format {asked!r}" in message
    assert message.replace(str(lost), "DIR") == refusal(intact, fmt=asked).replace(str(intact), "DIR")
    assert shard_files(lost) == before  # nothing written in the format asked
    assert recorded(lost, "format") == written
    assert f"--format {written}" in message  # the suggested fix works:
    again = Dataset(lost, fmt=written, shard_rows=4)
    assert not again.add(record(3)) and again.add(record(10))  # the rebuilt ids still drop duplicates
    again.close()
    rows = datasets.load_dataset("json" if written == "jsonl" else "parquet", data_files=f"{lost}/*.{written}",
                                 split="train")
    assert sorted(rows["id"]) == sorted(f"id-{i}" for i in range(11))
    assert not list(lost.rglob(f"*.{asked}"))


def test_a_rebuilt_index_keeps_the_width_of_the_mined_negatives(tmp_path):
    intact, lost = lose_index_of_a_twin(tmp_path, range(14), negatives=3)
    before = shard_files(lost)
    message = refusal(lost, negatives=5)
    assert "negatives '3'" in message and "asked for negatives '5'" in message and "--negatives 3" in message
    assert message.replace(str(lost), "DIR") == refusal(intact, negatives=5).replace(str(intact), "DIR")
    assert shard_files(lost) == before
    assert recorded(lost, "negatives") == "3"
    write(lost, range(14, 28), negatives=3)  # the fix: the dataset carries on, one width per folder
    view = datasets.load_dataset(str(lost), "mined-negatives", split="train")
    assert view.column_names == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]
    assert view.num_rows == sum(1 for i in range(28) if i % 7 >= 3)
    assert all(value is not None for row in view for value in row.values())
    two = datasets.load_dataset(str(lost), "mined-negatives-2", split="train")
    assert two.column_names == ["anchor", "positive", "negative_1", "negative_2"]


def test_a_rebuilt_index_keeps_the_views_of_its_shards(tmp_path):
    intact, lost = lose_index_of_a_twin(tmp_path, range(9), views=("triplet",))
    before = shard_files(lost)
    message = refusal(lost)  # the default: both views
    assert "views 'triplet'" in message and "--views triplet" in message
    assert message.replace(str(lost), "DIR") == refusal(intact).replace(str(intact), "DIR")
    assert shard_files(lost) == before and not (lost / "mined-negatives").exists()
    write(lost, range(9, 12), views=("triplet",))
    assert datasets.load_dataset(str(lost), "triplet", split="train").num_rows == 12
    assert not any(p.name.startswith("mined-negatives") for p in lost.iterdir())


def test_what_the_shards_cannot_tell_is_taken_from_the_flags_within_what_they_can(tmp_path):
    """No record so far had 5 mined negatives, so a width of 5 wrote exactly what 6 would have: the rebuilt index
    takes the width asked if the shards allow it, and says what they allow if not."""
    ids = [i for i in range(14) if i % 7 < 5]  # at most 4 mined negatives: no full-width row yet
    write(tmp_path, ids, negatives=5)
    shutil.rmtree(tmp_path / ".pairstream")
    message = refusal(tmp_path, negatives=3)  # the shards hold mined-negatives-4/: 3 cannot be it
    assert "negatives '5 or more'" in message and "--negatives 5" in message
    write(tmp_path, [20, 21], negatives=6)  # 6 agrees with every shard: it becomes the dataset's width
    assert recorded(tmp_path, "negatives") == "6"
    assert "negatives '6'" in refusal(tmp_path, negatives=5)


def test_views_the_shards_cannot_tell_apart_are_not_pinned_by_a_refused_run(tmp_path):
    """Records without an LLM negative or a mined one: either view writes them to pairs/ alone, so the shards say
    only that some view was on. A run asking for none is refused, and records no guess: a later run asking for
    a view that fits carries on, and from then on the dataset has that layout."""
    ds = Dataset(tmp_path, negatives=3)
    for i in range(5):
        ds.add(record(i, mined=0, negative=False))
    ds.close()
    shutil.rmtree(tmp_path / ".pairstream")
    message = refusal(tmp_path, views=())
    assert "views 'triplet' or 'mined-negatives' or 'triplet,mined-negatives'; asked for views 'none'" in message
    refused_again = refusal(tmp_path, views=())
    assert refused_again == message
    Dataset(tmp_path, views=("mined-negatives",), negatives=7).close()
    assert (recorded(tmp_path, "views"), recorded(tmp_path, "negatives")) == ("mined-negatives", "7")
    assert "--views mined-negatives --negatives 7" in refusal(tmp_path, views=("triplet",))


def test_a_folder_of_mixed_widths_is_refused_not_adopted(tmp_path):
    """What the old rebuild could leave behind: mined-negatives/ holding rows of 3 and of 5 negatives."""
    write(tmp_path, range(7), negatives=3)
    other = tmp_path / "other"
    write(other, range(7, 14), negatives=5)
    for shard in (other / "mined-negatives").iterdir():
        shutil.copy(shard, tmp_path / "mined-negatives" / shard.name.replace("-0000", "-0009"))
    shutil.rmtree(other)
    shutil.rmtree(tmp_path / ".pairstream")
    before = shard_files(tmp_path)
    message = refusal(tmp_path, negatives=3)
    assert "mined-negatives/" in message and "restore" in message
    assert shard_files(tmp_path) == before


def test_consume_refuses_a_rebuilt_dataset_of_another_layout_as_it_refuses_an_intact_one(tmp_path):
    """Exit 2 with the same message, before any broker is reached (none is running here)."""
    intact, lost = lose_index_of_a_twin(tmp_path, range(6), fmt="parquet", negatives=3)
    env = clean_env(PAIRSTREAM_BROKER="127.0.0.1:9", PAIRSTREAM_MINED_NEGATIVES=4)
    results = [run_cli("consume", "--out", str(d), "--quiet", "--until-idle", "1", env=env, timeout=60)
               for d in (intact, lost)]
    assert [r.returncode for r in results] == [2, 2], [r.stderr for r in results]
    intact_err, lost_err = (r.stderr.replace(str(d), "DIR") for r, d in zip(results, (intact, lost)))
    assert "rebuilt it from its 9 shards" in lost_err and "format parquet" in lost_err  # one warning, then:
    assert lost_err.splitlines()[-1] == intact_err.splitlines()[-1] == intact_err.strip()
    assert "--format parquet" in lost_err and "--negatives 3" in lost_err
    assert recorded(lost, "format") == "parquet" and not list(lost.rglob("*.jsonl"))
