"""How many LLM requests a worker keeps in flight: a fixed number, or one that adapts to the backend.

`PAIRSTREAM_CONCURRENCY=N` is a `ConcurrencyLimit` of N. `auto` is an `AIMDLimit`:
it probes upwards while the backend keeps up and backs off when it says it
cannot, so it finds a backend's slot count without being told:
- additive increase: +1 per success in slow start (doubling per round trip),
  then +1 per four round trips (probing gently keeps 429s rare), and only while
  the limit is actually used (an idle worker does not inflate it);
- multiplicative decrease: x0.9 on a 429 or 503; x0.5 when the smoothed latency
  passes twice its baseline by more than its noise explains (a queueing backend
  such as vLLM never says 429, it just gets slower: latency doubles at about
  twice its slots, and half of that still keeps every slot busy). LLM latency is
  heavy-tailed, so latency is smoothed in log space over at least 50 answers and
  the baseline only rises after a whole epoch at or below the limit it was
  measured at. At most one decrease per round trip: signals of
  requests sent before the last decrease are about the old limit and are
  ignored, so one overshoot cannot collapse the limit.
The limit applies to HTTP requests, not to retry back-off sleeps: a request
waiting to retry does not hold a slot.
"""

import asyncio
import math
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

    @property
    def ceiling(self) -> int:
        """The most the limit can ever be (what a connection pool must allow)."""
        return self.limit

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
                 epoch_windows: int = 10,
                 clock=time.monotonic):
        super().__init__(initial, clock)
        self.min_limit, self.max_limit = min_limit, max_limit
        self.backoff = backoff
        self.latency_tolerance = latency_tolerance
        # A latency cut halves the limit: from about twice the slots (where latency doubles) down to about the
        # slots, so the backend stays full and its queue drains, which lets the baseline see the true latency.
        self.latency_backoff = latency_backoff
        self.growth_rtts = growth_rtts  # after slow start: +1 per this many round trips
        self.epoch_windows = epoch_windows
        self.slow_start = True
        self.smoothed: float | None = None  # EWMA of log(latency)
        self._variance = 0.0  # EWMA of the squared deviation of log(latency)
        self._noise = 0.0
        self._base = self._base_limit = float("inf")  # see `baseline`
        self._epoch_min = float("inf")
        self._epoch_below = True
        self._samples = 0
        self._since_decrease = 0
        self.decreases = 0
        self._last_decrease = float("-inf")

    @property
    def baseline(self) -> float:
        """The backend's unloaded log-latency: the lowest smoothed value seen. It only moves up after a
        whole epoch (`epoch_windows` smoothing windows) spent at or below the limit it was measured at, so
        a standing queue cannot raise it, but a backend that got slower for good is learnt once the
        latency cuts have brought the limit down there."""
        return self._base

    def on_result(self, started: float, *, ok: bool, overloaded: bool = False) -> None:
        if overloaded:
            self._decrease(started, self.backoff)
            return
        if not ok:
            return
        latency_s = self._clock() - started
        self._track_latency(latency_s, after_decrease=started >= self._last_decrease)
        if self._latency_settled and self.queueing:
            self._decrease(started, self.latency_backoff)
            return
        if self.in_use + 1 >= self.limit * 0.9:  # only grow a limit that is being used
            step = 1 if self.slow_start else 1 / (self.growth_rtts * self._limit)
            self._limit = min(self.max_limit, self._limit + step)
            self._wake()

    def _track_latency(self, latency_s: float, after_decrease: bool) -> None:
        # LLM latency is noisy (lognormal, sigma 0.6 to 1 and more), so it is smoothed in log space over at
        # least 50 samples, and its noise is tracked too: only a rise well beyond the noise reads as queueing.
        n = max(50, 2 * self.limit)
        alpha = 2 / (n + 1)
        x = math.log(max(latency_s, 1e-6))
        if self.smoothed is None:
            self.smoothed = x
        else:
            self._variance += alpha * ((x - self.smoothed) ** 2 - self._variance)
            self.smoothed += alpha * (x - self.smoothed)
        self._noise = math.sqrt(self._variance * alpha / (2 - alpha))  # standard deviation of `smoothed`
        self._since_decrease += after_decrease
        if self.smoothed < self._base:
            self._base, self._base_limit = self.smoothed, self.limit
        if self.limit > self._base_limit:
            self._epoch_below = False
        self._epoch_min = min(self._epoch_min, self.smoothed)
        self._samples += 1
        if self._samples >= self.epoch_windows * n:
            if self._epoch_below:  # a whole epoch at no more than the baseline's limit, and still slower
                self._base, self._base_limit = self._epoch_min, self.limit
            self._epoch_min, self._samples, self._epoch_below = float("inf"), 0, True

    @property
    def queueing(self) -> bool:
        """Smoothed latency is `latency_tolerance` times its baseline, beyond what its noise explains
        (the baseline, a minimum, sits about three standard deviations low)."""
        return self.smoothed - self.baseline > math.log(self.latency_tolerance) + 3 * self._noise

    @property
    def _latency_settled(self) -> bool:
        """Enough samples of requests sent since the last decrease for the smoothed latency to describe
        the new limit (requests sent before it still carry the old queue)."""
        return self._since_decrease >= max(50, 2 * self.limit)

    @property
    def ceiling(self) -> int:
        return self.max_limit

    def _decrease(self, started: float, factor: float) -> None:
        if started < self._last_decrease:
            return  # sent before the last decrease: already accounted for
        self.slow_start = False
        self._limit = max(self.min_limit, self._limit * factor)
        self._last_decrease = self._clock()
        self._since_decrease = 0
        self.decreases += 1


def limit_for(concurrency: int | str, max_limit: int = 256) -> ConcurrencyLimit:
    """`PAIRSTREAM_CONCURRENCY`: an integer, or `auto`."""
    if concurrency == "auto":
        return AIMDLimit(max_limit=max_limit)
    return ConcurrencyLimit(int(concurrency))
