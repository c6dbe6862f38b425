"""Token-level alignment on the in-process model: an invented place or object is found where the pooled cosine
stays high, and a negative that only restates the anchor is found to be entailed (issue 24)."""

import pytest

from streams.quality.alignment import alignment_review
from streams.quality.local_minilm import LocalMiniLM


@pytest.fixture(scope="module")
def model():
    return LocalMiniLM()


def kinds(model, anchor, positive, negative=None):
    model.embed_sync([anchor, positive] + ([negative] if negative else []))
    tv = model.token_vectors
    found, _ = alignment_review(tv(anchor), tv(positive), tv(negative) if negative else None,
                                min_token_match=0.3, max_negative_containment=0.6)
    return [p.kind for p in found]


@pytest.mark.parametrize("anchor, positive", [
    ("Two little girls talk on the telephone.", "On the stage, two little girls are having a conversation."),
    ("A man is riding an electric bicycle.", "A man is riding an electric bicycle on the beach."),
    ("A dog runs in the grass.", "A dog runs in the grass near the lighthouse."),
])
def test_an_invented_place_or_object_is_found(model, anchor, positive):
    vectors = model.embed_sync([anchor, positive])
    assert float(vectors[0] @ vectors[1]) > 0.6  # the pooled cosine does not see it
    assert "invented" in kinds(model, anchor, positive)


@pytest.mark.parametrize("anchor, positive", [
    ("A man is playing a guitar.", "A guy is playing a guitar."),
    ("The cat sat on the mat.", "On the mat, the cat sat."),
])
def test_a_faithful_rewording_is_not_invented(model, anchor, positive):
    assert "invented" not in kinds(model, anchor, positive)


def test_a_negative_that_restates_the_anchor_is_entailed_and_a_different_one_is_not(model):
    anchor = "A man is riding an electric bicycle."
    assert "entailed_negative" in kinds(model, anchor, "A man is riding a bicycle.", "A man is riding a bicycle.")
    assert "entailed_negative" not in kinds(model, anchor, "A man is riding a bicycle.",
                                            "A woman is baking bread in the kitchen.")


def test_token_vectors_are_kept_for_recent_texts_only(model):
    model.tokens.size = 2
    try:
        model.embed_sync(["one text", "two text", "three text"])
        assert model.token_vectors("one text") is None and model.token_vectors("three text") is not None
    finally:
        model.tokens.size = 4096


def test_what_it_cannot_see_a_swapped_role_or_an_object_that_fits_the_scene(model):
    """Measured limits, kept in view: a role swap reuses the anchor's own words, and an object that fits the
    scene ("sword" beside "slicing") keeps a token match above the threshold; the readers' labels put the
    check's recall at 0.58 of meaning-changed positives."""
    assert kinds(model, "A man is firing a rifle.", "A man is shot with his rifle.") == []
    assert kinds(model, "A woman is slicing an onion.", "A woman is slicing an onion with a sword.") == []


# The model's wordpieces are English: a Cyrillic word is cut into single letters and most CJK characters are unknown
# ([UNK]), so a letter the anchor happens not to have made a correct paraphrase "invented", and a negative made of
# the anchor's letters "entailed". Token alignment does not judge such texts (the other checks do).
@pytest.mark.parametrize("anchor, positive", [
    ("Мужчина играет на гитаре на улице.", "На улице мужчина играет на гитаре."),
    ("Мужчина играет на гитаре на улице.", "На улице мужчина исполняет музыку на гитаре."),
    ("Мужчина играет на гитаре на улице.", "Какой-то человек исполняет мелодию на гитаре прямо на улице."),
    ("一个男人在街上弹吉他。", "街上有一个男人在弹吉他。"),
    ("一个男人在街上弹吉他。", "有个人在马路上弹吉他。"),
])
def test_a_correct_paraphrase_in_another_script_is_not_invented(model, anchor, positive):
    assert kinds(model, anchor, positive) == []


def test_alignment_says_it_cannot_read_another_script(model):
    from streams.quality.alignment import alignment_review

    anchor, positive, negative = ("Мужчина играет на гитаре на улице.", "На улице мужчина играет на гитаре.",
                                  "Женщина готовит ужин на кухне.")
    model.embed_sync([anchor, positive, negative])
    tv = model.token_vectors
    problems, abstained = alignment_review(tv(anchor), tv(positive), tv(negative), min_token_match=0.3,
                                           max_negative_containment=0.6)
    assert problems == [] and [a.check for a in abstained] == ["invented", "entailed_negative"]
    assert all("cyrillic" in a.reason for a in abstained)
    english = "A man is riding an electric bicycle.", "A man is riding an electric bicycle on the beach."
    model.embed_sync(list(english))
    problems, abstained = alignment_review(tv(english[0]), tv(english[1]), None, min_token_match=0.3,
                                           max_negative_containment=0.6)
    assert [p.kind for p in problems] == ["invented"] and abstained == []
