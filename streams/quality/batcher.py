"""Micro-batches across the anchors in flight: many small `embed()` calls become few backend calls.

Each caller's texts join the open batch; the batch goes out when it holds `max_batch`
texts or `max_wait_s` after its first text arrived, whichever is first. Batches run
concurrently (a slow one does not hold the next), and a failed batch fails only its
own callers. One anchor's three sentences thus cost a fraction of a model call, and
the wait is bounded, so scoring does not serialise the worker.
"""

import asyncio
from typing import Awaitable, Callable

import numpy as np


class MicroBatcher:
    def __init__(self, embed_batch: Callable[[list[str]], Awaitable[np.ndarray]], max_batch: int = 64,
                 max_wait_s: float = 0.005):
        self.embed_batch = embed_batch
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._waiting: list[tuple[list[str], asyncio.Future]] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._running: set[asyncio.Task] = set()
        self.batches = 0  # backend calls made, for tests and metrics

    async def embed(self, texts: list[str]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._waiting.append((texts, future))
        self._size += len(texts)
        if self._size >= self.max_batch:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self.max_wait_s, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._waiting, self._size = self._waiting, [], 0
        if batch:
            task = asyncio.ensure_future(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[list[str], asyncio.Future]]) -> None:
        self.batches += 1
        texts = [t for part, _ in batch for t in part]
        try:
            vectors = await self.embed_batch(texts)
        except BaseException as exc:  # every caller of this batch gets the error; the next batch may succeed
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        start = 0
        for part, future in batch:
            if not future.done():
                future.set_result(vectors[start:start + len(part)])
            start += len(part)
