"""A fake Text Embeddings Inference (TEI) `/v1/embeddings` on loopback that enforces TEI's request limits, and
its `/rerank` (a cross-encoder's scores, given by the test).

What it copies from TEI (router/src/http/server.rs, core/src/tokenization.rs):
- more than `max_client_batch_size` inputs (TEI's default: 32) -> HTTP 413,
  `{"message": "batch size 33 > maximum allowed batch size 32", "code": 413, "type": "Validation"}`;
- without `--auto-truncate` (`auto_truncate=False`: the default of TEI releases since the flag came in, 2024;
  TEI's main branch now turns it on), an input longer than the model's `max_input_length` (512 for
  BERT-family models) -> HTTP 413, `{"message": "Input validation error: `inputs` must have less than 512
  tokens. Given: 1002", ...}`; the whole request fails for one such input; with `auto_truncate=True` it is
  cut to the bound instead.

Tokens are counted crudely, as ceil(characters / 4) + 2 (the [CLS] and [SEP] a BERT tokenizer adds): about
what WordPiece gives for English prose. A vector is `hash_vector` of the text the server embedded (after its
own truncation, if any), so a test can compute what every text's vector must be. Like `FakeLLM`, it runs its
own event loop in a thread (`LoopbackServer`).
"""

import math

import orjson
from aiohttp import web

from streams.bench.fake_llm import hash_vector
from streams.bench.loopback import LoopbackServer


def crude_tokens(text: str) -> int:
    """ceil(characters / 4) word pieces, plus [CLS] and [SEP]."""
    return math.ceil(len(text) / 4) + 2


class FakeTEI(LoopbackServer):
    """`with FakeTEI() as tei: ... tei.base_url ...`; `tei.requests` holds each request's inputs and status."""

    thread_name = "fake TEI"

    def __init__(self, *, max_client_batch_size: int = 32, max_input_length: int = 512, auto_truncate: bool = False,
                 dimensions: int = 8, model: str = "sentence-transformers/all-MiniLM-L6-v2",
                 rerank: dict[tuple[str, str], float] | None = None):
        self.rerank_scores = rerank or {}  # (query, text) -> what /rerank answers (0.0 for a pair not listed)
        self.rerank_requests: list[dict] = []
        self.rerank_failures = 0  # answer this many /rerank requests with HTTP 503 first (a restarting server)
        self.max_client_batch_size = max_client_batch_size
        self.max_input_length = max_input_length
        self.auto_truncate = auto_truncate
        self.dimensions = dimensions
        self.model = model
        super().__init__()
        self.requests: list[tuple[list[str], int]] = []  # (inputs, status) of every POST, in arrival order

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def sizes(self, status: int | None = None) -> list[int]:
        """How many inputs each request carried (only those answered with `status`, if given)."""
        return [len(inputs) for inputs, code in self.requests if status is None or code == status]

    def embedded(self, text: str) -> str:
        """The text TEI would embed for `text` (cut to the token bound only with auto-truncation)."""
        if self.auto_truncate and crude_tokens(text) > self.max_input_length:
            return text[:(self.max_input_length - 2) * 4]
        return text

    def vector(self, text: str) -> list[float]:
        return hash_vector(self.embedded(text), self.dimensions)

    def _error(self, inputs: list[str], message: str) -> web.Response:
        self.requests.append((inputs, 413))
        return web.json_response({"message": message, "code": 413, "type": "Validation"}, status=413)

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if len(inputs) > self.max_client_batch_size:
            return self._error(inputs, f"batch size {len(inputs)} > maximum allowed batch size "
                                       f"{self.max_client_batch_size}")
        for text in inputs:
            tokens = crude_tokens(self.embedded(text))
            if tokens > self.max_input_length:
                return self._error(inputs, f"Input validation error: `inputs` must have less than "
                                           f"{self.max_input_length} tokens. Given: {tokens}")
        self.requests.append((inputs, 200))
        data = [{"object": "embedding", "embedding": self.vector(t), "index": i} for i, t in enumerate(inputs)]
        used = sum(crude_tokens(self.embedded(t)) for t in inputs)
        return web.json_response({"object": "list", "data": data, "model": self.model,
                                  "usage": {"prompt_tokens": used, "total_tokens": used}})


    async def _rerank(self, request: web.Request) -> web.Response:
        """TEI's /rerank: `{"query", "texts"}` -> `[{"index", "score"}]`, best first (as TEI sorts them)."""
        body = orjson.loads(await request.read())
        self.rerank_requests.append(body)
        if self.rerank_failures:
            self.rerank_failures -= 1
            return web.json_response({"error": "Model is overloaded", "error_type": "overloaded"}, status=503)
        scores = [self.rerank_scores.get((body["query"], text), 0.0) for text in body["texts"]]
        ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
        return web.json_response([{"index": i, "score": scores[i]} for i in ranked])

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=2_000_000)  # TEI's default --payload-limit
        app.router.add_post("/rerank", self._rerank)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/embeddings", self._embeddings)
        return app
