import pytest

from streams.generate.validation import check_pair, normalise


def check(anchor, positive, negative="Something else entirely.", want_negative=True, max_chars=100, forbidden=()):
    problem = check_pair(anchor, positive, negative, want_negative=want_negative, max_chars=max_chars,
                         forbidden=forbidden)
    return problem.kind if problem else None


def test_normalise_ignores_case_space_and_edge_punctuation():
    assert normalise("  The  Cat\tsat. ") == normalise('"the cat sat"') == "the cat sat"


def test_valid_triplet_passes():
    assert check("A cat sits on a mat.", "A kitten is sitting on a rug.") is None


@pytest.mark.parametrize("positive", ["A cat sits on a mat.", "a CAT sits   on a mat", " A cat sits on a mat!"])
def test_positive_copying_anchor_is_rejected(positive):
    assert check("A cat sits on a mat.", positive) == "positive_copies_anchor"


def test_empty_and_too_long_fields():
    assert check("A.", "   ") == "empty_positive"
    assert check("A.", "x" * 101) == "positive_too_long"
    assert check("A.", "Fine.", negative="") == "empty_negative"
    assert check("A.", "Fine.", negative=None) == "empty_negative"


def test_negative_must_differ_from_positive_and_anchor():
    assert check("A cat.", "A kitten.", negative="a kitten") == "negative_equals_positive"
    assert check("A cat.", "A kitten.", negative="A cat.") == "negative_copies_anchor"


def test_pair_mode_ignores_negative():
    assert check("A cat.", "A kitten.", negative=None, want_negative=False) is None


def test_copy_of_prompt_example_is_rejected():
    assert check("A cat.", "Example answer.", forbidden=("Example answer.",)) == "positive_copies_example"
