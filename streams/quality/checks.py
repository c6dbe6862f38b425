"""Scores of a generated pair and what is wrong with it, from unit-length embeddings.

- near copy: the positive is (almost) the anchor: cosine >= `max_copy`, or the texts match
  character for character above `max_char_ratio` after normalising case and spacing (`char_ratio`: the
  Indel similarity, rapidfuzz);
- off topic: cosine anchor-positive < `min_topic`;
- false negative (positive-aware, NV-Retriever): the negative is not safely below the positive,
  cos(a, n) >= cos(a, p) - |cos(a, p)| * (1 - `negative_ratio`). This sign-safe form equals
  `cos(a, n) >= ratio * cos(a, p)` for a positive score and stays strict when it is negative
  (the `pos * ratio` form accepts bad negatives then: sentence-transformers#3819);
- too-easy hard negative: asked for a hard negative, got one with cosine < `min_hard_negative`.
"""

import re
from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Indel

from streams.generate.validation import Problem  # kinds: near_copy, off_topic, false_negative, easy_negative


@dataclass(frozen=True)
class Thresholds:
    max_copy: float = 0.95
    max_char_ratio: float = 0.9
    min_topic: float = 0.5
    negative_ratio: float = 0.95
    min_hard_negative: float = 0.3
    min_token_match: float = 0.3  # alignment.py: below it, a positive's token is invented
    max_negative_containment: float = 0.6  # alignment.py: at or above it, a negative is entailed by the anchor


@dataclass(frozen=True)
class Scores:
    anchor_positive: float
    anchor_negative: float | None
    model: str

    @property
    def margin(self) -> float | None:
        """cos(a, p) - cos(a, n): how far the positive is ahead (negative: an inverted triplet)."""
        return None if self.anchor_negative is None else self.anchor_positive - self.anchor_negative


def scores_of(vectors: np.ndarray, model: str) -> Scores:
    """`vectors`: anchor, positive[, negative], unit length."""
    ap = float(vectors[0] @ vectors[1])
    an = float(vectors[0] @ vectors[2]) if len(vectors) > 2 else None
    return Scores(round(ap, 4), None if an is None else round(an, 4), model)


def plain_text(text: str) -> str:
    """Case and punctuation folded: two texts that differ only in these are the same sentence."""
    return re.sub(r"\W+", " ", text.lower()).strip()


def char_ratio(a: str, b: str) -> float:
    """How much of the two folded texts is common, in [0, 1]: the normalised Indel similarity
    2 * LCS / (len(a) + len(b)), LCS the longest common subsequence of characters (1.0 for two empty texts).

    It equals `rapidfuzz.fuzz.ratio(a, b) / 100`, computed in C by a bit-parallel LCS, O(len(a) * len(b) / 64):
    about 40 microseconds for a 4,000-character anchor against a 400-character positive, where difflib's
    `SequenceMatcher(autojunk=False)` took 50 ms, and 300 ms on repeated characters, on the event loop; the
    folding (`plain_text`) now costs more than the ratio, about 0.3 ms there (`pairstream bench --checks`). difflib's ratio was 2 * M / T with M the total of its greedy matching
    blocks, M <= LCS, so this ratio is never below difflib's (a reordered sentence scores higher: "the cat
    sat on the mat" against "on the mat the cat sat" is 0.59, difflib said 0.50). Both flag the real
    near-copies of tests/quality/test_checks.py at the default 0.9; a copy with a phrase moved is now
    flagged too.
    """
    return Indel.normalized_similarity(plain_text(a), plain_text(b))


def findings(scores: Scores, anchor: str, positive: str, negative: str | None, *, hard_negative: bool,
             limits: Thresholds = Thresholds()) -> list[Problem]:
    """Everything wrong with the pair; an empty list is a pass."""
    found = []
    ap = scores.anchor_positive
    if ap >= limits.max_copy or char_ratio(anchor, positive) >= limits.max_char_ratio:
        found.append(Problem("near_copy", f"the positive is nearly the anchor itself (cosine {ap:.2f}); "
                                          "rewrite it with different words"))
    elif ap < limits.min_topic:
        found.append(Problem("off_topic", f"the positive is off topic (cosine {ap:.2f} with the anchor); "
                                          "it must mean the same as the anchor"))
    if negative is not None and scores.anchor_negative is not None:
        an = scores.anchor_negative
        if an >= ap - abs(ap) * (1 - limits.negative_ratio):
            found.append(Problem("false_negative", f"the negative is as close to the anchor as the positive "
                                                   f"(cosine {an:.2f} vs {ap:.2f}); it must mean something else"))
        elif hard_negative and an < limits.min_hard_negative:
            found.append(Problem("easy_negative", f"the hard negative is unrelated (cosine {an:.2f}); it should "
                                                  "share words and structure with the anchor"))
    return found
