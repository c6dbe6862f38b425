"""The STS Benchmark train split, cut in two for the downstream benchmark: anchors to generate from, and
held-out labelled pairs to evaluate on, with no evaluation sentence among the anchors.

A pair goes to evaluation when a hash of its two sentences says so (a fixed 20%), so the split is the
same on every machine and does not depend on the file's order. Every sentence of an evaluation pair is
then kept out of the generation side: the anchors, and the gold pairs (real paraphrases, score >= 4, the
control that shows what human-written positives give), are both drawn only from pairs neither of whose
sentences is evaluated.
"""

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pair:
    sentence1: str
    sentence2: str
    score: float


@dataclass(frozen=True)
class Split:
    anchors: list[str]  # distinct sentences, in a fixed pseudo-random order
    eval_pairs: list[Pair]
    gold_pairs: list[Pair]  # score >= 4, both sentences on the generation side


def read_pairs(path: Path) -> list[Pair]:
    with open(path, encoding="utf-8", newline="") as f:
        return [Pair(r["sentence1"].strip(), r["sentence2"].strip(), float(r["score"]))
                for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)]


def _bucket(*texts: str) -> int:
    return int.from_bytes(hashlib.sha256("\x1f".join(texts).encode()).digest()[:4], "big")


def split(pairs: list[Pair], eval_share: float = 0.2, gold_min_score: float = 4.0) -> Split:
    cut = int(eval_share * 2**32)
    eval_pairs = [p for p in pairs if _bucket(p.sentence1, p.sentence2) < cut]
    held = {s for p in eval_pairs for s in (p.sentence1, p.sentence2)}
    rest = [p for p in pairs if p.sentence1 not in held and p.sentence2 not in held]
    anchors = sorted({s for p in rest for s in (p.sentence1, p.sentence2)}, key=lambda s: (_bucket(s), s))
    gold = [p for p in rest if p.score >= gold_min_score]
    order = lambda p: (_bucket(p.sentence1, p.sentence2), p.sentence1, p.sentence2, p.score)  # noqa: E731
    return Split(anchors, sorted(eval_pairs, key=order), sorted(gold, key=order))
