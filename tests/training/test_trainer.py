"""`pairstream train` on a small real dataset directory (human STS-B paraphrases written by the sink's store,
loaded from its card with `datasets`), on the CPU: a few steps lower the loss, the saved model loads with
`SentenceTransformer(MODEL_DIR)` and embeds differently from its base, its card names the dataset and carries
the before/after figures; and what cannot be trained on is refused with exit 2 and one line."""

import json

import numpy as np
import pytest
from sentence_transformers import SentenceTransformer

from streams.dataset.store import Dataset
from streams.training import models
from streams.training.trainer import Recipe, TrainingError, dataset_id, load_training_data, train
from support.training import gold_dataset, stsb_split

SENTENCES = ["A man is playing a guitar.", "The council approved the budget.", "Two dogs run in the snow."]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return gold_dataset(tmp_path_factory.mktemp("gold"), rows=96)


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "m"
    recipe = Recipe(config="triplet", epochs=2, batch_size=16, lr=2e-4, seed=3)
    return out, train(dataset, out, recipe, eval_pairs=stsb_split().eval_pairs[:120])


def test_training_lowers_the_loss_and_writes_a_model_that_loads_and_differs(trained):
    out, outcome = trained
    assert outcome.rows == 96 and outcome.steps == 12
    assert len(outcome.losses) >= 4 and np.mean(outcome.losses[-2:]) < np.mean(outcome.losses[:2]), outcome.losses
    model = SentenceTransformer(str(out))
    base = models.load(models.BUNDLED)
    moved = np.abs(model.encode(SENTENCES) - base.encode(SENTENCES)).max()
    assert moved > 1e-3
    assert outcome.before is not None and outcome.after is not None and outcome.after != outcome.before


def test_the_model_card_names_the_dataset_its_shards_and_figures(trained, dataset):
    out, outcome = trained
    card = (out / "README.md").read_text()
    assert "## Training Details" in card  # sentence-transformers' own card is there, ours follows it
    ident = dataset_id(dataset)
    assert ident and f"pairstream dataset `{ident}`" in card
    assert "triplet/triplet-" in card and "96 rows" in card and "MRR@10" in card
    report = json.loads((out / "pairstream-training.json").read_text())
    assert report["dataset"]["id"] == ident and report["dataset"]["rows"] == 96
    assert report["before"]["mrr_at_10"] == outcome.before.mrr_at_10


def test_pairs_are_every_records_anchor_and_positive(dataset):
    data, shards = load_training_data(dataset, "pairs")
    distinct = {(p.sentence1, p.sentence2) for p in stsb_split().gold_pairs[:96]}  # STS-B repeats a pair
    assert data.column_names == ["anchor", "positive"] and len(data) == len(distinct) and "triplet" in shards


@pytest.mark.parametrize("config, error", [("mined-negatives", "has no mined-negatives config"),
                                           ("sentences", "no such config")])
def test_a_config_the_dataset_lacks_is_refused(dataset, config, error):
    with pytest.raises(TrainingError, match=error):
        load_training_data(dataset, config)


def test_an_empty_dataset_is_refused(tmp_path):
    Dataset(tmp_path / "empty").close()
    with pytest.raises(TrainingError, match="has no triplet config"):
        load_training_data(tmp_path / "empty", "triplet")
    (tmp_path / "plain").mkdir()
    with pytest.raises(TrainingError, match="not a pairstream dataset directory"):
        load_training_data(tmp_path / "plain", "triplet")


def test_gist_trains_with_the_base_as_guide(dataset, tmp_path):
    outcome = train(dataset, tmp_path / "g", Recipe(config="pairs", loss="gist", max_steps=2, batch_size=16))
    assert outcome.steps == 2 and (tmp_path / "g" / "modules.json").is_file()
