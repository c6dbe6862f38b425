"""`pairstream bench --judge FILE`: the quality gate's checks against readers' labels (precision, recall), and
against gold STS-B paraphrases (how many real paraphrases each check refuses). In process, no broker.

The STS-B files come from the directory `--judge-data` names: the labelled records hold line numbers of
`stsb_test_sentences.txt` (their anchors), and `stsb_train.tsv` adds the gold paraphrases when it is there.
"""

import asyncio
from pathlib import Path

import orjson

from streams.bench.evaluation import evaluate, gold_paraphrases, load_labelled, table
from streams.quality.judge import build_judge
from streams.settings import Settings

ANCHORS_FILE, GOLD_FILE = "stsb_test_sentences.txt", "stsb_train.tsv"


def judge_output(labelled: Path, data_dir: Path, as_json: bool = False) -> str:
    anchors, gold = data_dir / ANCHORS_FILE, data_dir / GOLD_FILE
    if not anchors.is_file():
        raise FileNotFoundError(f"--judge-data: no {ANCHORS_FILE} in {data_dir} (the labelled records' anchors, by "
                                "line number): give the directory of the STS-B files")
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
