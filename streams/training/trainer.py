"""`pairstream train DIR --out MODEL_DIR`: fine-tune a sentence-transformers model on a dataset directory.

The data is loaded with `datasets.load_dataset(DIR, config)`, exactly as a user would from the dataset card:
- `triplet`: anchor, positive, the LLM's negative;
- `mined-negatives`: anchor, positive, negative_1..k mined from the stream; rows a warming-up window gave
  fewer negatives (`mined-negatives-2`, ...) train as datasets of their own width (multi-dataset training:
  each batch from one of them);
- `pairs`: anchor and positive of every record, once each (the `triplet` config without its negative, and
  the card's `pairs` rows, which have none).
Losses: `mnrl` (MultipleNegativesRankingLoss: in-batch negatives plus the row's own), `cached-mnrl` (the
same with GradCache, large batches in little memory) and `gist` (GISTEmbedLoss: the base model as guide
drops in-batch "negatives" it scores above the positive, i.e. false negatives). Batches never hold the same
text twice (`BatchSamplers.NO_DUPLICATES`), which would be a false negative of its own.

A dataset that grew since the last run trains on what is there now; to retrain continuously, start from
the previous model (`--base MODEL_DIR`) on the newer shards (the card lists each config's shards; the
model card records which were used).
"""

import contextlib
import json
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from streams.training import models
from streams.training.evaluation import Scores, evaluate, table
from streams.training.stsb import Pair

Config = Literal["triplet", "mined-negatives", "pairs"]
Loss = Literal["mnrl", "cached-mnrl", "gist"]
CONFIGS: tuple[str, ...] = ("triplet", "mined-negatives", "pairs")
LOSSES: tuple[str, ...] = ("mnrl", "cached-mnrl", "gist")


class TrainingError(ValueError):
    """The dataset or a flag cannot be trained on; `str()` is one line (exit 2)."""


@dataclass
class Recipe:
    base: str = models.BUNDLED
    config: Config = "triplet"
    loss: Loss = "mnrl"
    epochs: float = 1.0
    batch_size: int = 32
    lr: float = 5e-5
    seed: int = 12
    max_steps: int = -1  # > 0: stop after this many steps (tests)
    warmup_ratio: float = 0.1


@dataclass
class Outcome:
    rows: int
    steps: int
    losses: list[float]
    before: Scores | None
    after: Scores | None
    seconds: float
    shards: dict[str, list[str]] = field(default_factory=dict)


def dataset_id(directory: Path) -> str | None:
    card = directory / "README.md"
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    match = re.search(r"pairstream dataset ([0-9a-f]{32})", text)
    return match.group(1) if match else None


def card_section(directory: Path, heading: str) -> str:
    """A `## heading` section of the dataset card, as it is (the card's quality figures)."""
    card = directory / "README.md"
    text = card.read_text(encoding="utf-8") if card.is_file() else ""
    match = re.search(rf"^## {heading}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    return match.group(1).strip() if match else ""


def configs_of(directory: Path) -> list[str]:
    from datasets import get_dataset_config_names

    if not (directory / "README.md").is_file():
        raise TrainingError(f"{directory}: not a pairstream dataset directory (no dataset card README.md); "
                            "write one with `pairstream consume --out DIR`")
    return list(get_dataset_config_names(str(directory)))


def shards_of(directory: Path, config: str) -> list[str]:
    card = (directory / "README.md").read_text(encoding="utf-8")
    match = re.search(rf'- config_name: "{re.escape(config)}"\n(.*?)(?=\n- config_name|\n---)', card, re.S)
    return re.findall(r'^\s+- "([^"]+)"$', match.group(1), re.M) if match else []


def load_training_data(directory: Path, config: str) -> tuple[Any, dict[str, list[str]]]:
    """The training dataset (one, or a dict of datasets of different widths) and the shards it came from."""
    from datasets import concatenate_datasets, load_dataset

    if config not in CONFIGS:
        raise TrainingError(f"--config {config}: no such config (choose from {', '.join(CONFIGS)})")
    present = configs_of(directory)
    if config == "pairs":
        wanted = [c for c in ("triplet", "pairs") if c in present]
    elif config == "mined-negatives":
        wanted = [c for c in present if c == "mined-negatives" or re.fullmatch(r"mined-negatives-\d+", c)]
    else:
        wanted = [c for c in present if c == config]
    if not wanted:
        raise TrainingError(f"{directory}: the dataset has no {config} config (it has: {', '.join(present) or 'none'})")
    parts = {c: load_dataset(str(directory), c, split="train") for c in wanted}
    if config == "pairs":
        # The card's `pairs` rows are those lacking a negative in some view (no LLM negative, or nothing mined
        # yet), so a record can be in both configs: each (anchor, positive) is kept once.
        both = concatenate_datasets([d.select_columns(["anchor", "positive"]) for d in parts.values()])
        seen: set[tuple[str, str]] = set()
        keep = [i for i, (a, p) in enumerate(zip(both["anchor"], both["positive"]))
                if (a, p) not in seen and not seen.add((a, p))]
        parts = {"pairs": both.select(keep)}
    parts = {c: d for c, d in parts.items() if len(d)}
    if not parts:
        raise TrainingError(f"{directory}: the {config} config has no rows yet")
    shards = {c: shards_of(directory, c) for c in wanted}
    data = next(iter(parts.values())) if len(parts) == 1 else parts
    return data, shards


def row_count(data) -> int:
    """Rows of a dataset, or of a dict of datasets (multi-dataset training)."""
    return len(data) if not isinstance(data, dict) else sum(len(d) for d in data.values())


def make_loss(name: str, model, guide_name: str):
    from sentence_transformers.sentence_transformer import losses

    if name == "mnrl":
        return losses.MultipleNegativesRankingLoss(model)
    if name == "cached-mnrl":
        return losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=16)
    if name == "gist":
        return losses.GISTEmbedLoss(model, guide=models.load(guide_name))
    raise TrainingError(f"--loss {name}: no such loss (choose from {', '.join(LOSSES)})")


