"""A worker-wide circuit breaker for backend outages (the LLM, the embedding model): wait, do not burn retries.

Without it every in-flight anchor retries on its own during an outage, spends its
retries in seconds and becomes a dead letter, and the worker moves on to the next
anchors and does the same: an outage floods the dead-letter topic. With it, after
`failures_to_open` consecutive outage errors (connection refused, timeout, 5xx) all
requests hold before sending; one probe goes out after a cooldown that doubles up
to `max_cooldown_s`, and its success lets everyone through again. While the gate
is open only the probe's own result moves it: requests sent before it opened may
still answer or fail, and must not reset the probe or stretch the cool-down. Held
anchors stay in the agent, which holds at most twice the concurrency, so it stops
pulling and the consumer pauses: an outage slows the worker down instead of failing anchors. Only
requests that are actually sent spend retries.
"""

import asyncio
import logging
import time
from typing import Callable

log = logging.getLogger("pairstream.llm")


class OutageGate:
    def __init__(self, failures_to_open: int = 3, cooldown_s: float = 1.0, max_cooldown_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic, backend: str = "LLM backend"):
        self.backend = backend  # named in the log lines
        self.failures_to_open = failures_to_open
        self.base_cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.clock = clock
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self.open_until = 0.0
        self.cooldown_s = cooldown_s
        self.probing = False
        self.outages = 0
        self._closed = asyncio.Event()
        self._closed.set()

    @property
    def is_open(self) -> bool:
        return self.opened_at is not None

    async def wait(self) -> bool:
        """Return when a request may be sent: the gate is closed (False), or this request is the probe (True)."""
        while self.is_open:
            now = self.clock()
            if not self.probing and now >= self.open_until:
                self.probing = True
                return True
            timeout = max(0.05, self.open_until - now) if not self.probing else 1.0
            try:
                await asyncio.wait_for(self._closed.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return False

    def probe_abandoned(self) -> None:
        """The probe was cancelled before it got an answer (shutdown): let another request probe."""
        self.probing = False

    def success(self, probe: bool = False) -> None:
        """The backend answered (any answer that is not an outage error, including a 4xx).

        `probe`: this was the probe's answer. While the gate is open, other answers are stale and ignored.
        """
        if self.is_open and not probe:
            return
        self.consecutive_failures = 0
        if self.is_open:
            log.warning("%s is back after %.1fs; resuming requests", self.backend, self.clock() - self.opened_at)
            self.opened_at = None
            self.probing = False
            self.cooldown_s = self.base_cooldown_s
            self._closed.set()

    def failure(self, reason: str, probe: bool = False) -> None:
        """An outage error: connection refused or reset, timeout, or HTTP 5xx.

        `probe`: this was the probe's failure. While the gate is open, other failures are stale and ignored.
        """
        if self.is_open and not probe:
            return
        self.consecutive_failures += 1
        if self.failures_to_open <= 0:
            return
        now = self.clock()
        if self.is_open:  # the probe failed: wait longer before the next one
            self.probing = False
            self.cooldown_s = min(self.max_cooldown_s, self.cooldown_s * 2)
            self.open_until = now + self.cooldown_s
        elif self.consecutive_failures >= self.failures_to_open:
            self.opened_at = now
            self.open_until = now + self.cooldown_s
            self.outages += 1
            self._closed.clear()
            log.warning("%s unavailable (%d failures in a row, last: %s); holding requests, probing every "
                        "%.0f-%.0fs", self.backend, self.consecutive_failures, reason, self.base_cooldown_s,
                        self.max_cooldown_s)
