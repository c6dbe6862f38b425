"""Micro-batches across the anchors in flight: many small `embed()` calls become few backend calls.

Each caller's texts join the open batch; the batch goes out when it holds `max_batch`
texts or `max_wait_s` after its first text arrived, whichever is first. No call ever carries
more than `max_batch` texts: a caller whose texts do not fit is split across this batch and
the next, and gets its rows back in its own order once every part has come back. Batches run
concurrently (a slow one does not hold the next), and a failed batch fails only its own callers.

A backend error with a true `too_large` attribute (the remote embedder's HTTP 413: too many
texts, or one text over the server's token limit) is not the callers' fault: the batch is
split in two and each half tried on its own, down to single texts, so only the caller of a
text that is too large even alone fails. When both halves of a refused batch pass, the count
was the problem (no text was), so `max_batch` drops to the half's size for good: a server
whose limit is below ours costs a few refused requests once, not on every batch.
"""

import asyncio
import logging
from typing import Awaitable, Callable

import numpy as np

log = logging.getLogger("pairstream.quality")


class _Caller:
    """One `embed()` call: its texts, and its rows as the parts of them come back."""

    __slots__ = ("texts", "future", "rows", "missing")

    def __init__(self, texts: list[str], future: asyncio.Future):
        self.texts = texts
        self.future = future
        self.rows: np.ndarray | None = None
        self.missing = len(texts)

    def fill(self, start: int, vectors: np.ndarray) -> None:
        if self.future.done():  # another part of it failed
            return
        try:
            if self.rows is None:
                self.rows = np.empty((len(self.texts),) + vectors.shape[1:], dtype=vectors.dtype)
            self.rows[start:start + len(vectors)] = vectors
        except ValueError as exc:  # parts of different widths: the backends check this, never shift rows
            self.fail(RuntimeError(f"the embedder's vectors changed shape between batches: {exc}"))
            return
        self.missing -= len(vectors)
        if self.missing == 0:
            self.future.set_result(self.rows)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)


Part = tuple[_Caller, int, int]  # texts[start:stop] of one caller


def _count(parts: list[Part]) -> int:
    return sum(stop - start for _, start, stop in parts)


def _split(parts: list[Part], n: int) -> tuple[list[Part], list[Part]]:
    """The first `n` texts of `parts` and the rest, cutting a caller's part in two if need be."""
    head: list[Part] = []
    for i, (caller, start, stop) in enumerate(parts):
        if n <= 0:
            return head, parts[i:]
        if stop - start > n:
            return head + [(caller, start, start + n)], [(caller, start + n, stop)] + parts[i + 1:]
        head.append((caller, start, stop))
        n -= stop - start
    return head, []


class MicroBatcher:
    def __init__(self, embed_batch: Callable[[list[str]], Awaitable[np.ndarray]], max_batch: int = 32,
                 max_wait_s: float = 0.005):
        self.embed_batch = embed_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._waiting: list[Part] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task] = set()
        self.batches = 0  # backend calls made, for tests and metrics
        self.splits = 0  # batches split in two after a too-large refusal

    async def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        loop = asyncio.get_running_loop()
        caller = _Caller(texts, loop.create_future())
        start = 0
        while start < len(texts):
            if self._size >= self.max_batch:
                self._flush()
            take = min(self.max_batch - self._size, len(texts) - start)
            self._waiting.append((caller, start, start + take))
            self._size += take
            start += take
        if self._size >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait_s, self._flush)
        return await caller.future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        parts, self._waiting, self._size = self._waiting, [], 0
        while parts:  # more than one batch only if max_batch dropped while these waited
            batch, parts = _split(parts, self.max_batch)
            task = asyncio.ensure_future(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, parts: list[Part]) -> bool:
        """Send `parts` and hand each caller its rows; True if every text was embedded."""
        self.batches += 1
        texts = [t for caller, start, stop in parts for t in caller.texts[start:stop]]
        refused: BaseException | None = None
        try:
            vectors = await self.embed_batch(texts)
        except BaseException as exc:
            if not (getattr(exc, "too_large", False) and len(texts) > 1):
                for caller, _, _ in parts:  # every caller of this batch gets the error; the next batch may succeed
                    caller.fail(exc)
                if not isinstance(exc, Exception):
                    raise
                return False
            refused = exc
        if refused is not None:
            return await self._halves(parts, len(texts), refused)
        if len(vectors) != len(texts):  # the backends check this; a wrong count must not shift rows
            exc = RuntimeError(f"the embedder returned {len(vectors)} vectors for {len(texts)} texts")
            for caller, _, _ in parts:
                caller.fail(exc)
            return False
        offset = 0
        for caller, start, stop in parts:
            caller.fill(start, vectors[offset:offset + stop - start])
            offset += stop - start
        return True

    async def _halves(self, parts: list[Part], n: int, exc: BaseException) -> bool:
        self.splits += 1
        first, second = _split(parts, (n + 1) // 2)
        passed = await asyncio.gather(self._run(first), self._run(second))
        half = _count(first)
        if all(passed) and half < self.max_batch:
            log.warning("the embeddings server refused %d texts in one request (%s) and took %d; sending at most "
                        "%d from now on (set PAIRSTREAM_EMBEDDINGS_BATCH to the server's limit)", n, exc, half, half)
            self.max_batch = half
        return all(passed)
