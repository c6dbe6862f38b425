"""Layouts, views and the dataset card: the n-tuple and triplet configs load with `datasets` into exactly the
sentence-transformers input columns, shorter rows land in families of their own width (never padded), and the
card's front matter parses as YAML and names every config `datasets` then loads from the directory itself."""

import datasets
import pytest
import yaml

from streams.dataset.layouts import Layout, check_columns
from streams.dataset.store import Dataset, DatasetError
from dataset.test_store import record


def front_matter(path):
    text = (path / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def written(tmp_path, n=40, **kwargs):
    ds = Dataset(tmp_path, shard_rows=15, **kwargs)
    for i in range(n):
        ds.add(record(i, pair=i % 10 == 9))  # record i has i % 4 mined negatives; every tenth has no LLM negative
        if ds.due():
            ds.checkpoint()
    ds.close()
    return ds


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_the_views_load_from_the_card_as_sentence_transformers_columns(tmp_path, fmt):
    written(tmp_path, fmt=fmt, negatives=3)
    meta, _ = front_matter(tmp_path)
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert set(configs) == {"records", "triplet", "pairs", "mined-negatives", "mined-negatives-1",
                            "mined-negatives-2"}
    assert configs["triplet"].get("default") is True
    load = lambda name: datasets.load_dataset(str(tmp_path), name, split="train")  # noqa: E731
    full = load("mined-negatives")
    assert full.column_names == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]
    assert full.num_rows == sum(1 for i in range(40) if i % 4 == 3)
    row = full[0]
    assert row["anchor"] == "Anchor 3." and row["negative_3"] == "Mined 3.2"
    for width in (1, 2):
        short = load(f"mined-negatives-{width}")
        assert short.column_names == ["anchor", "positive"] + [f"negative_{k}" for k in range(1, width + 1)]
        assert short.num_rows == sum(1 for i in range(40) if i % 4 == width)
    triplet = load("triplet")
    assert triplet.column_names == ["anchor", "positive", "negative"] and triplet.num_rows == 36
    pairs = load("pairs")  # rows without any negative in some view: each record at most once
    assert pairs.column_names == ["anchor", "positive"]
    assert sorted(pairs["anchor"]) == sorted({f"Anchor {i}." for i in range(40) if i % 4 == 0 or i % 10 == 9})
    records = load("records")
    assert records.num_rows == 40 and "id" in records.column_names and "mined_negatives" in records.column_names


def test_an_ntuple_columns_layout_puts_shorter_rows_in_families_of_their_width(tmp_path):
    written(tmp_path, columns=("anchor", "positive", "negative", "negative_1", "negative_2"))
    meta, _ = front_matter(tmp_path)
    names = {c["config_name"] for c in meta["configs"]}
    assert names == {"default", "negatives-1", "negatives-2"}  # at most 3 negatives asked: no negatives-3
    full = datasets.load_dataset(str(tmp_path), "default", split="train")
    assert full.column_names == ["anchor", "positive", "negative", "negative_1", "negative_2"]
    assert full.num_rows == sum(1 for i in range(40) if i % 4 >= 2 and i % 10 != 9)
    two = datasets.load_dataset(str(tmp_path), "negatives-2", split="train")
    assert two.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    # one mined and the LLM's, or (records 19 and 39) three mined and no LLM negative: the first two of them
    assert sorted(two["anchor"]) == sorted(f"Anchor {i}." for i in range(40) if i % 4 == 1 and i % 10 != 9
                                           or i in (19, 39))
    by_anchor = {r["anchor"]: r for r in two}
    assert by_anchor["Anchor 19."]["negative_1"] == "Mined 19.0"  # renamed in order: the first mined comes first
    assert by_anchor["Anchor 5."]["negative_1"] == "Negative 5."
    one = datasets.load_dataset(str(tmp_path), "negatives-1", split="train")
    assert one.num_rows == sum(1 for i in range(40) if i % 4 == 0 or i in (9, 29))


def test_a_row_is_never_padded_and_columns_keep_their_order():
    layout = Layout("triplets", ("positive", "negative_2", "anchor", "negative"), "negatives")
    rec = record(5)  # one mined negative, an LLM negative
    family, row = layout.place(rec)
    assert family == "negatives-1" and list(row) == ["positive", "anchor", "negative_1"]
    assert row["negative_1"] == "Negative 5." and None not in row.values()
    assert layout.place(record(7)) == ("triplets", {"positive": "Positive 7.", "negative_2": "Mined 7.1",
                                                    "anchor": "Anchor 7.", "negative": "Negative 7."})


