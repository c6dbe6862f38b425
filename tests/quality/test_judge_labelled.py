"""The gate against readers (issue 24): every check's precision and recall on the labelled set of real
generated records (`tests/data/judge/`, labelled blind) and on gold STS-B paraphrases, held at what was
measured when the checks were calibrated, so a change that makes the judge worse fails here.

Measured (in-process all-MiniLM-L6-v2): the gate passes 60 of the 250 records, none of them usable by the
readers (no record of the set is); precision of a refusal (the role's sentence is defective) is 1.00 for every
positive check, 0.57 for the pooled false-negative rule and 0.74 for the token-level one; 45% of 300 gold
paraphrases pass (STS-B's high-scoring pairs are often near-copies, which the rubric refuses too)."""

import asyncio

import pytest

from streams.bench.evaluation import evaluate, gold_paraphrases, load_labelled
from streams.quality.judge import build_judge
from streams.settings import Settings
from support.processes import ROOT, SHARED_DATA

LABELLED = ROOT / "tests" / "data" / "judge" / "labelled.jsonl"
GOLD = SHARED_DATA.parent / "stsb_train.tsv"


@pytest.fixture(scope="module")
def evaluation():
    async def run():
        judge = build_judge(Settings(quality="gate"))
        try:  # round trip: each set's other anchors stand for the stream
            return await evaluate(judge, load_labelled(LABELLED, SHARED_DATA), gold_paraphrases(GOLD),
                                  round_trip=True)
        finally:
            await judge.aclose()
    return asyncio.run(run())


def test_the_labelled_set_is_whole_and_blind_labelled(evaluation):
    assert evaluation.records == 250 and evaluation.usable == 0


def test_the_gate_refuses_most_of_what_readers_found_wrong(evaluation):
    assert evaluation.passed <= 72  # 57 measured (60 before the round-trip check); before the form and token checks it passed 138 (all unusable)


@pytest.mark.parametrize("check, min_precision, min_recall", [
    ("near_copy", 0.95, 0.40), ("off_topic", 0.95, 0.9), ("invented", 0.95, 0.50),
    ("false_negative", 0.50, 0.60), ("entailed_negative", 0.65, 0.50), ("repetition", 0.95, 0.55),
    ("round_trip", 0.95, 0.12),
])
def test_each_check_keeps_its_measured_precision_and_recall(evaluation, check, min_precision, min_recall):
    figures = evaluation.checks[check]
    assert figures.precision is not None and figures.precision >= min_precision, (check, figures)
    assert figures.recall is not None and figures.recall >= min_recall, (check, figures)


@pytest.mark.parametrize("check, most", [("invented", 0.30), ("near_copy", 0.36), ("off_topic", 0.02),
                                         ("repetition", 0.03), ("fragment", 0.03), ("example_leak", 0.02),
                                         ("round_trip", 0.05)])
def test_real_paraphrases_are_refused_no_more_than_measured(evaluation, check, most):
    assert evaluation.gold_pairs == 300 and evaluation.gold[check] <= most, (check, evaluation.gold[check])
