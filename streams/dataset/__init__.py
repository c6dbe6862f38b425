"""Data in and out of the stream: `publish` (anchor files to the anchors topic) and `sink` (`pairstream consume`:
the triplets topic into a dataset directory), with `store` keeping that directory correct (complete shards,
an id index across restarts, the manifest).

May import: `streams.kafka`, `streams.settings`, `schemas`, aiokafka, pyarrow. Not the worker.
"""
