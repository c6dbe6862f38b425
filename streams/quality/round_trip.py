"""Round-trip consistency (Promptagator, InPars): a positive must find its own anchor first.

A generated positive is a query for its anchor. Among the stream's recent sentences (the mining window:
anchors and positives of the records this worker delivered) plus its own anchor, the positive must be
closer to its anchor than to any sentence of another record; otherwise it says something another record
says better, and a contrastive loss would be taught to prefer the wrong sentence. The search is the
mining window's one matrix product, with the vectors the gate already computed.

Sentences of another record that are near-duplicates of this anchor (cosine >= `max_duplicate`, or the
same text folded) are skipped: a stream repeats sentences ("A man is playing a guitar."), and a good
positive of one copy is rightly as close to the other. With an empty window (a cold start) the check
passes everything.

The problem names the other record by its id and the cosine, never by its text: the message goes into this
anchor's dead letter, and another record's sentence has no place there (nor in a re-ask, whose note is fixed:
`streams.generate.reask.REASK_NOTES`).
"""

import numpy as np

from streams.generate.validation import Problem
from streams.quality.checks import plain_text
from streams.quality.mining import SentenceWindow


def round_trip_problem(window: SentenceWindow, record_id: str, anchor: str, vectors: np.ndarray,
                       max_duplicate: float = 0.95) -> Problem | None:
    """`vectors`: unit vectors of anchor and positive (first two rows), as the gate computed them."""
    scores = window.scores(vectors[:2])
    if scores.shape[1] == 0:
        return None
    own = float(vectors[0] @ vectors[1])
    to_anchor, to_positive = scores[0], scores[1]
    key = plain_text(anchor)
    others = np.flatnonzero(to_anchor < max_duplicate)  # too old: -inf, so kept here, and never the best
    best_slot, best = None, -np.inf
    for slot in others[np.argsort(-to_positive[others], kind="stable")]:
        if to_positive[slot] <= own:
            break
        if window.record_ids[slot] != record_id and window.keys[slot] != key:
            best_slot, best = slot, float(to_positive[slot])
            break
    if best_slot is None:
        return None
    return Problem("round_trip", f"the positive is closer to a sentence of record {window.record_ids[best_slot]!r} "
                                 f"(cosine {best:.2f}) than to its anchor ({own:.2f}); it must say what the anchor "
                                 "says")
