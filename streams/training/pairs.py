"""Labelled sentence pairs for `pairstream evaluate`: GLUE's STS-B TSV, CSV, or JSONL, each with `sentence1`,
`sentence2` and `score` (0-5 in STS-B; any scale works for Spearman and Pearson)."""

import csv
import math
from pathlib import Path

import orjson

from streams.training.stsb import Pair

COLUMNS = ("sentence1", "sentence2", "score")


class PairsError(ValueError):
    """The pairs file cannot be used; `str()` is one line naming the file and what is wrong (exit 2)."""


def read_labelled_pairs(path: Path) -> list[Pair]:
    if not path.is_file():
        raise PairsError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            rows = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
            columns = set().union(*(r.keys() for r in rows if isinstance(r, dict))) if rows else set()
        elif suffix in (".tsv", ".csv"):
            with open(path, encoding="utf-8", newline="") as f:
                reader = csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ",",
                                        quoting=csv.QUOTE_NONE if suffix == ".tsv" else csv.QUOTE_MINIMAL)
                rows = list(reader)
                columns = set(reader.fieldnames or ())
        else:
            raise PairsError(f"{path}: unknown format {suffix or '(none)'}; use .tsv, .csv or .jsonl")
    except (orjson.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
        raise PairsError(f"{path}: cannot read it ({exc})") from None
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise PairsError(f"{path}: no {', '.join(missing)} column (needs {', '.join(COLUMNS)})")
    pairs = []
    for n, row in enumerate(rows, 1):
        try:
            score = float(row["score"])
            s1, s2 = str(row["sentence1"]).strip(), str(row["sentence2"]).strip()
        except (TypeError, ValueError, KeyError):
            raise PairsError(f"{path}: row {n} has no numeric score ({row.get('score')!r})") from None
        if not math.isfinite(score):
            raise PairsError(f"{path}: row {n} has no numeric score ({row.get('score')!r})")
        if s1 and s2:
            pairs.append(Pair(s1, s2, score))
    if len(pairs) < 2:
        raise PairsError(f"{path}: {len(pairs)} usable pairs; at least 2 are needed")
    return pairs
