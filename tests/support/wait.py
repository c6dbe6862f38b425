"""One way to wait in a test: poll a condition until it holds, fail with what was last seen."""

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def wait_until(probe: Callable[[], T], timeout: float = 60, what: str = "the condition", interval: float = 0.1) -> T:
    """Call `probe` until it returns something truthy and return that; AssertionError after `timeout` seconds.

    `probe` may raise AssertionError to fail at once (a process that died), other exceptions count as "not yet".
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = probe()
            if value:
                return value
            last = value
        except AssertionError:
            raise
        except Exception as exc:  # not ready yet (a connection refused, a file not there)
            last = repr(exc)
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not happen within {timeout:.0f}s; last seen: {last!r}"[:3000])
        time.sleep(interval)


def wait_in_flight(llm, n: int, timeout: float = 60) -> None:
    """Wait until the fake LLM (`streams.bench.fake_llm.FakeLLM`) is serving `n` requests at once."""
    wait_until(lambda: llm.in_flight >= n, timeout, f"{n} requests in flight at the fake LLM")
