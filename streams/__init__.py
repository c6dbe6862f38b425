"""pairstream: turn a Kafka stream of anchor sentences into (anchor, positive, negative) training records.

The data path, one sub-package per concern:

    anchors topic -> worker/ (Faust agent) -> generate/ (prompt, LLM, validate) -> triplets topic -> dataset/

- `generate/`: one anchor request to a valid pair: the task, the LLM client, retries, limits.
- `quality/`: the embedding model and the checks that judge each pair in the stream; mining hard negatives.
- `worker/`: the Faust app around it: consume, produce, commit, metrics endpoints.
- `group/`: what the whole consumer group wrote (ids delivered, mining sentences), replicated into each worker.
- `dataset/`: `publish` anchors in, `consume` triplets out into a dataset directory.
- `local/`: the embedded broker, the local model server and `demo`.
- `bench/`: `pairstream bench` and the fake backend of known capacity it measures against.
- `training/`: `pairstream train` / `evaluate` and the downstream benchmark.

On top: `cli` (the command group; each package's `cli` module holds its commands), `flags` (what every
command shares), `settings` (every
`PAIRSTREAM_*` setting), and what several packages share: `kafka` (connection
details, topic creation), `logs`, `metrics`.

Imports point one way: `generate` needs only the shared modules and `schemas`; `quality` uses
`generate`; `group` uses `quality`; `worker` uses all three; `local` uses `dataset`; `training` uses
`local`; `bench` uses `local`, `dataset`, `quality`, `generate` and `training`; only `cli` sees them all
(`tests/test_layout.py`).
"""

__version__ = "0.1.0"  # the one place: pyproject.toml reads it (dynamic version)
