"""Record ids the consumer group has already produced, read from the output topics, so that a redelivered anchor
whose record is already out costs no LLM call.

Why: at-least-once redelivers anchors after a crash, a rebalance, or a consumer group rewound by hand; the sink
drops the duplicate records by id, but every one was an LLM call paid again (about 30 per SIGKILL here). The
output topics already say which ids are done, for every worker of the group: their key is the record id. So each
worker follows their keys (`streams.worker.follower`: every partition, the last `lookback` records of each read
before the first anchor). The ids kept are bounded (`capacity`, oldest forgotten first).

A skip is safe because an id is deterministic: the record the LLM would make again has the same id, and the sink
would keep only the first. An anchor is only skipped once its record is on the broker (ids are learnt from the
topics, or from this worker's own confirmed produce).
"""

from aiokafka.structs import ConsumerRecord

from streams.worker.follower import TopicFollower


class ProducedIds:
    def __init__(self, capacity: int):
        self.capacity = capacity
        self._ids: dict[str, None] = {}  # insertion-ordered: the oldest id is the first key

    def __contains__(self, record_id: str) -> bool:
        return record_id in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, record_id: str) -> None:
        self._ids[record_id] = None
        if len(self._ids) > self.capacity:
            del self._ids[next(iter(self._ids))]

    def follow(self, follower: TopicFollower, topics: list[str], lookback: int) -> "ProducedIds":
        """Learn every id produced to `topics` from `follower`."""
        for topic in topics:
            follower.follow(topic, lookback, self._learn)
        return self

    def _learn(self, record: ConsumerRecord) -> None:
        if record.key:
            self.add(record.key.decode(errors="replace"))
