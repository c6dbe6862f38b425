"""`pairstream bench --downstream`: does a model trained on pairstream's data get better, against controls of the
same size trained with the same recipe?

Data, from `../shared/data/stsb_train.tsv` cut by `stsb.split` (no evaluation sentence among the anchors):
- *pairstream*: the first N anchors of the split generated on the embedded default (`pairstream demo`, gate
  on), loaded from the dataset directory as a user would (`--config pairs`: anchor, positive);
- *gate off*: the same anchors generated with `PAIRSTREAM_QUALITY=off`, as many rows as pairstream delivered,
  the same anchors first;
- *gold*: as many real paraphrases (STS-B train pairs scoring >= 4, generation side);
- *copies*: each delivered anchor paired with itself (what no information gives);
- *base*: the student untrained.
Every arm trains on (anchor, positive) pairs with MultipleNegativesRankingLoss, no duplicate texts in a
batch, the same epochs, batch and learning rate, for each seed; evaluated on the held-out pairs (Spearman
of cosine; MRR@10 of retrieval). Two students: all-MiniLM-L6-v2 (strong: a few hundred rows barely move
it) and a static embedding from MiniLM's token vectors (weak: it moves, but rewards shared words).
"""

import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from streams.training import models
from streams.training.evaluation import Scores, evaluate
from streams.training.stsb import Split, read_pairs, split
from streams.training.trainer import Recipe, fit, load_training_data

SHARED_TRAIN = Path("../shared/data/stsb_train.tsv")
ARMS = ("base", "copies", "gate off", "pairstream", "gold")


@dataclass
class Student:
    name: str
    model: str
    lr: float


STUDENTS = (Student("all-MiniLM-L6-v2", models.BUNDLED, 5e-5), Student("static (MiniLM tokens)", models.STATIC, 1e-2))


@dataclass
class Result:
    student: str
    arm: str
    seed: int
    rows: int
    scores: Scores


@dataclass
class Downstream:
    anchors: int
    delivered: int
    eval_pairs: int
    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    def mean(self, student: str, arm: str, metric: str) -> tuple[float, float]:
        """Mean over seeds, and the spread (max - min)."""
        values = [getattr(r.scores, metric) for r in self.results if r.student == student and r.arm == arm]
        return statistics.fmean(values), max(values) - min(values)


def generate(anchors: list[str], out: Path, quality: str, timeout: float, log: Callable[[str], None]) -> Path:
    """The embedded default over `anchors` into `out` (reused if it already holds every anchor's outcome)."""
    from streams.local.demo import run_demo
    from streams.settings import Settings

    if (out / "manifest.json").is_file():
        log(f"reusing {out}")
        return out
    previous = os.environ.get("PAIRSTREAM_QUALITY")
    os.environ["PAIRSTREAM_QUALITY"] = quality
    try:
        result = run_demo(Settings(), [(None, a.encode()) for a in anchors], out_dir=out, timeout=timeout, log=log)
    finally:
        if previous is None:
            os.environ.pop("PAIRSTREAM_QUALITY", None)
        else:
            os.environ["PAIRSTREAM_QUALITY"] = previous
    log(result.summary())
    return out


def pairs_dataset(anchors: list[str], positives: list[str]):
    from datasets import Dataset

    return Dataset.from_dict({"anchor": anchors, "positive": positives})


def arm_data(s: Split, gate_dir: Path, off_dir: Path | None):
    """Training data of each arm, all with as many rows as pairstream delivered."""
    pairstream, _ = load_training_data(gate_dir, "pairs")
    n = len(pairstream)
    anchors = list(pairstream["anchor"])
    arms = {"pairstream": pairstream, "copies": pairs_dataset(anchors, anchors),
            "gold": pairs_dataset([p.sentence1 for p in s.gold_pairs[:n]], [p.sentence2 for p in s.gold_pairs[:n]])}
    if off_dir is not None:
        off, _ = load_training_data(off_dir, "pairs")
        delivered = set(anchors)
        order = sorted(range(len(off)), key=lambda i: off[i]["anchor"] not in delivered)[:n]  # same anchors first
        arms["gate off"] = off.select(order)
    return arms


