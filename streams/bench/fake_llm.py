"""A fake OpenAI-compatible chat-completions server on loopback, for tests and `pairstream bench`.

It answers like a well-behaved model by default (a valid pair derived from the
anchor, JSON or `## Positive` text depending on `response_format`), and a
`behaviour` callable can script anything else: status codes, Retry-After,
malformed output, slow or never-answering requests. `slots` bounds how many
requests it serves at once (others queue, or get 429 beyond `max_queue`), which
is a backend of known capacity; `GET /stats` reports how busy its slots were.
It runs its own event loop in a thread so synchronous tests and subprocess
workers can share it; `python -m streams.bench.fake_llm` serves one in its own
process (what `pairstream bench` does, so the backend never competes with the
measuring process for the GIL).
"""

import argparse
import asyncio
import hashlib
import math
import random
import re
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson
from aiohttp import web

from streams.bench.loopback import LoopbackServer


@dataclass
class Reply:
    """What the fake answers to one request."""

    content: str | None = None  # None: the default valid pair
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    finish_reason: str = "stop"
    delay_s: float | None = None  # None: the server's latency model
    body: bytes | None = None  # raw body, overrides everything (for malformed responses)
    drop: bool = False  # close the connection without answering (a reset / crashed backend)


_ANCHOR = re.compile(r"## Anchor\s*\n\s*\n?(.*)\Z", re.DOTALL)


def anchor_of(request: dict[str, Any]) -> str:
    """The anchor from the last user turn of a pairstream prompt."""
    text = request["messages"][-1]["content"]
    m = _ANCHOR.search(text)
    anchor = m.group(1) if m else text
    return anchor.split("\nNote:")[0].strip()


def is_first_ask(request: dict[str, Any]) -> bool:
    """A pairstream prompt's first attempt for its anchor: no correction note (a re-ask carries one)."""
    return "\nNote:" not in request["messages"][-1]["content"]


def echo_pair(request: dict[str, Any]) -> tuple[str, str]:
    """A deterministic valid pair for the anchor: never equal to it, negative differs from positive."""
    anchor = anchor_of(request)
    return f"Put another way: {anchor[:200]}", f"Something unrelated to {len(anchor)} characters of text."


def render(request: dict[str, Any], positive: str, negative: str) -> str:
    wants_negative = "negative" in orjson.dumps(request.get("response_format") or {}).decode() or (
        "## Negative" in request["messages"][0]["content"]
    )
    if request.get("response_format"):
        obj = {"positive": positive, "negative": negative} if wants_negative else {"positive": positive}
        return orjson.dumps(obj).decode()
    text = f"## Positive\n\n{positive}\n"
    return f"{text}\n## Negative\n\n{negative}\n" if wants_negative else text


