"""The worker: a Faust app whose agent turns each anchor into exactly one triplet or dead letter.

`app` builds it from `Settings`, `agent` runs anchors concurrently with in-order
acks, `processor` maps one Kafka message to one output record, `web` serves
`/health`, `/ready` and `/metrics`, `run` is `pairstream worker`. What the whole
group wrote (ids delivered, mining sentences) is `streams.group`'s. Every private
Faust or aiokafka internal is touched in `faust_internals` and nowhere else.

May import: `streams.generate`, `streams.quality`, `streams.group`, the shared top-level modules, `schemas`,
faust and aiokafka.
"""
