"""Token-level alignment of a generated pair (BERTScore's greedy matching, Zhang et al. 2020), from the
embedding model's own token vectors, before pooling.

A pooled cosine cannot see one invented word: "Two girls talk on the telephone." against "On the
stage, two girls are having a conversation." keeps a cosine of 0.8-0.9. Token by token it can:
every content token of a faithful positive has a close counterpart among the anchor's tokens, and an
invented one ("stage") has none. So:

- `invented`: some content token of the positive matches no token of the anchor (its best cosine is
  below `min_token_match`): something was added that the anchor does not say;
- `entailed_negative`: every content token of the negative matches one of the anchor's (the worst best
  cosine is at least `max_negative_containment`): the negative says nothing the anchor does not, so it is
  true of the anchor, or only a shorter restatement of it.

The model's wordpieces are English (all-MiniLM-L6-v2's uncased BERT vocabulary): a Cyrillic, Arabic or Greek word
is cut into single letters, and most CJK characters are unknown to it ([UNK]). Matching letters is no alignment (a
correct Russian paraphrase with one letter the anchor lacks looked "invented"), so where the anchor or the judged
sentence is not in Latin script these checks abstain (`Abstention`, with the script) and leave the pair to the
other checks.

Calibrated on the labelled records in `tests/data/judge/` and on STS-B train pairs (gold paraphrases
must mostly pass, gold unrelated pairs must never look entailed); the measured precision and recall are
in docs/quality.md. Only the in-process model exposes token vectors; with a remote
`/v1/embeddings` server these checks are skipped.
"""

import re
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from streams.generate.validation import Abstention, Problem
from streams.quality.form import FUNCTION_WORDS, english_readable, script

SPECIAL = frozenset({"[CLS]", "[SEP]", "[PAD]"})
WORDLIKE = re.compile(r"^(##)?\w")


@dataclass(frozen=True)
class TokenVectors:
    """A text's content tokens (wordpieces) and their unit vectors, in order."""

    tokens: tuple[str, ...]
    vectors: np.ndarray  # (tokens, dimensions), unit rows
    script: str | None = None  # of the text's letters (`form.script`); "UNKNOWN": mostly [UNK]; None: no letters

    @property
    def readable(self) -> bool:
        """Whether the model's English wordpieces can align this text."""
        return english_readable(self.script)


def script_of_tokens(tokens: list[str]) -> str | None:
    """The script of a text from its wordpieces: that of their letters, or UNKNOWN when most are [UNK]."""
    pieces = [t.removeprefix("##") for t in tokens if not (t.startswith("[") and t.endswith("]"))]
    unknown = sum(t == "[UNK]" for t in tokens)
    if unknown and unknown >= len(pieces):
        return "UNKNOWN"
    return script("".join(pieces))


def content_tokens(tokens: list[str], hidden: np.ndarray) -> TokenVectors:
    keep = [i for i, t in enumerate(tokens)
            if t not in SPECIAL and WORDLIKE.match(t) and t.removeprefix("##") not in FUNCTION_WORDS]
    vectors = hidden[keep].astype(np.float32)
    vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    return TokenVectors(tuple(tokens[i] for i in keep), vectors, script_of_tokens(tokens))


def worst_match(x: TokenVectors, y: TokenVectors) -> tuple[float, str]:
    """The lowest, over x's tokens, of each token's best cosine with y's tokens; and that token."""
    if not len(x.tokens):
        return 1.0, ""
    if not len(y.tokens):
        return 0.0, x.tokens[0]
    best = (x.vectors @ y.vectors.T).max(axis=1)
    i = int(best.argmin())
    return float(best[i]), x.tokens[i]


class TokenCache:
    """Token vectors of recently embedded texts, kept by the embedding model as it embeds them, so that the
    judge aligns a pair without running the model again. Bounded: the oldest go first."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._items: OrderedDict[str, TokenVectors] = OrderedDict()

    def put(self, text: str, value: TokenVectors) -> None:
        self._items[text] = value
        self._items.move_to_end(text)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def get(self, text: str) -> TokenVectors | None:
        return self._items.get(text)


def unreadable(check: str, *texts: tuple[str, TokenVectors]) -> Abstention | None:
    """An abstention of `check` when one of the (role, tokens) is not in a script the wordpieces can align."""
    for role, tv in texts:
        if not tv.readable:
            return Abstention(check, f"the {role} is in {tv.script.lower()} script, which the embedding model's "
                                     "English wordpieces cannot align token by token, so the check does not judge it")
    return None


def alignment_review(anchor: TokenVectors, positive: TokenVectors, negative: TokenVectors | None, *,
                     min_token_match: float, max_negative_containment: float
                     ) -> tuple[list[Problem], list[Abstention]]:
    """What the token alignment finds wrong, and the checks that abstained (a script they cannot align)."""
    found, abstained = [], []
    cannot = unreadable("invented", ("anchor", anchor), ("positive", positive))
    if cannot is not None:
        abstained.append(cannot)
    else:
        score, token = worst_match(positive, anchor)
        if score < min_token_match:
            found.append(Problem("invented", f"the positive says something the anchor does not "
                                             f"(\"{token.lstrip('#')}\" has no counterpart in it); say only what "
                                             "the anchor says"))
    if negative is not None and len(negative.tokens):
        cannot = unreadable("entailed_negative", ("anchor", anchor), ("negative", negative))
        if cannot is not None:
            abstained.append(cannot)
        else:
            score, _ = worst_match(negative, anchor)
            if score >= max_negative_containment:
                found.append(Problem("entailed_negative", "the negative only repeats what the anchor says, so it is "
                                                          "true of it; write something the anchor does not mean"))
    return found, abstained
