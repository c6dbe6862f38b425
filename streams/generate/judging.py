"""The interface between generation and the quality gate, so `generate` needs nothing from `quality`.

A `Judge` scores a valid pair and names what is wrong with it; the generator re-asks on a
failing verdict (policy `gate`), delivers it flagged (`flag`), or never asks (`off`).
`streams.quality.judge` implements it with an embedding model. A `Miner` takes the delivered
pair's vectors and returns negatives mined from earlier records (`streams.quality.mining`).
"""

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from streams.generate.decode import AnchorRequest
from streams.generate.validation import Problem


class JudgeUnavailable(Exception):
    """The pair could not be scored (the embedding backend failed after its retries)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class Judgement:
    scores: dict[str, Any]  # anchor_positive, anchor_negative, margin, model
    problems: list[Problem] = field(default_factory=list)  # empty: the pair passes
    vectors: Any = None  # unit vectors of anchor, positive[, negative], for the miner

    @property
    def quality(self) -> dict[str, Any]:
        """The record's `quality` object (schemas.Quality)."""
        return {**self.scores, "verdict": "fail" if self.problems else "pass",
                "problems": [p.kind for p in self.problems]}

    @property
    def rank(self) -> tuple:
        """Smaller is better: fewer problems, then the LLM judge's belief that the positive keeps the anchor's
        meaning and the negative does not (when one was asked), then a wider margin (or a closer positive
        without a negative). The judge comes before the margin because a cosine cannot see an invented place
        or a swapped role (issue 24); it breaks ties between candidates that all pass."""
        margin = self.scores.get("margin")
        keeps = self.scores.get("judge_positive")
        true_of_anchor = self.scores.get("judge_negative")
        belief = (keeps if keeps is not None else 1.0) - (true_of_anchor if true_of_anchor is not None else 0.0)
        return len(self.problems), -round(belief, 2), -(margin if margin is not None else self.scores["anchor_positive"])


Judge = Callable[[AnchorRequest, str, str | None], Awaitable[Judgement]]
# (record id, anchor, positive, negative, vectors) -> mined negatives as `schemas.MinedNegative` dicts
Miner = Callable[[str, str, str, str | None, Any], Awaitable[list[dict]]]


@dataclass
class Candidate:
    positive: str
    negative: str | None
    judgement: Judgement

    def record(self) -> dict[str, Any]:
        return {"positive": self.positive, "negative": self.negative, "quality": self.judgement.quality}
