"""The local stack, for a machine without Docker: the embedded Kafka-compatible broker (`broker`, with an
optional TLS/SASL `broker_front`), the local model server (`model_server`, SmolLM2), child-process helpers
(`processes`) and `demo`, which runs the whole job on them.

May import: `streams.dataset`, the shared top-level modules. The worker runs as a child process, never in-process.
"""
