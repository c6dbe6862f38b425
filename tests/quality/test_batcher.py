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
        self.in_flight = self.max_in_flight = 0

    async def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
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
    """Timed against the batcher's own wait, not a number of seconds a loaded machine could exceed: a full
    batch does not wait out an hour's `max_wait_s` (the minute allowed is the test's patience), and a lone
    caller's batch goes after its `max_wait_s`, not before."""
    backend = Backend()
    batcher = MicroBatcher(backend, max_batch=6, max_wait_s=3600)
    await asyncio.wait_for(asyncio.gather(batcher.embed(["a", "b", "c"]), batcher.embed(["d", "e", "f"])), 60)
    assert backend.calls == [["a", "b", "c", "d", "e", "f"]]
    quick = MicroBatcher(backend, max_batch=64, max_wait_s=0.02)
    t0 = time.monotonic()
    await asyncio.wait_for(quick.embed(["alone"]), 60)
    assert time.monotonic() - t0 >= 0.015 and backend.calls[-1] == ["alone"]


async def test_a_failed_batch_fails_only_its_callers_and_batches_overlap():
    backend = Backend(fail_on="poison", delay_s=0.05)
    batcher = MicroBatcher(backend, max_batch=2, max_wait_s=0.001)
    results = await asyncio.gather(batcher.embed(["poison", "x"]), batcher.embed(["fine", "y"]),
                                   return_exceptions=True)
    assert isinstance(results[0], RuntimeError) and results[1].shape == (2, 2)
    assert backend.max_in_flight == 2  # the two batches ran at the same time, not one after the other
    with pytest.raises(RuntimeError):
        await batcher.embed(["poison", "z"])


class Labelled:
    """A backend whose vector for `t{caller}-{i}` is [caller, i], so a caller can check its rows are its own;
    `limit` makes it refuse more texts than that, and `poison` any batch holding that text, as too large."""

    def __init__(self, limit: int | None = None, poison: str | None = None):
        self.calls: list[list[str]] = []
        self.limit = limit
        self.poison = poison

    async def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        await asyncio.sleep(0)
        if (self.limit is not None and len(texts) > self.limit) or (self.poison is not None and self.poison in texts):
            raise TooLarge(f"{len(texts)} texts refused")
        return np.array([[float(n) for n in t[1:].split("-")] for t in texts])


class TooLarge(Exception):
    too_large = True  # what the batcher splits on (the remote embedder's HTTP 413)


def labelled_parts(callers: int, per_caller: int = 3) -> list[list[str]]:
    return [[f"t{c}-{i}" for i in range(per_caller)] for c in range(callers)]


def assert_own_rows(parts, results, skip=()):
    for c, (part, rows) in enumerate(zip(parts, results)):
        if c not in skip:
            assert rows.tolist() == [[c, i] for i in range(len(part))], f"caller {c} got someone else's rows"


async def test_eleven_callers_of_three_never_put_more_than_max_batch_texts_in_one_call():
    """33 texts, max_batch 32: the 33rd text goes in the next call, and caller 10 gets its rows from two calls."""
    backend = Labelled()
    batcher = MicroBatcher(backend, max_batch=32, max_wait_s=0.01)
    parts = labelled_parts(11)
    results = await asyncio.gather(*(batcher.embed(p) for p in parts))
    assert [len(c) for c in backend.calls] == [32, 1]
    assert_own_rows(parts, results)


async def test_a_caller_larger_than_max_batch_is_split_across_calls():
    backend = Labelled()
    batcher = MicroBatcher(backend, max_batch=4, max_wait_s=0.01)
    parts = [[f"t0-{i}" for i in range(10)], [f"t1-{i}" for i in range(3)]]
    results = await asyncio.gather(*(batcher.embed(p) for p in parts))
    assert max(len(c) for c in backend.calls) == 4 and sum(len(c) for c in backend.calls) == 13
    assert_own_rows(parts, results)


async def test_a_too_large_batch_is_split_and_the_cap_learned():
    """A backend that takes at most 8 texts: 32 -> 16 + 16 (refused) -> 4 x 8; both halves of a refused 16
    passed, so it was the count, and later calls carry at most 8."""
    backend = Labelled(limit=8)
    batcher = MicroBatcher(backend, max_batch=32, max_wait_s=0.001)
    parts = labelled_parts(11)
    assert_own_rows(parts, await asyncio.gather(*(batcher.embed(p) for p in parts)))
    assert sorted(len(c) for c in backend.calls) == [1, 8, 8, 8, 8, 16, 16, 32]
    assert batcher.splits == 3 and batcher.max_batch == 8
    backend.calls.clear()
    assert_own_rows(parts, await asyncio.gather(*(batcher.embed(p) for p in parts)))
    assert [len(c) for c in backend.calls] == [8, 8, 8, 8, 1]


async def test_a_single_text_still_too_large_fails_only_its_own_caller():
    backend = Labelled(poison="t4-1")
    batcher = MicroBatcher(backend, max_batch=32, max_wait_s=0.001)
    parts = labelled_parts(8)
    results = await asyncio.gather(*(batcher.embed(p) for p in parts), return_exceptions=True)
    assert isinstance(results[4], TooLarge)
    assert_own_rows(parts, results, skip={4})
    assert batcher.max_batch == 32  # one long text says nothing about how many texts fit
