"""Hard negatives mined from the live stream: sentences of earlier records that are close to a new anchor,
yet safely further from it than its positive.

Sentence-transformers' `mine_hard_negatives` and NV-Retriever do this offline over a finished
corpus; here the corpus is the stream's recent past. The index is a window of the anchors and
positives of the last records the consumer group delivered (bounded by count and age): this
worker's, with the unit vectors its quality gate already computed, and the other workers', with
the vectors they shared (`streams.group.mining_feed`), so mining embeds nothing. A record's sentences join the
window (and go to the group) only once its triplet is on the broker (`StreamMiner.delivered`): a record the
broker refused, or one lost in a crash, is never a `mined_negatives[].source_id`. Search is exact: a window
of 10,000 sentences is one 10,000 x 384 matrix-vector product (about 0.3 ms on one core), where
an ANN index would pay only at a hundred times that size and makes eviction by age awkward.

A candidate is kept only if (rules of `MiningRules`):
- it is not from this record (same id: a redelivered anchor never mines its own earlier copy) and
  not the text of this anchor, positive or the LLM's negative (case and punctuation folded);
- it passes the positive-aware rule, sign-safe: score < cos(a, p) - |cos(a, p)| * (1 - ratio), so a
  near-duplicate of the anchor (a false negative) is never mined;
- score >= `min_score` (below it a sentence is no harder than a random one);
- it is not a near-duplicate (cosine >= `max_duplicate`) of the LLM's negative or of a negative
  already picked, and at most one sentence is taken from each earlier record (its anchor and
  positive are paraphrases of each other).
The hardest `k` that remain are returned, hardest first.
"""

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import numpy as np

from streams.quality.checks import plain_text

log = logging.getLogger("pairstream.mining")


@dataclass(frozen=True)
class MiningRules:
    k: int = 3
    negative_ratio: float = 0.95  # positive-aware: a candidate stays below this share of cos(a, p)
    min_score: float = 0.0
    max_duplicate: float = 0.95


@dataclass(frozen=True)
class Mined:
    text: str
    score: float
    source_id: str

    def record(self) -> dict:
        return {"text": self.text, "score": self.score, "source_id": self.source_id}


class SentenceWindow:
    """The most recent sentences with their unit vectors: a ring buffer bounded by `capacity` and `max_age_s`.

    One window is shared by all the anchors a worker has in flight (one event loop, no locks needed).
    A text already in the window is not added twice; its age is refreshed instead.
    """

    def __init__(self, capacity: int, max_age_s: float, clock: Callable[[], float] = time.monotonic):
        self.capacity = capacity
        self.max_age_s = max_age_s
        self.clock = clock
        self._clear(None)

    def _clear(self, dims: int | None) -> None:
        self.dims = dims  # the vectors' width: this worker's embedder's, or the group's until it has embedded
        self.vectors = None if dims is None else np.zeros((self.capacity, dims), dtype=np.float32)
        self.own_width = False  # whether `dims` was set by this worker's own vectors
        self.added_at = np.full(self.capacity, -np.inf)
        self.texts: list[str | None] = [None] * self.capacity
        self.keys: list[str | None] = [None] * self.capacity  # each text folded (case, punctuation), computed once
        self.record_ids: list[str | None] = [None] * self.capacity
        self.slot_of: dict[str, int] = {}  # folded text -> slot
        self.next = 0  # slot the next sentence goes to (the oldest once full)
        self.filled = 0

    def fits(self, dims: int) -> bool:
        """Whether vectors `dims` wide can join the window (another worker's, checked before they are added)."""
        return self.dims is None or self.dims == dims

    def _own(self, dims: int) -> None:
        """This worker's embedder decides the width: a window sized by the group's records to another width (a
        worker with another model of the same name) is started afresh rather than failing every search."""
        if self.dims is not None and self.dims != dims:
            log.warning("the mining window held %d-wide vectors from the group; this worker's embedder makes %d-wide "
                        "ones: starting the window afresh, the group's other records are refused", self.dims, dims)
            self._clear(None)
        if self.dims is None:
            self._clear(dims)
        self.own_width = True

    def __len__(self) -> int:
        """Sentences in the window that are not too old."""
        return int(np.count_nonzero(self.added_at[:self.filled] >= self.clock() - self.max_age_s))

    def add(self, record_id: str, texts: list[str], vectors: np.ndarray, age_s: float = 0.0, *,
            own: bool = True) -> None:
        """`age_s`: how long ago the sentences were delivered (read back from the mining topic at start-up);
        `own`: this worker's vectors (they set the width) or the group's (refused with ValueError if they do not
        fit)."""
        if own:
            self._own(vectors.shape[1])
        elif not self.fits(vectors.shape[1]):
            raise ValueError(f"{vectors.shape[1]}-wide vectors do not fit a window of {self.dims}")
        elif self.dims is None:
            self._clear(vectors.shape[1])
        now = self.clock() - age_s
        for text, vector in zip(texts, vectors):
            key = plain_text(text)
            if key in self.slot_of:
                slot = self.slot_of[key]
                self.added_at[slot] = max(self.added_at[slot], now)
                continue
            slot = self.next
            if self.keys[slot] is not None:
                self.slot_of.pop(self.keys[slot], None)
            self.vectors[slot] = vector
            self.added_at[slot] = now
            self.texts[slot] = text
            self.keys[slot] = key
            self.record_ids[slot] = record_id
            self.slot_of[key] = slot
            self.next = (slot + 1) % self.capacity
            self.filled = min(self.filled + 1, self.capacity)

    def add_each(self, record_ids: list[str], texts: list[str], vectors: np.ndarray) -> None:
        """One sentence per record: `texts[i]` of record `record_ids[i]`."""
        for record_id, text, vector in zip(record_ids, texts, vectors):
            self.add(record_id, [text], vector[None, :])

    def scores(self, queries: np.ndarray) -> np.ndarray:
        """Cosine of each query (rows) with every slot in use, one row per query; -inf for slots too old.

        One matrix product for all the queries: the window is read from memory once, whatever their number."""
        queries = np.atleast_2d(queries)
        self._own(queries.shape[1])
        if self.vectors is None or not self.filled:
            return np.zeros((len(queries), 0), dtype=np.float32)
        scores = queries @ self.vectors[:self.filled].T
        scores[:, self.added_at[:self.filled] < self.clock() - self.max_age_s] = -np.inf
        return scores