def hash_vector(text: str, dimensions: int) -> list[float]:
    """A deterministic, not unit-length vector for `text` (answers come in reverse order: clients sort by index)."""
    digest = hashlib.sha256(text.encode()).digest() * (1 + dimensions // 32)
    return [(b - 127.5) / 10 for b in digest[:dimensions]]


class FakeLLM(LoopbackServer):
    """`with FakeLLM() as llm: ... llm.base_url ...`; `llm.requests` holds every request body seen."""

    thread_name = "fake LLM"

    def __init__(self, behaviour: Callable[[dict[str, Any], int], Reply | None] | None = None, *,
                 slots: int = 1024, latency_s: float = 0.0, sigma: float = 0.0, model: str = "fake-model",
                 seed: int = 0, max_queue: int | None = None, port: int | None = None, keep_requests: bool = True,
                 embed_dimensions: int = 8, embed_behaviour: Callable[[dict[str, Any], int], Reply | None] | None = None):
        self.behaviour = behaviour
        self.slots = slots
        self.latency_s = latency_s
        self.sigma = sigma
        self.max_queue = max_queue  # None: unbounded queue; else 429 when more than this many wait for a slot
        self.model = model
        super().__init__(port)
        self.keep_requests = keep_requests
        self.models_status = 200  # what GET /models answers (401: a server that refuses the API key)
        self.embed_dimensions = embed_dimensions  # /v1/embeddings: deterministic vectors from each text's hash
        self.embed_behaviour = embed_behaviour
        self.embed_requests: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0  # holding a slot
        self.max_in_flight = 0
        self.received = 0
        self.first_asks: Counter[str] = Counter()  # anchor -> first attempts received (more than 1: paid twice)
        self.waiting = 0  # queued for a slot
        self.served = 0
        self.rejected = 0  # 429 because the queue was full
        self.busy_s = 0.0  # slot-seconds spent serving
        self.started_at = time.monotonic()
        self._rng = random.Random(seed)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def mean_latency_s(self) -> float:
        """Mean of the latency model: median * exp(sigma^2 / 2) for a lognormal."""
        return self.latency_s * math.exp(self.sigma**2 / 2)

    @property
    def capacity(self) -> float:
        """Requests per second the slots can serve when always busy (slots / mean latency)."""
        return self.slots / self.mean_latency_s if self.latency_s > 0 else math.inf

    def sample_latency(self) -> float:
        if self.latency_s <= 0:
            return 0.0
        return self.latency_s * (self._rng.lognormvariate(0, self.sigma) if self.sigma else 1.0)

    @property
    def repeated_first_asks(self) -> int:
        """First attempts for an anchor that had already been asked for: LLM work paid twice (redeliveries)."""
        return sum(n - 1 for n in self.first_asks.values())

    def stats(self) -> dict[str, Any]:
        return {"served": self.served, "rejected": self.rejected, "busy_s": self.busy_s, "slots": self.slots,
                "repeated_first_asks": self.repeated_first_asks, "in_flight": self.in_flight, "waiting": self.waiting,
                "max_in_flight": self.max_in_flight,
                "uptime_s": time.monotonic() - self.started_at}

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        n = self.received  # arrival index, what `behaviour` scripts against
        self.received += 1
        if is_first_ask(body):
            self.first_asks[anchor_of(body)] += 1
        if self.keep_requests:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
        if self.max_queue is not None and self.in_flight + self.waiting >= self.slots + self.max_queue:
            self.rejected += 1
            err = {"error": {"message": "server overloaded, retry later", "code": 429}}
            return web.Response(body=orjson.dumps(err), status=429, content_type="application/json")
        self.waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1
        started = time.monotonic()
        try:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                reply = (self.behaviour(body, n) if self.behaviour else None) or Reply()
                delay = self.sample_latency() if reply.delay_s is None else reply.delay_s
                if delay:
                    await asyncio.sleep(delay)
                if reply.drop:
                    request.transport.close()
                    return web.Response()  # never reaches the client: the connection is gone
                if reply.body is not None:
                    return web.Response(body=reply.body, status=reply.status, headers=reply.headers,
                                        content_type="application/json")
                if reply.status >= 400:
                    err = {"error": {"message": reply.content or f"fake error {reply.status}", "code": reply.status}}
                    return web.Response(body=orjson.dumps(err), status=reply.status, headers=reply.headers,
                                        content_type="application/json")
                content = reply.content if reply.content is not None else render(body, *echo_pair(body))
                return web.Response(body=orjson.dumps(self.completion(content, reply.finish_reason)),
                                    headers=reply.headers, content_type="application/json")
            finally:
                self.in_flight -= 1
                self.served += 1
                self.busy_s += time.monotonic() - started
        finally:
            self._sem.release()

    def completion(self, content: str, finish_reason: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 50, "completion_tokens": max(1, len(content) // 4),
                      "total_tokens": 50 + max(1, len(content) // 4)},
        }

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        n = len(self.embed_requests)
        self.embed_requests.append(body)
        reply = (self.embed_behaviour(body, n) if self.embed_behaviour else None) or Reply()
        if reply.body is not None or reply.status >= 400:
            payload = reply.body or orjson.dumps({"error": {"message": reply.content or "fake error"}})
            return web.Response(body=payload, status=reply.status, headers=reply.headers,
                                content_type="application/json")
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": hash_vector(t, self.embed_dimensions)}
                for i, t in enumerate(texts)]
        return web.json_response({"object": "list", "model": body.get("model", self.model), "data": data[::-1],
                                  "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}})

    async def _models(self, request: web.Request) -> web.Response:
        if self.models_status != 200:
            return web.json_response({"error": {"message": "refused"}}, status=self.models_status)
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(self.stats()), content_type="application/json")


    def make_app(self) -> web.Application:
        self._sem = asyncio.Semaphore(self.slots)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/stats", self._stats)
        return app

    def start(self) -> "FakeLLM":
        """Start serving (again, after `stop()`: same port, so a restart looks like a backend coming back)."""
        self.started_at = time.monotonic()
        return super().start()

def main(argv: list[str] | None = None) -> None:
    """Serve a fake backend of known capacity in this process until SIGTERM/SIGINT."""
    ap = argparse.ArgumentParser(prog="python -m streams.bench.fake_llm", description=main.__doc__)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--slots", type=int, default=32)
    ap.add_argument("--latency-ms", type=float, default=500.0, help="median latency")
    ap.add_argument("--sigma", type=float, default=0.6, help="lognormal sigma of the latency")
    ap.add_argument("--max-queue", type=int, default=None, help="429 when more requests than this wait for a slot")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover
        pass
    llm = FakeLLM(slots=args.slots, latency_s=args.latency_ms / 1000, sigma=args.sigma, max_queue=args.max_queue,
                  seed=args.seed, port=args.port, keep_requests=False).start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"fake LLM listening on {llm.base_url}", flush=True)
    stop.wait()
    llm.stop()


if __name__ == "__main__":
    main()
