"""The checks on real sentences, scored with the local model: a near-copy, an off-topic positive, an inverted
triplet (false negative), a too-easy hard negative, and a good triplet that passes."""

import pytest

from streams.quality.checks import Scores, Thresholds, char_ratio, findings, plain_text, scores_of
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


def lcs_length(a: str, b: str) -> int:
    """Longest common subsequence, by the textbook dynamic programme (the reference for `char_ratio`)."""
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


@pytest.mark.parametrize("a, b", [
    ("The cat sat on the mat.", "On the mat, the cat sat!"),  # reordered: difflib's matching blocks said 0.50
    ("A man is playing a guitar.", "A man is playing the guitar."),
    ("A man is playing a guitar.", "Stock markets fell sharply on Monday."),
    ("a" * 300, "a" * 30),
    ("", "..."),  # nothing left after folding on either side: the same (empty) sentence
])
def test_char_ratio_is_the_indel_similarity_of_the_folded_texts(a, b):
    x, y = plain_text(a), plain_text(b)
    expected = 2 * lcs_length(x, y) / (len(x) + len(y)) if x or y else 1.0
    assert char_ratio(a, b) == pytest.approx(expected, abs=1e-12)


def test_char_ratio_of_the_worst_cases():
    """The inputs `pairstream bench --checks` times (a 4,000-character anchor against a 400-character positive,
    repeated characters): their values here, their cost in the benchmark, not in a timed test."""
    anchor = " ".join(f"word{i % 97}" for i in range(800))[:4000]
    x, y = plain_text(anchor), plain_text(anchor[:400])  # the positive is a prefix: all of it is in common
    assert char_ratio(anchor, anchor[:400]) == pytest.approx(2 * len(y) / (len(x) + len(y)))
    assert char_ratio("a" * 4000, "a" * 400) == pytest.approx(2 * 400 / 4400)
    assert char_ratio(anchor, "z" * 400) == 0.0
