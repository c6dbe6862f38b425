"""Record ids the consumer group has already delivered as triplets, read from the triplets topic, so that a
redelivered anchor whose triplet is already out costs no LLM call.

Why: at-least-once redelivers anchors after a crash, a rebalance, or a consumer group rewound by hand; the sink
drops the duplicate records by id, but every one was an LLM call paid again (about 30 per SIGKILL here). The
triplets topic already says which ids are done, for every worker of the group: its key is the record id. So each
worker follows it (`streams.group.follower`: every partition, the last `lookback` records of each read before the
first anchor).

Only triplets count. A dead letter is not done: the anchor sent again under the same id (corrected, or after
the LLM came back) must be generated, and its triplet supersedes the dead letter.

What is kept is bounded by what the lookback reads (`lookback` x partitions, oldest forgotten first: 160,000 ids
by default, 14 MB) and compact: a 64-bit hash of each id (blake2b), 86 bytes an id measured, against about 150
for the id strings in a dict. A hash collision would skip one anchor; with 160,000 ids kept the chance for a
given anchor is 160,000 / 2**64, about 1e-14.
Kafka has no key-only fetch: the follower reads the triplets' values too (the topic's bandwidth, per worker)
and drops them at once.
"""

import hashlib

import numpy as np
from aiokafka.structs import ConsumerRecord

from streams.group.follower import TopicFollower


def id_hash(record_id: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(record_id, digest_size=8).digest(), "little")


class ProducedIds:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self._kept: set[int] = set()
        self._order = np.zeros(capacity, dtype=np.uint64)  # a ring of the hashes kept, oldest at `_next` once full
        self._next = 0
        self._filled = 0

    def __contains__(self, record_id: str) -> bool:
        return id_hash(record_id.encode()) in self._kept

    def __len__(self) -> int:
        return len(self._kept)

    def add(self, record_id: str) -> None:
        self._add(id_hash(record_id.encode()))

    def _add(self, digest: int) -> None:
        if digest in self._kept:
            return
        if self._filled == self.capacity:
            self._kept.discard(int(self._order[self._next]))
        else:
            self._filled += 1
        self._order[self._next] = digest
        self._next = (self._next + 1) % self.capacity
        self._kept.add(digest)

    def follow(self, follower: TopicFollower, topic: str, lookback: int) -> "ProducedIds":
        """Learn every id delivered to the triplets `topic` from `follower`."""
        follower.follow(topic, lookback, self._learn)
        return self

    def _learn(self, record: ConsumerRecord) -> None:
        if record.key:
            self._add(id_hash(record.key))
