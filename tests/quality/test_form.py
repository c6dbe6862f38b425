"""Form and degeneration checks on the defects the issue read in real records (issue 24)."""

import pytest

from streams.quality.form import compression_ratio, form_problems

ANCHOR = "The yard has a dog."
GUITAR = frozenset({"guitar", "stage", "sandcastle", "beach"})


@pytest.mark.parametrize("text, kind", [
    ("The dog has been in the yard, and the dog is in the dog.", "repetition"),
    ("The guitar player plays his guitar, and the man is engaged in playing the guitar on it.", "repetition"),
    ("This new sensor has been named the", "fragment"),
    ("A dog sits in the", "fragment"),
    ("Dog.", "fragment"),
    ("Two children are building a sandcastle at the beach.", "example_leak"),
    ("the dog the dog the dog the dog the dog the dog the dog the dog the dog the dog the dog", "degenerate"),
])
def test_each_defect_is_named(text, kind):
    assert kind in [p.kind for p in form_problems(ANCHOR, text, None, example_words=GUITAR)]


@pytest.mark.parametrize("text", ["A dog lives in the yard.", "There is a dog in the garden behind the house.",
                                  "The cat is sleeping on the couch."])
def test_fluent_sentences_pass(text):
    assert form_problems(ANCHOR, text, text, example_words=GUITAR) == []


def test_the_anchors_own_words_are_neither_repetition_nor_a_leak():
    anchor = "A man plays a guitar on a stage, then another guitar, then a third guitar."
    assert form_problems(anchor, "A guy plays three guitars, one guitar after another guitar, on a stage.", None,
                         example_words=GUITAR) == []


def test_a_search_query_needs_no_full_sentence():
    assert form_problems("The Eiffel Tower was finished in 1889.", "eiffel tower", None, query=True) == []


def test_compression_ratio_separates_loops_from_sentences():
    assert compression_ratio("A man is playing a guitar on stage.") < 1.5
    assert compression_ratio("the dog " * 20) > 2.4