def run(n_anchors: int = 1000, workdir: Path = Path("bench-downstream"), seeds: tuple[int, ...] = (12, 13),
        epochs: float = 3, batch_size: int = 32, gate_dir: Path | None = None, off_dir: Path | None = None,
        timeout: float = 10800, log: Callable[[str], None] = print, train_tsv: Path = SHARED_TRAIN,
        with_gate_off: bool = True, max_eval_pairs: int | None = None) -> Downstream:
    started = time.monotonic()
    s = split(read_pairs(train_tsv))
    if max_eval_pairs is not None:  # a quick run (tests)
        s = Split(s.anchors, s.eval_pairs[:max_eval_pairs], s.gold_pairs)
    anchors = s.anchors[:n_anchors]
    gate_dir = gate_dir or generate(anchors, workdir / "gate", "gate", timeout, log)
    if off_dir is None and with_gate_off:
        off_dir = generate(anchors, workdir / "off", "off", timeout, log)
    arms = arm_data(s, gate_dir, off_dir)
    out = Downstream(anchors=n_anchors, delivered=len(arms["pairstream"]), eval_pairs=len(s.eval_pairs))
    for student in STUDENTS:
        base = evaluate(models.load(student.model), s.eval_pairs)
        out.results += [Result(student.name, "base", seed, 0, base) for seed in seeds]
        for arm, data in arms.items():
            for seed in seeds:
                model = models.load(student.model, seed=seed)
                recipe = Recipe(base=student.model, epochs=epochs, batch_size=batch_size, lr=student.lr, seed=seed)
                fit(model, data, recipe)
                scores = evaluate(model, s.eval_pairs)
                out.results.append(Result(student.name, arm, seed, len(data), scores))
                log(f"{student.name} {arm} seed {seed}: spearman {scores.spearman:.4f} MRR@10 {scores.mrr_at_10:.4f}")
    out.seconds = round(time.monotonic() - started, 1)
    return out


def table(d: Downstream) -> list[str]:
    seeds = len({r.seed for r in d.results})
    lines = [f"downstream: {d.anchors} anchors -> {d.delivered} delivered records; every arm {d.delivered} rows "
             f"(anchor, positive), MNRL; held-out STS-B pairs: {d.eval_pairs}; mean of {seeds} seed(s) "
             f"(spread max-min in brackets)", "",
             f"{'student':<24} {'arm':<11} {'spearman':>17} {'MRR@10':>17}"]
    for student in dict.fromkeys(r.student for r in d.results):
        for arm in ARMS:
            if not any(r.student == student and r.arm == arm for r in d.results):
                continue
            sp, sp_spread = d.mean(student, arm, "spearman")
            mrr, mrr_spread = d.mean(student, arm, "mrr_at_10")
            lines.append(f"{student:<24} {arm:<11} {sp:>9.4f} ({sp_spread:.4f}) {mrr:>9.4f} ({mrr_spread:.4f})")
        (copies, copies_spread), (gold, gold_spread) = (d.mean(student, a, "mrr_at_10") for a in ("copies", "gold"))
        ours = d.mean(student, "pairstream", "mrr_at_10")[0]
        if gold - copies > max(copies_spread, gold_spread):
            lines.append(f"{'':<24} pairstream's MRR@10 is {(ours - copies) / (gold - copies):.0%} of the way from "
                         "copies to gold")
        else:  # a share of a gap smaller than the seeds' own spread says nothing
            lines.append(f"{'':<24} copies and gold tie on MRR@10 within the seeds' spread ({copies:.4f} vs "
                         f"{gold:.4f}): no room to place pairstream")
    lines.append(f"\n{d.seconds:.0f} s")
    return lines


def as_json(d: Downstream) -> str:
    return json.dumps({"anchors": d.anchors, "delivered": d.delivered, "eval_pairs": d.eval_pairs,
                       "seconds": d.seconds,
                       "results": [{"student": r.student, "arm": r.arm, "seed": r.seed, "rows": r.rows,
                                    **r.scores.as_dict()} for r in d.results]}, indent=2)
