"""Embeddings from any OpenAI-compatible `/v1/embeddings` (TEI, vLLM, Infinity, Ollama, llama.cpp, OpenAI).

It is the LLM client's HTTP path (`LLMClient.post`: the same error classes, timeout, and the API
key only in the Authorization header, scrubbed from errors) and the quality backends' one retry loop
(`embedder.backend_call`: backoff, Retry-After, the errors mapped) behind its own outage gate (`OutageGate`):
while the embedding server is down, requests hold and one probe goes out, so anchors wait instead of
failing. A response that is
not a list of one vector per text, all of one length (the first answer fixes it, unless
`dimensions` is given), finite, is an error, never a wrong score.

Two limits of embedding servers are met here and in the micro-batcher (`streams.quality.batcher`):
- *Input length.* Servers refuse an input longer than the model's window unless told to truncate (TEI
  without `--auto-truncate` answers HTTP 413 for an input over 512 tokens; vLLM and OpenAI answer 400),
  and the whole request fails with it. Each text is cut to `max_chars` characters before it is sent
  (PAIRSTREAM_EMBEDDINGS_MAX_CHARS, 1000: about 250 word pieces of English, half of BERT's 512; the
  in-process model reads only its first 256 tokens, about as much text).
- *Texts per request.* An HTTP 413 (TEI: more than `--max-client-batch-size` inputs, 32 by default,
  or an input still over the token limit) raises `TooLarge`, which the batcher answers by splitting
  the batch, never by resending it: the same body would be refused again.
"""

import asyncio
import math
from typing import Awaitable, Callable

import numpy as np
import orjson
from pydantic import SecretStr

from streams.generate.llm import LLMClient
from streams.generate.outage import OutageGate
from streams.generate.resilience import RetryPolicy
from streams.quality.embedder import EmbeddingError, backend_call, normalise


class TooLarge(EmbeddingError):
    """HTTP 413: the request had too many texts, or a text too long for the server. Split it, do not resend it."""

    too_large = True  # what `MicroBatcher` splits a batch on


class RemoteEmbedder:
    def __init__(self, base_url: str, model: str, *, api_key: SecretStr | None = None, timeout_s: float = 30.0,
                 retry: RetryPolicy | None = None, gate: OutageGate | None = None, dimensions: int | None = None,
                 max_connections: int = 8, max_chars: int | None = 1000,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.name = model
        self.max_chars = max_chars  # None: texts are sent whole
        self.client = LLMClient(base_url, api_key=api_key, timeout_s=timeout_s, max_connections=max_connections)
        self.retry = retry or RetryPolicy()
        self.gate = gate or OutageGate()
        self.dimensions = dimensions
        self._sleep = sleep

    async def aclose(self) -> None:
        await self.client.aclose()

    async def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimensions or 0), dtype=np.float32)
        if self.max_chars is not None:
            texts = [t[:self.max_chars] for t in texts]
        # 413 is not retryable (llm.RETRYABLE_STATUS): it comes straight back as TooLarge, not resent
        body = {"model": self.name, "input": texts}
        resp = await backend_call("embeddings", lambda: self.client.post("/embeddings", body), retry=self.retry,
                                  gate=self.gate, sleep=self._sleep, errors={413: TooLarge})
        return self.vectors(resp.content, len(texts))

    def vectors(self, content: bytes, expected: int) -> np.ndarray:
        try:
            data = orjson.loads(content)["data"]
            rows = [item["embedding"] for item in sorted(data, key=lambda item: item["index"])]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise EmbeddingError("bad_response", f"embeddings: not an embeddings response ({exc!r})"[:300]) from None
        if len(rows) != expected:
            raise EmbeddingError("bad_response", f"embeddings: {len(rows)} vectors for {expected} texts")
        lengths = {len(r) if isinstance(r, list) else -1 for r in rows}
        want = self.dimensions or (lengths.pop() if len(lengths) == 1 else None)
        if want is None or want <= 0 or any(not isinstance(r, list) or len(r) != want for r in rows):
            raise EmbeddingError("bad_dimensions", f"embeddings: vector lengths {sorted(lengths)}, expected "
                                                   f"{self.dimensions or 'one length'}")
        if not all(isinstance(x, (int, float)) and math.isfinite(x) for r in rows for x in r):
            raise EmbeddingError("bad_response", "embeddings: a vector holds something other than finite numbers")
        self.dimensions = want  # later answers must match the first
        return normalise(np.asarray(rows, dtype=np.float32))
