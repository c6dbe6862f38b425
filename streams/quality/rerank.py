"""A second opinion from a cross-encoder behind a `/rerank` endpoint (off unless PAIRSTREAM_REVIEW_RERANK_URL is set).

A bi-encoder embeds each sentence alone, so an invented place or a swapped role barely moves the pooled
cosine (0.8-0.9). A cross-encoder reads the two sentences together, token against token, which is what
tells "a man is firing a rifle" from "a man is shot with his rifle". An STS cross-encoder
(`cross-encoder/stsb-roberta-large`, scores 0-1) or a reranker served by TEI, Infinity or vLLM answers
one request per pair: the anchor is the query, the positive and the negative the texts.

Two request forms, `PAIRSTREAM_REVIEW_RERANK_API`:
- `tei`: `POST {url}` `{"query", "texts", "truncate": true}` -> `[{"index", "score"}]` (TEI's `/rerank`);
- `cohere`: `POST {url}` `{"model", "query", "documents"}` -> `{"results": [{"index", "relevance_score"}]}`
  (Cohere's, Jina's, Infinity's and vLLM's `/v1/rerank`).
Either answer is read. The request goes through the LLM client's HTTP path and the same retries and outage
gate as the embedder, so a reranker that is down holds anchors instead of failing them.
"""

import asyncio
import math
from typing import Awaitable, Callable, Literal

import orjson
from pydantic import SecretStr

from streams.generate.llm import LLMClient
from streams.generate.outage import OutageGate
from streams.generate.resilience import RetryPolicy
from streams.generate.validation import Problem
from streams.quality.llm_review import Review
from streams.quality.embedder import EmbeddingError, backend_call


class RerankReviewer:
    name = "rerank"

    def __init__(self, url: str, *, model: str = "", api: Literal["tei", "cohere"] = "tei",
                 min_positive: float = 0.75, max_negative: float = 0.5, api_key: SecretStr | None = None,
                 timeout_s: float = 30.0, retry: RetryPolicy | None = None, gate: OutageGate | None = None,
                 max_connections: int = 8, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        base, _, self.path = url.rstrip("/").rpartition("/")
        self.path = "/" + self.path
        self.client = LLMClient(base, api_key=api_key, timeout_s=timeout_s, max_connections=max_connections)
        self.model, self.api = model, api
        self.min_positive, self.max_negative = min_positive, max_negative
        self.retry = retry or RetryPolicy()
        self.gate = gate or OutageGate(backend="reranker")
        self._sleep = sleep

    def body(self, query: str, texts: list[str]) -> dict:
        if self.api == "tei":
            return {"query": query, "texts": texts, "truncate": True}
        return {"model": self.model, "query": query, "documents": texts}

    async def scores(self, query: str, texts: list[str]) -> list[float]:
        """The cross-encoder's score of each text with `query`, in the texts' order."""
        resp = await backend_call("reranker", lambda: self.client.post(self.path, self.body(query, texts)),
                                  retry=self.retry, gate=self.gate, sleep=self._sleep)
        return parse_scores(resp.content, len(texts))

    async def review(self, anchor: str, positive: str, negative: str | None) -> Review:
        texts = [positive] + ([negative] if negative is not None else [])
        found = []
        scores = await self.scores(anchor, texts)
        if scores[0] < self.min_positive:
            found.append(Problem("rerank_positive", f"a cross-encoder scores the positive {scores[0]:.2f} with the "
                                                    f"anchor, below {self.min_positive}; it must mean the same"))
        if len(scores) > 1 and scores[1] > self.max_negative:
            found.append(Problem("rerank_negative", f"a cross-encoder scores the negative {scores[1]:.2f} with the "
                                                    f"anchor, above {self.max_negative}; it must mean something else"))
        return Review(found)

    async def aclose(self) -> None:
        await self.client.aclose()


def parse_scores(content: bytes, expected: int) -> list[float]:
    """Scores from a TEI list or a Cohere-style `results` object, by index; anything else is an error."""
    try:
        data = orjson.loads(content)
        items = data["results"] if isinstance(data, dict) else data
        by_index = {int(item["index"]): item["score"] if "score" in item else item["relevance_score"]
                    for item in items}
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise EmbeddingError("bad_response", f"reranker: not a rerank response ({exc!r})"[:300]) from None
    if sorted(by_index) != list(range(expected)):
        raise EmbeddingError("bad_response", f"reranker: scores for {sorted(by_index)}, expected 0..{expected - 1}")
    scores = [by_index[i] for i in range(expected)]
    if not all(isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s) for s in scores):
        raise EmbeddingError("bad_response", "reranker: a score is not a finite number")
    return [float(s) for s in scores]
