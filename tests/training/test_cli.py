"""`pairstream evaluate` and `train` from the command line: figures printed (and JSON), and bad input refused
with exit 2 and one line: no such config or loss, an empty dataset, a pairs file without a score column."""

import json

import pytest

from streams.dataset.store import Dataset
from support.processes import run_cli
from support.training import gold_dataset, stsb_split


def write_pairs(path, pairs):
    path.write_text("sentence1\tsentence2\tscore\n" + "".join(f"{p.sentence1}\t{p.sentence2}\t{p.score}\n"
                                                              for p in pairs))
    return path


def test_evaluate_prints_the_scores_as_json(tmp_path):
    pairs = write_pairs(tmp_path / "held.tsv", stsb_split().eval_pairs[:80])
    result = run_cli("evaluate", "--pairs", str(pairs), "--json")
    assert result.returncode == 0, result.stderr
    scores = json.loads(result.stdout)
    assert scores["pairs"] == 80 and 0.5 < scores["spearman"] <= 1 and scores["mrr_at_10"] is not None


def test_train_then_evaluate_the_trained_model(tmp_path):
    data = gold_dataset(tmp_path / "d", rows=32)
    pairs = write_pairs(tmp_path / "held.tsv", stsb_split().eval_pairs[:40])
    result = run_cli("train", str(data), "--out", str(tmp_path / "m"), "--max-steps", "2", "--batch-size", "16",
                     "--eval", str(pairs), timeout=600)
    assert result.returncode == 0, result.stderr
    assert "trained 2 steps on 32 rows" in result.stdout and "before" in result.stdout and "after" in result.stdout
    again = run_cli("evaluate", "--model", str(tmp_path / "m"), "--pairs", str(pairs))
    assert again.returncode == 0 and "spearman" in again.stdout


def one_line_error(result, text):
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and text in lines[0], (result.returncode, result.stderr)


@pytest.mark.parametrize("flags, text", [(["--config", "sentences"], "no such config"),
                                         (["--loss", "triplet-margin"], "no such loss")])
def test_train_refuses_an_unknown_config_or_loss(tmp_path, flags, text):
    data = gold_dataset(tmp_path / "d", rows=8)
    one_line_error(run_cli("train", str(data), "--out", str(tmp_path / "m"), *flags), text)


def test_train_refuses_an_empty_dataset(tmp_path):
    Dataset(tmp_path / "empty").close()
    one_line_error(run_cli("train", str(tmp_path / "empty"), "--out", str(tmp_path / "m")), "has no triplet config")


def test_evaluate_refuses_a_pairs_file_without_a_score_column(tmp_path):
    (tmp_path / "p.tsv").write_text("sentence1\tsentence2\nA.\tB.\n")
    one_line_error(run_cli("evaluate", "--pairs", str(tmp_path / "p.tsv")), "no score column")
