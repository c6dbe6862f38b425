"""`pairstream bench --judge FILE`: the quality gate's checks against readers' labels (precision, recall), and
against gold STS-B paraphrases (how many real paraphrases each check refuses). In process, no broker."""

import asyncio
from pathlib import Path

import orjson

from streams.quality.evaluation import evaluate, gold_paraphrases, load_labelled, table
from streams.quality.judge import build_judge
from streams.settings import Settings

SHARED = Path("../shared/data")


def judge_output(labelled: Path, anchors: Path | None = None, gold: Path | None = None, as_json: bool = False) -> str:
    anchors = anchors or SHARED / "stsb_test_sentences.txt"
    gold = gold if gold is not None else SHARED / "stsb_train.tsv"
    rows = load_labelled(labelled, anchors)
    pairs = gold_paraphrases(gold) if gold.is_file() else []

    async def run():
        settings = Settings(quality="gate")
        judge = build_judge(settings)
        judge.review_every_pair = True  # second opinions (PAIRSTREAM_REVIEW_*) measured on every record
        try:
            return await evaluate(judge, rows, pairs, round_trip=settings.quality_round_trip)
        finally:
            await judge.aclose()

    ev = asyncio.run(run())
    if as_json:
        return orjson.dumps({"records": ev.records, "usable": ev.usable, "passed": ev.passed,
                             "passed_usable": ev.passed_usable, "gold_pairs": ev.gold_pairs,
                             "gold_passed": ev.gold_passed, "gold_refused": ev.gold,
                             "checks": {n: {"refused": f.refused, "precision": f.precision, "target": f.target,
                                            "recall": f.recall} for n, f in ev.checks.items()}},
                            option=orjson.OPT_INDENT_2).decode()
    return "\n".join(table(ev))