@pytest.mark.parametrize("columns", [("anchor", "negative_0"), ("anchor", "anchor"), ("anchor", "label"), ()])
def test_bad_columns_are_refused(columns):
    with pytest.raises(ValueError):
        check_columns(columns)


def test_views_need_full_records_and_a_directory_keeps_its_views(tmp_path):
    with pytest.raises(DatasetError):
        Dataset(tmp_path / "a", columns=("anchor", "positive"), views=("triplet",))
    Dataset(tmp_path / "b", views=("triplet",)).close()
    with pytest.raises(DatasetError, match="views"):
        Dataset(tmp_path / "b")


def test_the_card_states_size_licence_models_tag_and_the_quality_figures(tmp_path):
    written(tmp_path, dead_letters=True)
    ds = Dataset(tmp_path, dead_letters=True)
    ds.add({"id": "dl-1", "error": {"type": "near_copy", "message": "x"}, "stage": "quality"}, dead_letter=True)
    ds.close()
    meta, body = front_matter(tmp_path)
    assert meta["size_categories"] == ["n<1K"] and meta["license"] == "other"
    assert "sentence-transformers" in meta["tags"] and "dead-letters" in {c["config_name"] for c in meta["configs"]}
    assert "generation: `m` (40 records)" in body
    assert "embeddings (scores, mining): `sentence-transformers/all-MiniLM-L6-v2`" in body
    assert "yield (records per anchor accounted for): 97.6%" in body  # 40 of 41
    assert "| quality: near_copy | 1 |" in body
    # records with quality: i % 3 != 0 -> 26 of 40; anchor-positive is 0.8 for each
    assert "| anchor-positive | 26 | 0.81 | 0.81 | 0.81 |" in body


def test_a_directory_from_before_the_card_gets_its_figures_from_its_shards(tmp_path):
    written(tmp_path, n=20, dead_letters=True)
    before = (tmp_path / "README.md").read_text(encoding="utf-8")
    ds = Dataset(tmp_path, dead_letters=True)
    ds.index.db.execute("DELETE FROM meta WHERE key = 'tally'")  # as a directory written by an older sink
    ds.close()
    again = Dataset(tmp_path, dead_letters=True)
    assert again.tally.triplets == 20 and again.tally.mined == {"0": 5, "1": 5, "2": 5, "3": 5}
    again.add(record(20))
    again.close()
    after = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "generation: `m` (20 records)" in before and "generation: `m` (21 records)" in after


def test_consume_refuses_views_beside_a_columns_layout_with_exit_2(tmp_path):
    from support.processes import run_cli

    done = run_cli("consume", "--out", str(tmp_path / "d"), "--columns", "anchor,positive", "--views", "triplet")
    assert done.returncode == 2 and "views come beside full records only" in done.stderr
    done = run_cli("consume", "--out", str(tmp_path / "d"), "--views", "quadruplet")
    assert done.returncode == 2 and "--views" in done.stderr


def test_a_grown_dataset_and_another_of_the_same_name_never_load_from_a_stale_cache(tmp_path):
    """`datasets` caches a local directory's configs by their YAML: with globs, a reload after the dataset grew
    returned the rows of the first load (seen: 4 instead of 16), and so did another directory of the same name."""
    grown = tmp_path / "a" / "data"
    load = lambda d: datasets.load_dataset(str(d), "triplet", split="train")  # noqa: E731
    first = Dataset(grown)
    for i in range(4):
        first.add(record(i))
    first.close()
    assert load(grown).num_rows == 4
    more = Dataset(grown)
    for i in range(4, 16):
        more.add(record(i))
    more.close()
    assert load(grown).num_rows == 16
    other = tmp_path / "b" / "data"  # the same name and the same shard names, other rows
    ds = Dataset(other)
    for i in range(100, 104):
        ds.add(record(i))
    ds.close()
    assert sorted(load(other)["anchor"]) == sorted(f"Anchor {i}." for i in range(100, 104))


def test_recovery_deletes_only_pairstreams_own_unindexed_shards(tmp_path):
    written(tmp_path, n=10)
    ds = Dataset(tmp_path)  # a crash after renaming a shard the index records as pending, before indexing it
    orphan = tmp_path / "mined-negatives" / "mined-negatives-000099.jsonl"
    ds.index.mark_pending(["mined-negatives/mined-negatives-000099.jsonl"])
    orphan.write_text('{"anchor": "a"}\n')
    ds.index.close()
    ds.lock.release()
    mine = tmp_path / "notes" / "draft-000001.jsonl"  # a user's own file inside DIR
    mine.parent.mkdir()
    mine.write_text("{}\n")
    Dataset(tmp_path).close()
    assert not orphan.exists() and mine.exists()
