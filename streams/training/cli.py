"""`pairstream evaluate` and `train`, each its options and one call into this package (wired into the command
group by `streams.cli`). The train extra is imported only when a command runs (`training_modules`)."""

import json
from pathlib import Path

import click

from streams.flags import DATASET_DIR, interrupted, usage_error, usage_errors


def training_modules():
    """The train extra's modules, or exit 2 saying how to install it."""
    try:
        import sentence_transformers  # noqa: F401
    except ImportError:
        usage_error("train and evaluate need the train extra: pip install 'pairstream[train]'")
    from streams.training import evaluation, models, pairs, trainer

    return evaluation, models, pairs, trainer


@click.command()
@click.option("--model", "model_name", default="all-MiniLM-L6-v2", show_default=True,
              help="A sentence-transformers model directory, or all-MiniLM-L6-v2 (bundled, offline).")
@click.option("--pairs", "pairs_file", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Labelled pairs: .tsv (GLUE STS-B), .csv or .jsonl with sentence1, sentence2, score.")
@click.option("--threshold", type=float, default=4.0, show_default=True,
              help="Pairs scoring at least this are retrieval queries (sentence1 finds sentence2).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def evaluate(model_name: str, pairs_file: Path, threshold: float, as_json: bool) -> None:
    """Score an embedding model on labelled pairs: Spearman/Pearson of cosine, retrieval MRR@10, Recall@1/@10."""
    evaluation, models, pairs, _ = training_modules()
    with usage_errors(pairs.PairsError, models.ModelError):
        labelled = pairs.read_labelled_pairs(pairs_file)
        model = models.load(model_name)
    scores = evaluation.evaluate(model, labelled, threshold)
    if as_json:
        click.echo(json.dumps({"model": model_name, "pairs_file": str(pairs_file), "threshold": threshold,
                               **scores.as_dict()}, indent=2))
    else:
        click.echo("\n".join(evaluation.table([(Path(model_name).name, scores)])))
        click.echo(f"{scores.pairs} pairs; retrieval: {scores.queries} queries (score >= {threshold}) over "
                   f"{scores.corpus} sentences")


@click.command()
@DATASET_DIR
@click.option("--out", "model_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Directory to write the trained model to (SentenceTransformer(MODEL_DIR) loads it).")
@click.option("--base", default="all-MiniLM-L6-v2", show_default=True,
              help="Model to start from: a directory (e.g. the previous run's, to keep training), or all-MiniLM-L6-v2.")
@click.option("--config", default="triplet", show_default=True, metavar="[triplet|mined-negatives|pairs]",
              help="Which of the dataset card's training configs to train on.")
@click.option("--loss", default="mnrl", show_default=True, metavar="[mnrl|cached-mnrl|gist]",
              help="MultipleNegativesRankingLoss, its cached (GradCache) form, or GISTEmbed guided by the base model.")
@click.option("--epochs", type=float, default=1.0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=2), default=32, show_default=True)
@click.option("--lr", type=float, default=5e-5, show_default=True, help="Learning rate.")
@click.option("--seed", type=int, default=12, show_default=True)
@click.option("--max-steps", type=int, default=-1, help="Stop after this many steps (default: the epochs).")
@click.option("--eval", "eval_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Labelled pairs to evaluate on before and after (as `pairstream evaluate --pairs`).")
@click.option("--threshold", type=float, default=4.0, show_default=True, help="Retrieval threshold of --eval.")
def train(out_dir: Path, model_dir: Path, base: str, config: str, loss: str, epochs: float, batch_size: int,
          lr: float, seed: int, max_steps: int, eval_file: Path | None, threshold: float) -> None:
    """Fine-tune a sentence-transformers model on a dataset directory; write it with a card naming its data."""
    evaluation, models, pairs, trainer = training_modules()
    recipe = trainer.Recipe(base=base, config=config, loss=loss, epochs=epochs, batch_size=batch_size, lr=lr,
                            seed=seed, max_steps=max_steps)
    with usage_errors(pairs.PairsError, models.ModelError, trainer.TrainingError):
        labelled = pairs.read_labelled_pairs(eval_file) if eval_file else None
        models.resolve(base)
        try:
            outcome = trainer.train(out_dir, model_dir, recipe, labelled, threshold)
        except KeyboardInterrupt:
            interrupted()
    click.echo(f"trained {outcome.steps} steps on {outcome.rows} rows of {out_dir} ({config}, {loss}) in "
               f"{outcome.seconds} s; loss {outcome.losses[0]:.4f} -> {outcome.losses[-1]:.4f}" if outcome.losses
               else f"trained {outcome.steps} steps on {outcome.rows} rows")
    if outcome.before:
        click.echo("\n".join(trainer.results_table(outcome, base)))
    click.echo(f"model: {model_dir} (SentenceTransformer({str(model_dir)!r}); figures in "
               f"{model_dir / 'pairstream-training.json'})")
