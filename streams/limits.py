"""How many LLM requests a worker keeps in flight: a fixed number, or one that adapts to the backend.

`PAIRSTREAM_CONCURRENCY=N` is a `ConcurrencyLimit` of N. `auto` is an `AIMDLimit`:
it probes upwards while the backend keeps up and backs off when it says it
cannot, so it finds a backend's slot count without being told:
- additive increase: +1 per success while in slow start (doubling per round
  trip), then +1/limit per success (+1 per round trip), and only while the limit
  is actually used (an idle worker does not inflate it);
- multiplicative decrease (x `backoff`) on an overload signal: a 429 or 503, or a
  smoothed latency above `latency_tolerance` x its baseline (a queueing backend
  such as vLLM never says 429, it just gets slower). At most one decrease per
  round trip: the signals of requests sent before the last decrease are about
  the old limit and are ignored, so one overshoot cannot collapse the limit.
The limit applies to HTTP requests, not to retry back-off sleeps: a request
waiting to retry does not hold a slot.
"""

import asyncio
import time
from collections import deque


class ConcurrencyLimit:
    """A semaphore whose size can change while permits are held (lowering it only delays new permits)."""

    def __init__(self, limit: int, clock=time.monotonic):
        self._limit = float(limit)
        self.in_use = 0
        self._waiters: deque[asyncio.Future] = deque()
        self._clock = clock

    @property
    def limit(self) -> int:
        return max(1, int(self._limit))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(limit={self.limit}, in_use={self.in_use})"

    async def acquire(self) -> float:
        """Wait for a permit; returns the time it was granted (pass it back to `on_result`)."""
        while self.in_use >= self.limit:
            fut = asyncio.get_running_loop().create_future()
            self._waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self._wake()  # we were woken but will not use the permit: pass it on
                raise
        self.in_use += 1
        return self._clock()

    def release(self) -> None:
        self.in_use -= 1
        self._wake()

    def _wake(self) -> None:
        room = self.limit - self.in_use
        while room > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                room -= 1

    def on_result(self, started: float, *, ok: bool, overloaded: bool = False) -> None:
        """What one request, granted its permit at `started`, saw: an answer, and whether it said "overloaded"."""


class AIMDLimit(ConcurrencyLimit):
    def __init__(self, initial: int = 4, min_limit: int = 1, max_limit: int = 256, backoff: float = 0.9,
                 latency_tolerance: float = 2.0, baseline_drift: float = 0.002, clock=time.monotonic):
        super().__init__(initial, clock)
        self.min_limit, self.max_limit = min_limit, max_limit
        self.backoff = backoff
        self.latency_tolerance = latency_tolerance
        self.baseline_drift = baseline_drift  # lets the baseline follow a backend that got slower for good
        self.slow_start = True
        self.smoothed: float | None = None  # EWMA of latency over about `limit` samples
        self.baseline: float | None = None  # lowest smoothed latency seen, drifting slowly upwards
        self.decreases = 0
        self._last_decrease = float("-inf")

    def on_result(self, started: float, *, ok: bool, overloaded: bool = False) -> None:
        if overloaded:
            self._decrease(started)
            return
        if not ok:
            return
        latency_s = self._clock() - started
        alpha = 2 / (max(10, self.limit) + 1)
        self.smoothed = latency_s if self.smoothed is None else self.smoothed + alpha * (latency_s - self.smoothed)
        if self.baseline is None:
            self.baseline = self.smoothed
        else:
            self.baseline = min(self.baseline * (1 + self.baseline_drift), self.smoothed)
        if self.smoothed > self.latency_tolerance * self.baseline:
            self._decrease(started)
            return
        if self.in_use + 1 >= self.limit * 0.9:  # only grow a limit that is being used
            self._limit = min(self.max_limit, self._limit + (1 if self.slow_start else 1 / self._limit))
            self._wake()

    def _decrease(self, started: float) -> None:
        if started < self._last_decrease:
            return  # sent before the last decrease: already accounted for
        self.slow_start = False
        self._limit = max(self.min_limit, self._limit * self.backoff)
        self._last_decrease = self._clock()
        self.decreases += 1


def limit_for(concurrency: int | str, max_limit: int = 256) -> ConcurrencyLimit:
    """`PAIRSTREAM_CONCURRENCY`: an integer, or `auto`."""
    if concurrency == "auto":
        return AIMDLimit(max_limit=max_limit)
    return ConcurrencyLimit(int(concurrency))
