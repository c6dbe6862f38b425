"""The dataset card, DIR/README.md: Hugging Face front matter and the dataset's figures, rewritten with every
checkpoint from the running `Tally` (never by re-reading shards).

The front matter has one config per family present (`records`: full rows with ids, metadata and scores;
`triplet`, `mined-negatives`, `pairs`, ...: input columns only, the way sentence-transformers wants them),
so `load_dataset("DIR", "triplet")`, or the same after pushing DIR to the Hub, gives a training set.
YAML is written by hand: every string is JSON-quoted, which YAML reads as the same string.
"""

import json
from typing import Any

from streams.dataset.layouts import MAIN, config_name
from streams.dataset.tally import Tally

TAGS = ("sentence-transformers", "pairstream", "synthetic")
SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
         (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"))
ABOUT = {
    "records": "full records: id, anchor, positive, negative, mined_negatives with scores, model_name, quality, "
               "metadata, source (for audits and filtering, not for training as is)",
    "default": "the --columns layout",
    "triplet": "anchor, positive, negative (the LLM's negative)",
    "mined-negatives": "anchor, positive, negative_1 ... negative_k: negatives mined from the stream, hardest first",
    "pairs": "anchor, positive (rows without negatives; MultipleNegativesRankingLoss uses in-batch negatives)",
    "dead-letters": "anchors that could not become records, with the stage and the reason",
}


def q(text: Any) -> str:
    return json.dumps(str(text), ensure_ascii=False)


def size_category(rows: int) -> str:
    return next((name for bound, name in SIZES if rows < bound), "n>1T")


def describe(config: str) -> str:
    if config in ABOUT:
        return ABOUT[config]
    width = config.rsplit("-", 1)[-1]
    names = "negative_1" if width == "1" else f"negative_1 ... negative_{width}"
    return f"anchor, positive and only {width} negative(s), as {names}: rows with fewer negatives than asked"


def front_matter(families: dict[str, tuple[list[str], int]], full_records: bool, tally: Tally,
                 dataset_id: str) -> list[str]:
    """The YAML head. Each config lists its shard files rather than a glob, and its description names this
    directory's id: `datasets` caches a local directory's configs by their YAML alone, so with a glob a grown
    dataset (or another directory of the same name) would load from the stale cache of an earlier one."""
    configs = {config_name(f, full_records): (f, files) for f, (files, _) in families.items()}
    default = "triplet" if "triplet" in configs else config_name(MAIN, full_records)
    lines = ["---", 'pretty_name: "pairstream sentence pairs"',
             "license: other  # placeholder: the licence of your anchors and of the model outputs",
             'license_name: "unset"', "size_categories:", f"- {q(size_category(tally.triplets))}",
             "task_categories:", '- "sentence-similarity"', '- "feature-extraction"', "tags:"]
    lines += [f"- {q(t)}" for t in TAGS]
    if configs:
        lines.append("configs:")
    for name, (family, files) in sorted(configs.items(), key=lambda kv: (kv[0] != default, kv[0])):
        lines += [f"- config_name: {q(name)}"] + (["  default: true"] if name == default else [])
        lines += [f"  description: {q(describe(name) + f' (pairstream dataset {dataset_id})')}",
                  "  data_files:", '  - split: "train"', "    path:"] + [f"    - {q(f)}" for f in files]
    return lines + ["---", ""]


def fmt_share(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1%}"


def quality_lines(tally: Tally, mining_ratio: float = 0.95) -> list[str]:
    lines = ["## Quality", "", "Scores are cosine similarities under the embedding model named above, computed in "
             "the stream for every record; quantiles are to 0.01.", ""]
    kept = tally.dead_letters if tally.dead_letters_kept else "not kept (consume without --dead-letters)"
    lines += [f"- records: {tally.triplets}; dead letters: {kept}",
              f"- yield (records per anchor accounted for): {fmt_share(tally.yield_)}"]
    if tally.superseded:
        lines.append(f"- dead letters superseded by a later triplet of the same anchor (counted as triplets only; "
                     f"their rows stay in dead_letters/): {tally.superseded}")
    if tally.verdicts:
        lines.append("- verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(tally.verdicts.items())))
    lines += ["", "| score | n | p5 | median | p95 |", "| --- | --- | --- | --- | --- |"]
    for name, label in (("anchor_positive", "anchor-positive"), ("anchor_negative", "anchor-negative (LLM)"),
                        ("margin", "margin (positive - negative)"), ("mined", "anchor-mined negative")):
        if tally.count(name):
            qs = [tally.quantile(name, x) for x in (0.05, 0.5, 0.95)]
            lines.append(f"| {label} | {tally.count(name)} | " + " | ".join(f"{v:.2f}" for v in qs) + " |")
    inverted = tally.share_below("margin", 0.0)
    if inverted is not None:
        lines.append(f"\nInverted triplets (margin below 0, of the {tally.count('margin')} records with an LLM "
                     f"negative): {inverted:.1%}.")
    if tally.mined:
        total = sum(tally.mined.values())
        lines += ["", "Negatives per record (mined from the stream / all, the LLM's included):", "",
                  "| negatives | mined | all |", "| --- | --- | --- |"]
        for n in sorted({int(k) for k in (*tally.mined, *tally.negatives)}):
            lines.append(f"| {n} | {tally.mined.get(str(n), 0) / total:.1%} | "
                         f"{tally.negatives.get(str(n), 0) / total:.1%} |")
    if tally.rejections:
        lines += ["", "Dead letters by reason:", "", "| stage: error | anchors |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in tally.rejections.most_common()]
    return lines


def rule_text(mining_ratio: float) -> str:
    """The positive-aware mining rule in words, from the ratio the workers were configured with."""
    return f"cos(anchor, positive) - {1 - mining_ratio:.0%} of it"


def render_card(tally: Tally, families: dict[str, tuple[list[str], int]], *, full_records: bool,
                columns: tuple[str, ...] | None, dataset_id: str, mining_ratio: float = 0.95) -> str:
    """`families`: family -> (its shard files relative to DIR, rows) for every family with a complete shard."""
    lines = front_matter(families, full_records, tally, dataset_id)
    lines += ["# pairstream sentence pairs", "",
              "Made by pairstream from a stream of anchor sentences: an LLM "
              "wrote each positive (and negative), an embedding model judged every pair in the stream, and hard "
              "negatives were mined from the stream's earlier sentences (positive-aware: each scores below "
              f"{rule_text(mining_ratio)}). This card is rewritten as the dataset grows.", "",
              "## Configs", "", "| config | rows | columns |", "| --- | --- | --- |"]
    for family, (_, rows) in sorted(families.items()):
        name = config_name(family, full_records)
        about = ", ".join(columns) if name == "default" and columns else describe(name)
        lines.append(f"| `{name}` | {rows} | {about} |")
    lines += ["", "```python", "from datasets import load_dataset", "",
              'train = load_dataset("path/to/this/dir", "triplet", split="train")  # or "mined-negatives", "records"',
              "```", "", "## Models", ""]
    lines += [f"- generation: `{m}` ({n} records)" for m, n in tally.models.most_common()]
    lines += [f"- embeddings (scores, mining): `{m}`" for m in tally.embedding_models]
    lines += [""] + quality_lines(tally, mining_ratio) + ["", "`pairstream report DIR` prints these figures from the shards "
                                            "themselves and draws them (DIR/report/*.png).", ""]
    return "\n".join(lines)
