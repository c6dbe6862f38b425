"""Micro-batching: concurrent callers share backend calls, a full batch goes at once, a lone caller waits at
most `max_wait_s`, every caller gets its own rows, and a failed batch fails only its callers."""

import asyncio
import time

import numpy as np
import pytest

from streams.quality.batcher import MicroBatcher


class Backend:
    def __init__(self, fail_on: str | None = None, delay_s: float = 0.0):
        self.calls: list[list[str]] = []
        self.fail_on = fail_on
        self.delay_s = delay_s

    async def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        await asyncio.sleep(self.delay_s)
        if self.fail_on and self.fail_on in texts:
            raise RuntimeError("backend down")
        return np.array([[float(len(t)), float(i)] for i, t in enumerate(texts)])


async def test_concurrent_callers_share_one_call_and_get_their_own_rows():
    backend = Backend()
    batcher = MicroBatcher(backend, max_batch=64, max_wait_s=0.01)
    parts = [[f"anchor {i}", f"positive {i}", f"negative {i}!"] for i in range(10)]
    results = await asyncio.gather(*(batcher.embed(p) for p in parts))
    assert len(backend.calls) == 1 and len(backend.calls[0]) == 30
    for part, rows in zip(parts, results):
        assert [row[0] for row in rows] == [len(t) for t in part]


async def test_a_full_batch_goes_at_once_and_a_lone_caller_waits_briefly():
    backend = Backend()
    batcher = MicroBatcher(backend, max_batch=6, max_wait_s=5.0)
    t0 = time.monotonic()
    await asyncio.gather(batcher.embed(["a", "b", "c"]), batcher.embed(["d", "e", "f"]))
    assert time.monotonic() - t0 < 1.0 and backend.calls == [["a", "b", "c", "d", "e", "f"]]
    quick = MicroBatcher(backend, max_batch=64, max_wait_s=0.02)
    t0 = time.monotonic()
    await quick.embed(["alone"])
    assert 0.015 <= time.monotonic() - t0 < 0.5


async def test_a_failed_batch_fails_only_its_callers_and_batches_overlap():
    backend = Backend(fail_on="poison", delay_s=0.05)
    batcher = MicroBatcher(backend, max_batch=2, max_wait_s=0.001)
    t0 = time.monotonic()
    results = await asyncio.gather(batcher.embed(["poison", "x"]), batcher.embed(["fine", "y"]),
                                   return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and results[1].shape == (2, 2)
    assert time.monotonic() - t0 < 0.09  # the two batches ran at the same time, not one after the other
    with pytest.raises(RuntimeError):
        await batcher.embed(["poison", "z"])
