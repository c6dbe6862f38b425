"""The local embedding model behind the same retries and outage gate as a remote one.

ONNX Runtime can fail a call without the process dying (an allocation failure, a
corrupted session after a thread fault, a driver reset). Treated as a bad pair, each
such failure would dead-letter the anchors of its batch at once. Treated as what it
is, a backend outage, it holds them: a failed call is retried with backoff, three in
a row open the gate (`streams.generate.outage`), and the waiting anchors stay in
the agent until one probe succeeds; only the batches actually run spend retries.
"""

import asyncio
from typing import Awaitable, Callable

import numpy as np

from streams.generate.llm import LLMError
from streams.generate.outage import OutageGate
from streams.generate.resilience import RetryPolicy
from streams.quality.embedder import Embedder, EmbeddingError, backend_call


class GuardedEmbedder:
    def __init__(self, embedder: Embedder, *, retry: RetryPolicy | None = None, gate: OutageGate | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.embedder = embedder
        self.name = embedder.name
        self.retry = retry or RetryPolicy()
        self.gate = gate or OutageGate(backend="embedding model")
        self._sleep = sleep

    async def _once(self, texts: list[str]) -> np.ndarray:
        try:
            return await self.embedder.embed(texts)
        except EmbeddingError as exc:
            raise LLMError(exc.kind, str(exc), retryable=exc.retryable, outage=exc.retryable) from None
        except Exception as exc:  # the model failed this call: an outage of the backend, not a fault of the texts
            raise LLMError("embedding_failed", f"{type(exc).__name__}: {exc}"[:300], retryable=True,
                           outage=True) from None

    async def embed(self, texts: list[str]) -> np.ndarray:
        return await backend_call("embedding model", lambda: self._once(texts), retry=self.retry, gate=self.gate,
                                  sleep=self._sleep)

    @property
    def token_vectors(self):
        """The wrapped model's token vectors, if it keeps them (the in-process model does)."""
        return getattr(self.embedder, "token_vectors", None)

    async def aclose(self) -> None:
        close = getattr(self.embedder, "aclose", None)
        if close is not None:
            await close()
