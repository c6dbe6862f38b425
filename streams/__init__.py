"""pairstream: turn a Kafka stream of anchor sentences into (anchor, positive, negative) training records.

The data path, one sub-package per concern:

    anchors topic -> worker/ (Faust agent) -> generate/ (prompt, LLM, validate) -> triplets topic -> dataset/

- `generate/`: one anchor request to a valid pair: the task, the LLM client, retries, limits.
- `worker/`: the Faust app around it: consume, produce, commit, metrics endpoints.
- `dataset/`: `publish` anchors in, `consume` triplets out into a dataset directory.
- `local/`: the embedded broker, the local model server and `demo`.
- `bench/`: `pairstream bench` and the fake backend of known capacity it measures against.

On top: `cli` (thin: options in, one call into a package), `settings` (every
`PAIRSTREAM_*` setting), and what several packages share: `kafka` (connection
details, topic creation), `logs`, `metrics`.

Imports point one way: `generate` needs only the shared modules and `schemas`;
`worker` uses `generate`; `local` uses `dataset`; `bench` uses `local`; only `cli`
sees them all.
"""

__version__ = "0.1.0"  # the one place: pyproject.toml reads it (dynamic version)