def fit(model, data, recipe: Recipe, guide: str | None = None) -> tuple[int, list[float]]:
    """Train `model` in place; (steps, loss at each logging step)."""
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.training_args import BatchSamplers

    steps_per_epoch = max(1, row_count(data) // recipe.batch_size)
    with tempfile.TemporaryDirectory(prefix="pairstream-train-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch, num_train_epochs=recipe.epochs, max_steps=recipe.max_steps,
            per_device_train_batch_size=recipe.batch_size, learning_rate=recipe.lr, seed=recipe.seed,
            data_seed=recipe.seed, warmup_steps=recipe.warmup_ratio,  # a float: a share of the steps (transformers 5)
            batch_sampler=BatchSamplers.NO_DUPLICATES, save_strategy="no", report_to="none",
            logging_steps=max(1, min(10, steps_per_epoch // 2)), use_cpu=not _has_gpu(), dataloader_drop_last=False)
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=data,
                                             loss=make_loss(recipe.loss, model, guide or recipe.base))
        with contextlib.redirect_stdout(sys.stderr):  # the trainer prints its log dicts: keep stdout for results
            trainer.train()
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        return trainer.state.global_step, losses


def _has_gpu() -> bool:
    import torch

    return torch.cuda.is_available()


def train(directory: Path, out: Path, recipe: Recipe, eval_pairs: list[Pair] | None = None,
          threshold: float = 4.0) -> Outcome:
    started = time.monotonic()
    if recipe.loss not in LOSSES:
        raise TrainingError(f"--loss {recipe.loss}: no such loss (choose from {', '.join(LOSSES)})")
    if out.exists() and any(out.iterdir()) and not (out / "modules.json").is_file():
        raise TrainingError(f"--out {out}: exists and is not a model directory; choose an empty or new directory")
    data, shards = load_training_data(directory, recipe.config)
    model = models.load(recipe.base, seed=recipe.seed)
    before = evaluate(model, eval_pairs, threshold) if eval_pairs else None
    steps, losses = fit(model, data, recipe)
    after = evaluate(model, eval_pairs, threshold) if eval_pairs else None
    outcome = Outcome(row_count(data), steps, losses, before, after, round(time.monotonic() - started, 1), shards)
    save(model, out, directory, recipe, outcome)
    return outcome


def results_table(outcome: Outcome, base: str) -> list[str]:
    rows = [(f"before ({Path(base).name})", outcome.before), ("after", outcome.after)]
    return table([(name, s) for name, s in rows if s is not None])


def save(model, out: Path, directory: Path, recipe: Recipe, outcome: Outcome) -> None:
    """The model (loadable with `SentenceTransformer(out)`), its card naming the data, and the figures as JSON."""
    ident = dataset_id(directory)
    model.save(str(out))  # sentence-transformers writes its own card (training data statistics, losses); ours follows
    report = {
        "dataset": {"directory": str(directory.resolve()), "id": ident, "config": recipe.config,
                    "rows": outcome.rows, "shards": outcome.shards},
        "recipe": {k: v for k, v in vars(recipe).items()},
        "steps": outcome.steps, "losses": outcome.losses, "seconds": outcome.seconds,
        "before": outcome.before.as_dict() if outcome.before else None,
        "after": outcome.after.as_dict() if outcome.after else None,
    }
    (out / "pairstream-training.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    shard_lines = "\n".join(f"- `{c}`: {', '.join(f'`{s}`' for s in files) or '(none listed)'}"
                            for c, files in outcome.shards.items())
    quality = card_section(directory, "Quality") or "(the dataset card has no quality section)"
    figures = "\n".join(results_table(outcome, recipe.base)) if outcome.before else "(no --eval file given)"
    section = f"""

## Training data (pairstream)

Fine-tuned by `pairstream train` from `{recipe.base}` on pairstream dataset `{ident or directory.name}`
(`{directory}`), config `{recipe.config}`: {outcome.rows} rows, {outcome.steps} steps, loss `{recipe.loss}`,
{recipe.epochs} epoch(s), batch {recipe.batch_size}, lr {recipe.lr}, seed {recipe.seed}; {outcome.seconds} s.

Shards used:
{shard_lines}

Before and after, on the `--eval` pairs:

```
{figures}
```

The dataset card's quality figures when it was trained on (scores of its own embedding model, not a
reading of the records):

{quality}
"""
    card = out / "README.md"
    card.write_text((card.read_text(encoding="utf-8") if card.is_file() else "") + section, encoding="utf-8")
