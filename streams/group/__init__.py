"""Group state: what the whole consumer group wrote, replicated into each worker.

A worker processes the anchors of the partitions it owns, but two things need every worker's output: the ids
already delivered (`produced`: a redelivered anchor whose triplet is out costs no LLM call) and the sentences
every worker delivered with their vectors (`mining_feed`: each worker mines hard negatives from all of them).
`follower` reads both from the topics (every partition, no consumer group, nothing committed), retrying in the
background until the broker answers. Every failure here costs knowledge, never a record: a worker that knows
less generates an anchor again or mines from fewer sentences, and says so in a metric.

May import: `streams.quality` (the mining window), the shared top-level modules, `schemas`, aiokafka. Not Faust.
"""
