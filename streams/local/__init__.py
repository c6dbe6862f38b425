"""The local stack, for a machine without Docker: the embedded Kafka-compatible broker (`broker`, with an
optional TLS/SASL `broker_front`), the local model server (`model_server`, `weights`: the writer's GGUF assembled and checked), child-process helpers
(`processes`) and `demo`, which runs the whole job on them; `cli` holds `pairstream broker` and `demo`.

May import: `streams.dataset`, the shared top-level modules (`flags` in `cli`). The worker runs as a child process, never in-process.
"""
