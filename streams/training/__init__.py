"""Training and evaluation: what a model trained on a pairstream dataset is worth (issue 25).

`pairs` reads labelled sentence pairs (STS-B TSV, CSV, JSONL); `models` resolves a model name (a directory,
or the bundled all-MiniLM-L6-v2) and builds the weak static student; `evaluation` scores a model with
sentence-transformers' own evaluators; `trainer` fine-tunes on a dataset directory's config with
`SentenceTransformerTrainer` and writes the model with its card; `stsb` splits STS-B train into anchors and
held-out pairs; `downstream` is the benchmark that trains on pairstream's data and on controls of the same
size; `cli` holds `pairstream evaluate` and `train`. Needs the `train` extra (sentence-transformers, a CPU torch): every import of it is inside a function,
so the worker never loads torch.

May import: `streams.settings`, `streams.flags` (`cli`), `streams.local` (`downstream` generates its data by running the local demo),
sentence-transformers, torch, datasets. No Faust or Kafka in-process.
"""
