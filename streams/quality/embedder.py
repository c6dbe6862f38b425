"""What every embedding backend offers: unit-length vectors for a batch of texts, and its model's name."""

from typing import Any, Awaitable, Callable, Mapping, Protocol

import numpy as np

from streams.generate.llm import LLMError
from streams.generate.outage import OutageGate
from streams.generate.resilience import RetryPolicy, call_with_retries


class EmbeddingError(Exception):
    """The backend could not embed a batch: `kind` names why, `retryable` whether trying again may help."""

    def __init__(self, kind: str, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable


class Embedder(Protocol):
    name: str  # the model that made the vectors, stored with every score

    async def embed(self, texts: list[str]) -> np.ndarray:
        """One row per text, L2-normalised (so a dot product is the cosine). Raises EmbeddingError."""
        ...


def normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)


async def backend_call(what: str, call: Callable[[], Awaitable[Any]], *, retry: RetryPolicy, gate: OutageGate | None,
                       sleep: Callable[[float], Awaitable[None]],
                       errors: Mapping[int, type[EmbeddingError]] | None = None) -> Any:
    """`call()` with the LLM client's retries and outage gate, its LLMError raised as the EmbeddingError of
    `what` (the quality package's backends, the embedder's and the reviewers', fail with that one type), or as
    the subclass `errors` names for its HTTP status (the remote embedder's 413: `TooLarge`)."""
    try:
        return await call_with_retries(call, retry=retry, gate=gate, sleep=sleep)
    except LLMError as exc:
        error = (errors or {}).get(exc.status, EmbeddingError)
        raise error(exc.kind, f"{what}: {exc}", retryable=exc.retryable) from None
