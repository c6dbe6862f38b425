"""Running figures of a dataset: records, models, score histograms, negatives per row, dead letters by reason.
Kept by the sink as records are added (so the dataset card never re-reads the shards) and
rebuilt exactly from the shards by `pairstream report`; both go through `add()`, so they agree.

Cosines are counted in 0.01-wide bins over [-1, 1]; margins (a difference of two cosines) in 0.02-wide bins
over [-2, 2]: quantiles are exact to the bin.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

BINS = 200
SCORES = ("anchor_positive", "anchor_negative", "margin", "mined")  # `mined`: every mined negative's score
RANGES = {"margin": 2.0}  # half-width of a score's range; cosines: 1
BINS_VERSION = 2  # 1: margins squeezed into [-1, 1] like cosines


def bin_of(value: float, half: float = 1.0) -> int:
    return min(BINS - 1, max(0, int((value + half) / (2 * half) * BINS)))


def bin_centre(index: int, half: float = 1.0) -> float:
    return -half + (index + 0.5) * 2 * half / BINS


def dead_letter_reason(record: dict[str, Any]) -> str:
    """How the figures name a dead letter's reason: "stage: error type"."""
    return f"{record.get('stage')}: {(record.get('error') or {}).get('type')}"


@dataclass
class Tally:
    triplets: int = 0  # records with a negative or not; one per record id
    dead_letters: int = 0
    dead_letters_kept: bool = False  # the sink writes dead letters too (--dead-letters): the yield is known
    superseded: int = 0  # dead letters whose anchor later became a triplet (counted as that triplet only)
    models: Counter = field(default_factory=Counter)  # generation model_name
    embedding_models: Counter = field(default_factory=Counter)
    verdicts: Counter = field(default_factory=Counter)
    problems: Counter = field(default_factory=Counter)  # quality problems of delivered (flagged) records
    negatives: Counter = field(default_factory=Counter)  # negatives per record (the LLM's + mined), as str keys
    mined: Counter = field(default_factory=Counter)  # mined negatives per record
    rejections: Counter = field(default_factory=Counter)  # dead letters by "stage: error type"
    histograms: dict[str, list[int]] = field(default_factory=lambda: {s: [0] * BINS for s in SCORES})

    def add(self, record: dict[str, Any], *, dead_letter: bool = False) -> None:
        if dead_letter:
            self.dead_letters += 1
            self.rejections[dead_letter_reason(record)] += 1
            return
        self.triplets += 1
        self.models[str(record.get("model_name"))] += 1
        mined = record.get("mined_negatives") or []
        self.mined[str(len(mined))] += 1
        self.negatives[str(len(mined) + (record.get("negative") is not None))] += 1
        quality = record.get("quality") or {}
        if quality:
            self.embedding_models[str(quality.get("model"))] += 1
            self.verdicts[str(quality.get("verdict"))] += 1
            self.problems.update(quality.get("problems") or [])
        for name in SCORES[:3]:
            if quality.get(name) is not None:
                self.histograms[name][bin_of(quality[name], RANGES.get(name, 1.0))] += 1
        for m in mined:
            self.histograms["mined"][bin_of(m["score"])] += 1

    def supersede(self, reason: str) -> None:
        """A dead letter (of `reason`) already counted turned out to have a triplet: count the anchor once."""
        self.dead_letters -= 1
        self.rejections[reason] -= 1
        self.superseded += 1

    def merge(self, other: "Tally") -> None:
        self.triplets += other.triplets
        self.dead_letters += other.dead_letters
        self.superseded += other.superseded
        self.dead_letters_kept = self.dead_letters_kept or other.dead_letters_kept
        for name in ("models", "embedding_models", "verdicts", "problems", "negatives", "mined",
                     "rejections"):
            getattr(self, name).update(getattr(other, name))
        self.rejections = +self.rejections  # a reason whose every dead letter was superseded goes
        for name in SCORES:
            self.histograms[name] = [a + b for a, b in zip(self.histograms[name], other.histograms[name])]

    def to_json(self) -> dict[str, Any]:
        return {**{k: (dict(v) if isinstance(v, Counter) else v) for k, v in self.__dict__.items()},
                "bins_version": BINS_VERSION}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Tally":
        tally = cls()
        for key, value in data.items():
            current = getattr(tally, key, None)
            if isinstance(current, Counter):
                setattr(tally, key, Counter(value))
            elif key == "histograms":
                tally.histograms.update(value)
            elif current is not None:
                setattr(tally, key, value)
        if data.get("bins_version", 1) < 2:  # margins were binned like cosines: move each bin to its value's bin
            old, tally.histograms["margin"] = tally.histograms["margin"], [0] * BINS
            for i, count in enumerate(old):
                tally.histograms["margin"][bin_of(bin_centre(i), RANGES["margin"])] += count
        return tally

    # -- figures ---------------------------------------------------------------------------------------------
    def count(self, score: str) -> int:
        return sum(self.histograms[score])

    def quantile(self, score: str, q: float) -> float | None:
        """The q-quantile of a score, to the bin."""
        counts, half = self.histograms[score], RANGES.get(score, 1.0)
        total = sum(counts)
        if not total:
            return None
        target, seen = q * (total - 1), 0
        for i, c in enumerate(counts):
            seen += c
            if seen > target:
                return round(bin_centre(i, half), 3)
        return round(bin_centre(BINS - 1, half), 3)

    def share_below(self, score: str, value: float) -> float | None:
        counts = self.histograms[score]
        total = sum(counts)
        return None if not total else sum(counts[:bin_of(value, RANGES.get(score, 1.0))]) / total

    @property
    def yield_(self) -> float | None:
        """Triplets per anchor accounted for (None unless dead letters are kept too: unknown)."""
        total = self.triplets + self.dead_letters
        return self.triplets / total if total and self.dead_letters_kept else None
