"""Checks every generated pair must pass before it is produced as a triplet.

A small model's commonest failure is copying the anchor (or the prompt's worked
example) as its answer; these checks catch that so the generator can re-ask.
"""

import re
import unicodedata
from dataclasses import dataclass

_SPACE = re.compile(r"\s+")
_EDGE_PUNCT = " \t\n\"'“”‘’`.,;:!?()[]{}"


def normalise(text: str) -> str:
    """Compare sentences ignoring case, whitespace, Unicode form and edge punctuation."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return _SPACE.sub(" ", text).strip(_EDGE_PUNCT)


@dataclass(frozen=True)
class Problem:
    kind: str
    message: str


@dataclass(frozen=True)
class Abstention:
    """A check that could not judge a pair (it reads English words, the text is in another script): it neither
    passes nor refuses it; the other checks decide."""

    check: str  # the problem kind the check names when it refuses
    reason: str


def check_pair(anchor: str, positive: str, negative: str | None, *, want_negative: bool, max_chars: int,
               forbidden: tuple[str, ...] = ()) -> Problem | None:
    """The first problem with a generated pair, or None when it is a valid training example.

    `forbidden` are texts the model must not echo (the worked example of the prompt).
    """
    a = normalise(anchor)
    banned = {normalise(t) for t in forbidden}
    fields = [("positive", positive)] + ([("negative", negative)] if want_negative else [])
    for name, value in fields:
        if value is None or not normalise(value):
            return Problem(f"empty_{name}", f"{name} is empty")
        if len(value) > max_chars:
            return Problem(f"{name}_too_long", f"{name} has {len(value)} characters, more than {max_chars}")
        if normalise(value) == a:
            return Problem(f"{name}_copies_anchor", f"{name} is a copy of the anchor")
        if normalise(value) in banned:
            return Problem(f"{name}_copies_example", f"{name} is a copy of the prompt's example")
    if want_negative and normalise(negative or "") == normalise(positive):
        return Problem("negative_equals_positive", "negative is the same as the positive")
    return None
