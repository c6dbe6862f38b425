"""The STS-B train split of the downstream benchmark: held-out pairs and anchors never share a sentence, gold
pairs come from the generation side only, and the split is the same whatever the file's order."""

import random

from streams.training.stsb import read_pairs, split
from support.training import STSB_TRAIN


def test_no_evaluation_sentence_is_an_anchor_or_in_a_gold_pair():
    s = split(read_pairs(STSB_TRAIN))
    held = {x for p in s.eval_pairs for x in (p.sentence1, p.sentence2)}
    assert len(s.eval_pairs) > 1000 and len(s.anchors) > 5000 and len(s.gold_pairs) > 1000
    assert not held & set(s.anchors)
    assert not held & {x for p in s.gold_pairs for x in (p.sentence1, p.sentence2)}
    assert all(p.score >= 4 for p in s.gold_pairs)


def test_the_split_does_not_depend_on_the_files_order():
    pairs = read_pairs(STSB_TRAIN)
    shuffled = pairs[:]
    random.Random(3).shuffle(shuffled)
    a, b = split(pairs), split(shuffled)
    assert a.anchors == b.anchors and set(a.eval_pairs) == set(b.eval_pairs) and a.gold_pairs == b.gold_pairs
