"""Labelled pairs files: GLUE's STS-B TSV (the real one in ../shared), CSV and JSONL read alike; a file without
a score column, a row without a number, an unknown format: one clear line, never a traceback."""

import pytest

from streams.training.pairs import PairsError, read_labelled_pairs
from support.training import STSB_TRAIN


def test_the_real_stsb_train_tsv_is_read_whole():
    pairs = read_labelled_pairs(STSB_TRAIN)
    assert len(pairs) == 5749
    assert (pairs[0].sentence1, pairs[0].sentence2, pairs[0].score) == (
        "A plane is taking off.", "An air plane is taking off.", 5.0)


def test_csv_and_jsonl_hold_the_same_pairs(tmp_path):
    (tmp_path / "p.csv").write_text('sentence1,sentence2,score\n"A cat, sitting.",A cat sits.,4.5\nA b.,C d.,0\n')
    (tmp_path / "p.jsonl").write_text('{"sentence1": "A cat, sitting.", "sentence2": "A cat sits.", "score": 4.5}\n'
                                      '{"sentence1": "A b.", "sentence2": "C d.", "score": 0}\n')
    assert read_labelled_pairs(tmp_path / "p.csv") == read_labelled_pairs(tmp_path / "p.jsonl")


@pytest.mark.parametrize("name, content, error", [
    ("p.tsv", "sentence1\tsentence2\nA.\tB.\n", "no score column"),
    ("p.csv", "sentence1,sentence2,score\nA.,B.,high\nC.,D.,1\n", "row 1 has no numeric score"),
    ("p.jsonl", '{"sentence1": "A.", "sentence2": "B.", "score": 1}\n', "1 usable pairs"),
    ("p.txt", "A. B. 1\n", "unknown format"),
    ("p.jsonl", "{not json\n", "cannot read it"),
])
def test_a_file_that_cannot_be_used_is_one_clear_error(tmp_path, name, content, error):
    (tmp_path / name).write_text(content)
    with pytest.raises(PairsError, match=error):
        read_labelled_pairs(tmp_path / name)
