"""The checks on real sentences, scored with the local model: a near-copy, an off-topic positive, an inverted
triplet (false negative), a too-easy hard negative, and a good triplet that passes."""

import pytest

from streams.quality.checks import Scores, Thresholds, findings, scores_of
from streams.quality.local_minilm import LocalMiniLM


@pytest.fixture(scope="module")
def judge():
    model = LocalMiniLM()

    def run(anchor, positive, negative=None, hard_negative=False):
        texts = [anchor, positive] + ([negative] if negative else [])
        scores = scores_of(model.embed_sync(texts), model.name)
        return scores, [f.kind for f in findings(scores, anchor, positive, negative, hard_negative=hard_negative)]

    return run


def test_a_good_triplet_passes(judge):
    scores, found = judge("A man is playing a guitar.", "Someone is strumming a guitar.",
                          "A woman is slicing an onion.")
    assert found == [] and scores.margin > 0.3


def test_a_near_copy_is_caught(judge):
    scores, found = judge("A man is playing a guitar.", "A man is playing the guitar.")
    assert "near_copy" in found and scores.anchor_positive > 0.9


def test_an_off_topic_positive_is_caught(judge):
    scores, found = judge("A man is playing a guitar.", "Stock markets fell sharply on Monday.")
    assert found == ["off_topic"] and scores.anchor_positive < 0.5


def test_an_inverted_triplet_is_a_false_negative(judge):
    scores, found = judge("A man is playing a guitar.", "Someone is making music.", "A man plays a guitar.")
    assert "false_negative" in found and scores.margin < 0


def test_a_too_easy_hard_negative_is_caught_only_when_a_hard_one_was_asked(judge):
    args = ("A man is playing a guitar.", "Someone is strumming a guitar.", "Quantum chromodynamics is hard.")
    assert "easy_negative" in judge(*args, hard_negative=True)[1]
    assert judge(*args, hard_negative=False)[1] == []


def test_the_false_negative_rule_is_sign_safe():
    """With a negative positive score, `pos * 0.95` would accept a negative closer than the positive."""
    scores = Scores(anchor_positive=-0.10, anchor_negative=-0.099, model="m")
    assert [f.kind for f in findings(scores, "a b c", "x y z", "n", hard_negative=False,
                                     limits=Thresholds(min_topic=-1))] == ["false_negative"]


def test_thresholds_come_from_the_settings():
    from streams.quality.judge import thresholds
    from streams.settings import Settings

    limits = thresholds(Settings(quality_max_copy=0.9, quality_max_char_ratio=0.8, quality_min_topic=0.4,
                                 quality_negative_ratio=0.9, quality_min_hard_negative=0.2))
    assert limits == Thresholds(max_copy=0.9, max_char_ratio=0.8, min_topic=0.4, negative_ratio=0.9,
                                min_hard_negative=0.2)
