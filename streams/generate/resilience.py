"""One logical request to an OpenAI-compatible server, with transport retries behind an outage gate.

Shared by chat completions (`generator`) and the quality gate's embeddings (`streams.quality.remote`), so
both back off, honour `Retry-After`, hold during an outage and let only the probe's own answer move the gate
in exactly the same way.
"""

import random
from typing import Awaitable, Callable, TypeVar

from pydantic import BaseModel

from streams.generate.llm import LLMError
from streams.generate.outage import OutageGate

T = TypeVar("T")


class RetryPolicy(BaseModel):
    """Backoff of transport retries: delay = uniform(0, min(max, base * 2**retry)), or Retry-After (capped)."""

    max_retries: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 20.0
    retry_after_max_s: float = 60.0

    def delay(self, retry: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_max_s)
        return random.uniform(0, min(self.backoff_max_s, self.backoff_base_s * 2**retry))


async def call_with_retries(call: Callable[[], Awaitable[T]], *, retry: RetryPolicy, gate: OutageGate,
                            sleep: Callable[[float], Awaitable[None]],
                            on_send: Callable[[], None] = lambda: None,
                            on_retry: Callable[[LLMError], None] = lambda exc: None) -> T:
    """`await call()` until it succeeds, a non-retryable LLMError, or `retry.max_retries` retries are spent
    (the last LLMError propagates). Each send waits at the gate first; only sent requests spend retries."""
    for attempt in range(retry.max_retries + 1):
        is_probe = await gate.wait()
        on_send()
        try:
            result = await call()
        except LLMError as exc:
            if exc.outage:
                gate.failure(exc.kind, probe=is_probe)
            else:
                gate.success(probe=is_probe)
            if not exc.retryable or attempt == retry.max_retries:
                if exc.retryable:
                    exc.args = (f"{exc} (gave up after {attempt + 1} tries)",)
                raise
            on_retry(exc)
            await sleep(retry.delay(attempt, exc.retry_after))
            continue
        except BaseException:
            if is_probe:
                gate.probe_abandoned()
            raise
        gate.success(probe=is_probe)
        return result
    raise AssertionError("unreachable")
