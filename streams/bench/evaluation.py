"""How well the quality gate's checks agree with readers: precision and recall on a labelled set.

A labelled set holds real generated records and what a reader found in each, with the rubric of issue
24 (`tests/data/judge/README.md`). Every record is judged again by the gate as it is now (the same
`EmbeddingJudge`, the in-process model), and each check is compared with the defects it exists to find:

- precision: of the records the check refuses, the share whose sentence in the check's role (the
  positive, or the negative) a reader found defective in any way (a refusal of a bad sentence is right
  whatever the defect);
- recall: of the records a reader found with the check's own defects, the share the check refuses.

Readers' labels are the truth here, embedding scores are not. Gold pairs of STS-B train, when given, add
what a labelled set of a small model's output cannot show: how many real paraphrases (score >= 4.6) each
positive check would refuse.

Benchmark code, not the gate's: `pairstream bench --judge` (`judge_eval`) and the labelled-set tests run it.
"""

import asyncio
import csv
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

from streams.generate.task import TaskSpec
from streams.quality.mining import SentenceWindow

# What each check is for: its role and the readers' labels it should find.
TARGETS: dict[str, tuple[str, frozenset[str]]] = {
    "near_copy": ("positive", frozenset({"copy"})),
    "off_topic": ("positive", frozenset({"off_topic"})),
    "invented": ("positive", frozenset({"meaning_changed", "off_topic"})),
    "false_negative": ("negative", frozenset({"false_negative"})),
    "entailed_negative": ("negative", frozenset({"false_negative"})),
    "easy_negative": ("negative", frozenset()),
    "repetition": ("either", frozenset({"repetition"})),
    "degenerate": ("either", frozenset({"repetition"})),
    "fragment": ("either", frozenset({"fragment", "fragment_or_ungrammatical"})),
    "example_leak": ("either", frozenset()),
    "round_trip": ("positive", frozenset({"meaning_changed", "off_topic"})),
    # second opinions, when configured (PAIRSTREAM_REVIEW_*): every defect of their role
    "rerank_positive": ("positive", frozenset({"meaning_changed", "off_topic", "copy"})),
    "rerank_negative": ("negative", frozenset({"false_negative"})),
    "llm_judge_positive": ("positive", frozenset({"copy", "meaning_changed", "off_topic", "fragment_or_ungrammatical",
                                                  "repetition"})),
    "llm_judge_negative": ("negative", frozenset({"false_negative", "nonsense_or_ungrammatical", "fragment",
                                                  "repetition"})),
}
REVIEWS = ("rerank_positive", "rerank_negative", "llm_judge_positive", "llm_judge_negative")
OK = frozenset({"ok", "none"})


@dataclass
class CheckFigures:
    refused: int = 0
    refused_bad: int = 0  # refused, and the role's sentence is defective
    target: int = 0  # records with one of the check's defects
    target_refused: int = 0

    @property
    def precision(self) -> float | None:
        return self.refused_bad / self.refused if self.refused else None

    @property
    def recall(self) -> float | None:
        return self.target_refused / self.target if self.target else None


@dataclass
class Evaluation:
    records: int = 0
    checks: dict[str, CheckFigures] = field(default_factory=dict)
    passed: int = 0
    passed_usable: int = 0
    usable: int = 0
    refused_usable: int = 0
    gold: dict[str, float] = field(default_factory=dict)  # check -> share of gold paraphrases refused
    gold_pairs: int = 0
    gold_passed: float | None = None
    reviewed: tuple[str, ...] = ()  # the second opinions configured (`rerank`, `llm_judge`)


def load_labelled(path: Path, anchors_file: Path) -> list[dict[str, Any]]:
    """The labelled records, each with its anchor read from `anchors_file` by line number."""
    lines = anchors_file.read_text(encoding="utf-8").splitlines()
    rows = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    for row in rows:
        row["anchor"] = lines[row["line"] - 1].strip()
    return rows


def gold_paraphrases(train_tsv: Path, n: int = 300, min_score: float = 4.6) -> list[tuple[str, str]]:
    with open(train_tsv, encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE) if float(r["score"]) >= min_score]
    return [(r["sentence1"], r["sentence2"]) for r in rows[:n]]


