"""Data in and out of the stream: `publish` (anchor files to the anchors topic) and `sink` (`pairstream consume`:
the triplets topic into a dataset directory; `wire` reads each message leniently, as a sink older than its
workers must), with `store` keeping that directory correct (complete shards, an id index across restarts,
the manifest, the card; one writer at a time) and `recovery` undoing a crash (and rebuilding a missing index, with
the layout of its shards) without touching any file that is not its own, `layouts` turning a record into training rows,
`tally`/`card` keeping its figures and its Hugging Face card, and `report`/`plots`/`export` reading it back
(`pairstream report`, `pairstream export`). `cli` holds their commands (`pairstream publish`, `consume`,
`report`, `export`).

May import: `streams.kafka`, `streams.settings`, `streams.dirlock`, `streams.flags` (`cli`), `schemas`, aiokafka, pyarrow, matplotlib (plots only). Not the worker.
"""
