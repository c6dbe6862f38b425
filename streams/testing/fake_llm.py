"""A fake OpenAI-compatible chat-completions server on loopback, for tests and `pairstream bench`.

It answers like a well-behaved model by default (a valid pair derived from the
anchor, JSON or `## Positive` text depending on `response_format`), and a
`behaviour` callable can script anything else: status codes, Retry-After,
malformed output, slow or never-answering requests. `slots` bounds how many
requests it serves at once (others queue), which is a backend of known capacity.
It runs its own event loop in a thread so synchronous tests and subprocess
workers can share it.
"""

import asyncio
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson
from aiohttp import web

from streams.broker import free_port


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


class FakeLLM:
    """`with FakeLLM() as llm: ... llm.base_url ...`; `llm.requests` holds every request body seen."""

    def __init__(self, behaviour: Callable[[dict[str, Any], int], Reply | None] | None = None, *,
                 slots: int = 1024, latency_s: float = 0.0, sigma: float = 0.0, model: str = "fake-model",
                 seed: int = 0):
        self.behaviour = behaviour
        self.slots = slots
        self.latency_s = latency_s
        self.sigma = sigma
        self.model = model
        self.port = free_port()
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def sample_latency(self) -> float:
        if self.latency_s <= 0:
            return 0.0
        return self.latency_s * (self._rng.lognormvariate(0, self.sigma) if self.sigma else 1.0)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        n = len(self.requests)
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        async with self._sem:
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

    def completion(self, content: str, finish_reason: str) -> dict[str, Any]:
        return {
            "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": finish_reason}],
            "usage": {"prompt_tokens": 50, "completion_tokens": max(1, len(content) // 4),
                      "total_tokens": 50 + max(1, len(content) // 4)},
        }

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._sem = asyncio.Semaphore(self.slots)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        pending = asyncio.all_tasks(self._loop)  # requests still sleeping (a "hung" reply): cancel them quietly
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    def start(self) -> "FakeLLM":
        """Start serving (again, after `stop()`: same port, so a restart looks like a backend coming back)."""
        self._ready.clear()
        self._thread = threading.Thread(target=self._serve, name="fake-llm", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake LLM did not start")
        return self

    def stop(self) -> None:
        if self._loop and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)

    def __enter__(self) -> "FakeLLM":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
