"""`evaluate` on known pairs with the bundled all-MiniLM-L6-v2 (real torch weights, CPU): the retrieval task is
built as documented (a query never finds itself), the scores are sentence-transformers' evaluators' own, and
a model that knows word order and context (MiniLM) beats a bag of its own token vectors (the static student)."""

import pytest

from streams.training import models
from streams.training.evaluation import evaluate, retrieval_task
from streams.training.stsb import Pair
from support.training import stsb_split


@pytest.fixture(scope="module")
def held_out():
    return stsb_split().eval_pairs[:300]


def test_a_query_is_not_in_its_own_corpus_but_every_relevant_sentence_is():
    pairs = [Pair("A cat sits.", "A cat is sitting.", 5), Pair("A dog runs.", "A cat sits.", 4.2),
             Pair("Rain falls.", "The sun shines.", 0.4)]
    queries, corpus, relevant = retrieval_task(pairs, threshold=4)
    assert set(queries.values()) == {"A cat sits.", "A dog runs."}
    assert "A dog runs." not in corpus.values() and "A cat sits." in corpus.values()  # a query, and a relevant doc
    assert {corpus[d] for docs in relevant.values() for d in docs} == {"A cat is sitting.", "A cat sits."}
    assert {"Rain falls.", "The sun shines."} <= set(corpus.values())


def test_minilm_scores_real_held_out_pairs_and_beats_its_static_student(held_out):
    strong = evaluate(models.load(models.BUNDLED), held_out)
    weak = evaluate(models.load(models.STATIC), held_out)
    assert strong.queries > 50 and strong.corpus > 400
    assert strong.spearman > 0.75 and strong.mrr_at_10 > 0.85, strong  # all-MiniLM-L6-v2 is strong on STS
    assert weak.spearman < strong.spearman - 0.1, (weak, strong)
    assert 0 <= strong.recall_at_1 <= strong.recall_at_10 <= 1


def test_an_unknown_model_is_a_clear_error(tmp_path):
    with pytest.raises(models.ModelError, match="no such model directory"):
        models.resolve(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(models.ModelError, match="not a sentence-transformers model"):
        models.resolve(str(tmp_path / "empty"))
