"""The note a re-ask adds to the anchor's turn, by the kind of problem the previous answer had.

Fixed sentences, never a check's own message: that may quote scores, words of the output, or a sentence of
another record of the stream, one that, written to the stream by anyone, would otherwise become instructions in
this anchor's prompt. Every kind the generator, the validator, the parser and the quality checks can name has
one (tests/generate/test_task.py).
"""

_REJECTED = "Note: your previous answer was rejected: "
REASK_NOTES: dict[str, str] = {
    # the generator and the parser
    "truncated": "Note: your previous answer was too long. Keep each sentence short.",
    "invalid_json": "Note: your previous answer was not valid JSON. Answer with the JSON object only.",
    "schema": "Note: your previous answer did not have the fields asked for. Follow the format exactly.",
    # the validator (streams.generate.validation)
    "empty_positive": "Note: your previous answer had no positive sentence. Write one.",
    "empty_negative": "Note: your previous answer had no negative sentence. Write one.",
    "positive_too_long": "Note: your previous answer's positive was too long. Write one short sentence.",
    "negative_too_long": "Note: your previous answer's negative was too long. Write one short sentence.",
    "positive_copies_anchor": "Note: your previous answer repeated the anchor. Write new sentences in different words.",
    "negative_copies_anchor": "Note: your previous answer repeated the anchor. Write new sentences in different words.",
    "positive_copies_example": "Note: your previous answer repeated the example. Write sentences about this anchor.",
    "negative_copies_example": "Note: your previous answer repeated the example. Write sentences about this anchor.",
    "negative_equals_positive": "Note: your previous answer's negative was the same as its positive. Write a negative "
                                "that means something else.",
    # the quality gate (streams.quality)
    "near_copy": _REJECTED + "the positive is nearly the anchor itself; rewrite it with different words.",
    "off_topic": _REJECTED + "the positive is off topic; it must mean the same as the anchor.",
    "invented": _REJECTED + "the positive says something the anchor does not; say only what the anchor says.",
    "round_trip": _REJECTED + "the positive is closer to other sentences than to the anchor; it must say what the "
                              "anchor says, and only that.",
    "repetition": _REJECTED + "it says the same thing more than once; say each thing once.",
    "degenerate": _REJECTED + "it loops; write one plain sentence.",
    "fragment": _REJECTED + "it is not a complete sentence; write a complete sentence.",
    "example_leak": _REJECTED + "it reuses the example's words, not the anchor's; write about the anchor only.",
    "false_negative": _REJECTED + "the negative is as close to the anchor as the positive; it must mean something "
                                  "else.",
    "easy_negative": _REJECTED + "the hard negative is unrelated; it should share words and structure with the "
                                 "anchor.",
    "entailed_negative": _REJECTED + "the negative only repeats what the anchor says, so it is true of it; write "
                                     "something the anchor does not mean.",
    "rerank_positive": _REJECTED + "a second judge finds the positive does not mean the same as the anchor; it must "
                                   "mean the same.",
    "rerank_negative": _REJECTED + "a second judge finds the negative too close to the anchor; it must mean something "
                                   "else.",
    "llm_judge_positive": _REJECTED + "a second judge finds the positive adds or drops something; say exactly what "
                                      "the anchor says.",
    "llm_judge_negative": _REJECTED + "a second judge finds the negative true of the anchor; write something the "
                                      "anchor does not mean.",
}
_OTHER = "Note: your previous answer was rejected. Follow the instructions and the format exactly."


def reask_note(kind: str) -> str:
    """The fixed note of a re-ask after a problem of this kind (a generic one for a kind without its own)."""
    return REASK_NOTES.get(kind, _OTHER)