def bad(label: dict[str, str], role: str) -> bool:
    if role == "either":
        return label["positive"] not in OK or label["negative"] not in OK
    return label[role] not in OK


def has_target(label: dict[str, str], role: str, targets: frozenset[str]) -> bool:
    roles = ("positive", "negative") if role == "either" else (role,)
    return any(label[r] in targets for r in roles)


async def judge_all(judge, items: list[tuple[str, str, str | None, TaskSpec]],
                    round_trip: bool = False) -> list[list[str]]:
    """The problem kinds the gate finds in each (anchor, positive, negative, spec), judged concurrently as in
    the worker (micro-batched). With `round_trip`, the stream's window holds the other items' anchors, as a
    worker's would hold the anchors of the records before."""
    judge.window = None
    if round_trip:
        judge.window = SentenceWindow(len(items), float("inf"))
        anchors = [item[0] for item in items]
        judge.window.add_each([str(i) for i in range(len(items))], anchors, await judge.embedder.embed(anchors))

    async def one(i, anchor, positive, negative, spec):
        judgement = await judge(SimpleNamespace(id=str(i), anchor=anchor, spec=spec), positive, negative)
        return [p.kind for p in judgement.problems]
    return await asyncio.gather(*(one(i, *item) for i, item in enumerate(items)))


async def evaluate(judge, rows: list[dict[str, Any]], gold: list[tuple[str, str]] = (),
                   round_trip: bool = False) -> Evaluation:
    items = [(r["anchor"], r["positive"], r["negative"],
              TaskSpec(r["action"], r["triplet"], r["hard_negative"], None)) for r in rows]
    found = await judge_all(judge, items, round_trip)
    ev = Evaluation(records=len(rows), checks={name: CheckFigures() for name in TARGETS},
                    reviewed=tuple(r.name for r in getattr(judge, "reviewers", ())))
    for row, kinds in zip(rows, found):
        label = row["label"]
        usable = label["positive"] in OK and label["negative"] in OK
        ev.usable += usable
        if kinds:
            ev.refused_usable += usable
        else:
            ev.passed += 1
            ev.passed_usable += usable
        for name, (role, targets) in TARGETS.items():
            figures = ev.checks[name]
            refused = name in kinds
            figures.refused += refused
            figures.refused_bad += refused and bad(label, role)
            if has_target(label, role, targets):
                figures.target += 1
                figures.target_refused += refused
    if gold:
        spec = TaskSpec("paraphrase", False, False, None)
        found = await judge_all(judge, [(a, p, None, spec) for a, p in gold], round_trip)
        ev.gold_pairs = len(gold)
        ev.gold = {name: sum(name in kinds for kinds in found) / len(gold) for name in TARGETS}
        ev.gold_passed = sum(not kinds for kinds in found) / len(gold)
    return ev


def share(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def table(ev: Evaluation) -> list[str]:
    gold = " gold paraphrases refused" if ev.gold_pairs else ""
    lines = [f"{ev.records} labelled records; usable by the readers: {ev.usable}",
             f"the gate passes {ev.passed}; of them usable: {ev.passed_usable}; usable records refused: "
             f"{ev.refused_usable}", "",
             f"{'check':<18} {'refused':>7} {'precision':>9} {'target':>6} {'recall':>6}{gold}"]
    for name, f in ev.checks.items():
        if name in REVIEWS and not any(name.startswith(r) for r in ev.reviewed):
            continue  # that reviewer is not configured
        row = f"{name:<18} {f.refused:>7} {share(f.precision):>9} {f.target:>6} {share(f.recall):>6}"
        if ev.gold_pairs:
            row += f" {ev.gold[name]:>8.2f}"
        lines.append(row)
    if ev.gold_pairs:
        lines.append(f"\n{ev.gold_pairs} gold paraphrases (STS-B train, score >= 4.6) as positives: the gate passes "
                     f"{ev.gold_passed:.2f}")
    return lines