def hardest_first(scores: np.ndarray, eligible: np.ndarray, first: int):
    """`eligible` slots by falling score: the top `first` by a partial sort (the usual case), the rest only
    if the caller asks for more (many candidates refused as duplicates)."""
    if len(eligible) > first:
        part = np.argpartition(-scores[eligible], first - 1)
        head, tail = eligible[part[:first]], eligible[part[first:]]
    else:
        head, tail = eligible, eligible[:0]
    yield from head[np.argsort(-scores[head], kind="stable")]
    yield from tail[np.argsort(-scores[tail], kind="stable")]


class StreamMiner:
    """Mines negatives for each delivered record from the window, then adds the record's sentences to it.

    The records delivered in one turn of the event loop (the quality gate scores the anchors in flight in
    micro-batches, so they finish together) are searched in one matrix product: 16 at once cost 0.17 ms of
    CPU each here against 1.1 ms alone, the window being read from memory once.
    """

    def __init__(self, window: SentenceWindow, rules: MiningRules,
                 share: Callable[[str, list[str], np.ndarray], None] | None = None, held: int = 10_000):
        self.window = window
        self.rules = rules
        self.share = share  # also hands each record's sentences to the group (`streams.group.mining_feed`)
        # Records mined, their triplets not yet on the broker: (anchor, positive) and vectors, until `delivered`
        # or `forget`; bounded (oldest dropped) so an anchor cancelled in between cannot grow it.
        self._held: OrderedDict[str, tuple[str, str, np.ndarray]] = OrderedDict()
        self.held = held
        self._waiting: list[tuple[tuple, asyncio.Future]] = []
        self.searches = 0  # matrix products made, for tests

    def mine(self, record_id: str, anchor: str, positive: str, negative: str | None,
             vectors: np.ndarray, scores: np.ndarray | None = None) -> list[Mined]:
        """`vectors`: unit vectors of anchor, positive[, negative] (the quality gate's); `scores`: the anchor's
        row of `window.scores` when the caller searched for several records at once."""
        rules, window = self.rules, self.window
        a = vectors[0]
        ap = round(float(a @ vectors[1]), 4)  # as the record's quality.anchor_positive states it
        ceiling = ap - abs(ap) * (1 - rules.negative_ratio)  # sign-safe positive-aware rule
        if scores is None:
            scores = window.scores(a)[0]
        scores = np.round(scores.astype(np.float64), 4)  # as the record states them (re-checks agree)
        eligible = np.flatnonzero((scores < ceiling) & (scores >= rules.min_score))
        own = {plain_text(t) for t in (anchor, positive, negative) if t is not None}
        avoid = [vectors[2]] if negative is not None and len(vectors) > 2 else []
        picked: list[Mined] = []
        used_records = {record_id}
        for slot in hardest_first(scores, eligible, 8 * rules.k + 16):
            if len(picked) == rules.k:
                break
            source = window.record_ids[slot]
            if source in used_records or window.keys[slot] in own:
                continue
            vector = window.vectors[slot]
            if any(float(vector @ other) >= rules.max_duplicate for other in avoid):
                continue
            picked.append(Mined(window.texts[slot], float(scores[slot]), source))
            used_records.add(source)
            avoid.append(vector)
        return picked

    def remember(self, record_id: str, anchor: str, positive: str, vectors: np.ndarray) -> None:
        """The record's anchor and positive become candidates for the records after it, here and (`share`) in
        every worker of the group."""
        self.window.add(record_id, [anchor, positive], vectors[:2])
        if self.share is not None:
            self.share(record_id, [anchor, positive], vectors[:2])

    def delivered(self, record_id: str) -> None:
        """The record's triplet is on the broker: its sentences become candidates (`remember`)."""
        held = self._held.pop(record_id, None)
        if held is not None:
            self.remember(record_id, *held)

    def forget(self, record_id: str) -> None:
        """The record was not delivered (a dead letter instead, or cancelled): its sentences are never mined."""
        self._held.pop(record_id, None)

    async def __call__(self, record_id: str, anchor: str, positive: str, negative: str | None,
                       vectors: np.ndarray) -> list[dict]:
        """Mine, and hold the record's sentences until its triplet is delivered: the `Miner` the generator awaits
        for every record that passed."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._search)  # after every record delivered in this turn of the loop has asked
        self._waiting.append(((record_id, anchor, positive, negative, vectors), future))
        return await future

    def _search(self) -> None:
        batch, self._waiting = self._waiting, []
        self.searches += 1
        try:
            scores = self.window.scores(np.stack([args[4][0] for args, _ in batch]))
            results = [self.mine(*args, scores=row) for (args, _), row in zip(batch, scores)]
        except Exception as exc:  # a bug here must not hang the anchors: they fail, the worker sees why
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (args, future), mined in zip(batch, results):
            record_id, anchor, positive, _, vectors = args
            self._held[record_id] = (anchor, positive, vectors[:2])
            self._held.move_to_end(record_id)
            while len(self._held) > self.held:
                self._held.popitem(last=False)
            if not future.done():
                future.set_result([m.record() for m in mined])
