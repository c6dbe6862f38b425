"""The concurrency limit: a fixed limit is never exceeded, and `auto` (AIMD) finds a backend's slot count.

The backend here is simulated in-process (slots, latency, 429 or queueing beyond the
slots), so the tests check the algorithm; `pairstream bench --concurrency auto`
measures it end to end.
"""

import asyncio
import random

import pytest

from streams.generate.limits import AIMDLimit, ConcurrencyLimit, limit_for


class SimBackend:
    """`slots` requests at once; beyond that it answers 429 at once, or (queueing) makes callers wait."""

    def __init__(self, slots: int, latency_s: float, queueing: bool, sigma: float = 0.6, seed: int = 1):
        self.slots, self.latency_s, self.queueing, self.sigma = slots, latency_s, queueing, sigma
        self.sem = asyncio.Semaphore(slots)
        self.active = self.served = self.rejected = 0
        self.busy_s = 0.0
        self.rng = random.Random(seed)

    async def call(self) -> int:
        if not self.queueing and self.active >= self.slots:
            self.rejected += 1
            return 429
        async with self.sem:
            self.active += 1
            latency = self.latency_s * self.rng.lognormvariate(0, self.sigma)
            await asyncio.sleep(latency)
            self.active -= 1
            self.served += 1
            self.busy_s += latency
        return 200


async def drive(limit: ConcurrencyLimit, backend: SimBackend, duration_s: float, clients: int = 200,
                samples: list | None = None) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + duration_s
    peak = 0

    async def client() -> None:
        nonlocal peak
        while loop.time() < end:
            started = await limit.acquire()
            peak = max(peak, limit.in_use)
            try:
                status = await backend.call()
            finally:
                limit.release()
            limit.on_result(started, ok=status == 200, overloaded=status == 429)
            if status == 429:
                await asyncio.sleep(backend.rng.uniform(0, 2 * backend.latency_s))  # back off, as the generator does

    async def sample() -> None:
        while loop.time() < end:
            if samples is not None:
                samples.append(limit.limit)
            await asyncio.sleep(backend.latency_s)

    await asyncio.gather(*(client() for _ in range(clients)), sample())
    limit.peak = peak


async def test_fixed_limit_is_never_exceeded():
    limit = ConcurrencyLimit(5)
    backend = SimBackend(slots=100, latency_s=0.005, queueing=True)
    await drive(limit, backend, 0.5, clients=50)
    assert limit.peak == 5 and backend.served > 50


async def test_a_waiter_that_is_cancelled_passes_its_wakeup_on():
    limit = ConcurrencyLimit(1)
    await limit.acquire()
    first = asyncio.create_task(limit.acquire())
    second = asyncio.create_task(limit.acquire())
    await asyncio.sleep(0)
    limit.release()  # wakes `first`...
    first.cancel()  # ...which is cancelled before it runs
    await asyncio.wait_for(second, 1)  # so `second` must get the permit
    assert limit.in_use == 1


@pytest.mark.parametrize("slots,sigma", [(8, 0.6), (32, 0.6), (32, 1.0)])
async def test_auto_finds_the_slots_of_a_backend_that_answers_429(slots, sigma):
    limit = AIMDLimit()
    backend = SimBackend(slots=slots, latency_s=0.02, queueing=False, sigma=sigma)
    samples: list[int] = []
    await drive(limit, backend, 6.0, samples=samples)
    settled = samples[len(samples) // 2:]
    utilisation = backend.busy_s / (slots * 6.0)
    rejected = backend.rejected / (backend.served + backend.rejected)
    assert 0.7 * slots <= min(settled) and max(settled) <= 1.3 * slots + 2, settled
    assert utilisation >= 0.85, utilisation
    assert rejected < 0.05, f"{backend.rejected} of {backend.served + backend.rejected} answered 429"


@pytest.mark.parametrize("sigma", [0.6, 1.0])
async def test_auto_stops_growing_when_a_queueing_backend_gets_slower(sigma):
    slots = 16
    limit = AIMDLimit(max_limit=256)
    backend = SimBackend(slots=slots, latency_s=0.02, queueing=True, sigma=sigma)
    samples: list[int] = []
    await drive(limit, backend, 6.0, samples=samples)
    settled = samples[len(samples) // 2:]
    utilisation = backend.busy_s / (slots * 6.0)
    assert max(settled) <= 3 * slots, settled  # does not queue up to the maximum (256)...
    assert min(settled) >= slots // 2, settled
    assert utilisation >= 0.9, utilisation  # ...and still keeps the slots busy
    assert limit.decreases > 0


async def test_auto_does_not_grow_a_limit_it_does_not_use():
    limit = AIMDLimit(initial=4)
    backend = SimBackend(slots=100, latency_s=0.005, queueing=True)
    await drive(limit, backend, 0.5, clients=2)  # demand of 2 never fills a limit of 4
    assert limit.limit == 4


def test_limit_for_reads_the_setting():
    assert isinstance(limit_for("auto"), AIMDLimit) and limit_for("auto", 64).ceiling == 64
    fixed = limit_for(12)
    assert type(fixed) is ConcurrencyLimit and fixed.limit == fixed.ceiling == 12
