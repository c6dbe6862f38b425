"""How many LLM requests a worker keeps in flight: a fixed number, or one that adapts to the backend.

`PAIRSTREAM_CONCURRENCY=N` is a `ConcurrencyLimit` of N. `auto` is an `AIMDLimit`:
it probes upwards while the backend keeps up and backs off when it says it
cannot, so it finds a backend's slot count without being told:
- additive increase: +1 per success in slow start (doubling per round trip),
  then +1 per four round trips (probing gently keeps 429s rare), and only while
  the limit is actually used (an idle worker does not inflate it);
- multiplicative decrease: x0.9 on a 429 or 503; x0.5 when the smoothed latency
  passes twice its baseline (a queueing backend such as vLLM never says 429, it
  just gets slower: latency doubles at about twice its slots, and half of that
  still keeps every slot busy). At most one decrease per round trip: signals of
  requests sent before the last decrease are about the old limit and are
  ignored, so one overshoot cannot collapse the limit.
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
                 latency_tolerance: float = 2.0, latency_backoff: float = 0.5, growth_rtts: float = 4.0,
                 clock=time.monotonic):
        super().__init__(initial, clock)
        self.min_limit, self.max_limit = min_limit, max_limit
        self.backoff = backoff
        self.latency_tolerance = latency_tolerance
        # A latency cut halves the limit: from about twice the slots (where latency doubles) down to about the
        # slots, so the backend stays full and its queue drains, which lets the baseline see the true latency.
        self.latency_backoff = latency_backoff
        self.growth_rtts = growth_rtts  # after slow start: +1 per this many round trips
        self.slow_start = True
        self.smoothed: float | None = None  # EWMA of latency over about `limit` samples
        self._min_now = self._min_before = float("inf")  # lowest smoothed latency, this epoch and the last
        self._samples = 0
        self.decreases = 0
        self._last_decrease = float("-inf")

    @property
    def baseline(self) -> float:
        """The backend's unloaded latency: the lowest smoothed latency of this epoch and the one before
        (an epoch is about 50 round trips), so a backend that got slower for good is learnt within two."""
        return min(self._min_now, self._min_before)

    def on_result(self, started: float, *, ok: bool, overloaded: bool = False) -> None:
        if overloaded:
            self._decrease(started, self.backoff)
            return
        if not ok:
            return
        latency_s = self._clock() - started
        self._track_latency(latency_s)
        if self.smoothed > self.latency_tolerance * self.baseline:
            self._decrease(started, self.latency_backoff)
            return
        if self.in_use + 1 >= self.limit * 0.9:  # only grow a limit that is being used
            step = 1 if self.slow_start else 1 / (self.growth_rtts * self._limit)
            self._limit = min(self.max_limit, self._limit + step)
            self._wake()

    def _track_latency(self, latency_s: float) -> None:
        n = max(10, self.limit)
        self.smoothed = latency_s if self.smoothed is None else self.smoothed + 2 / (n + 1) * (latency_s - self.smoothed)
        self._min_now = min(self._min_now, self.smoothed)
        self._samples += 1
        if self._samples >= 50 * n:
            self._min_before, self._min_now, self._samples = self._min_now, float("inf"), 0

    def _decrease(self, started: float, factor: float) -> None:
        if started < self._last_decrease:
            return  # sent before the last decrease: already accounted for
        self.slow_start = False
        self._limit = max(self.min_limit, self._limit * factor)
        self._last_decrease = self._clock()
        self.decreases += 1


def limit_for(concurrency: int | str, max_limit: int = 256) -> ConcurrencyLimit:
    """`PAIRSTREAM_CONCURRENCY`: an integer, or `auto`."""
    if concurrency == "auto":
        return AIMDLimit(max_limit=max_limit)
    return ConcurrencyLimit(int(concurrency))
