"""A small client for OpenAI-compatible servers (vLLM, TGI, Ollama, llama.cpp, OpenAI): chat completions,
and `post()` for other endpoints (the quality gate's `/embeddings`) with the same error handling.

One shared `httpx.AsyncClient` per worker, its pool sized to the concurrency, so
connections are reused and the number of requests in flight is bounded. Errors
come back as `LLMError` with `retryable` already decided, so the retry policy in
`streams.generate.generator` never has to look at HTTP details. The API key goes only
into the Authorization header; it never appears in errors or reprs.
"""

import email.utils
import time
from typing import Any

import httpx
import orjson
from httpx_aiohttp import AiohttpTransport
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

RETRYABLE_STATUS = {408, 409, 429}


class ChatUsage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatMessageOut(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str = "assistant"
    content: str | None = None


class ChatChoice(BaseModel):
    model_config = ConfigDict(extra="ignore")
    index: int = 0
    message: ChatMessageOut
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None  # with `logprobs` asked (the LLM judge's Yes/No probabilities)


class ChatResponse(BaseModel):
    """The parts of a chat-completions response pairstream uses."""

    model_config = ConfigDict(extra="ignore")
    id: str | None = None
    model: str = ""
    choices: list[ChatChoice]
    usage: ChatUsage | None = None

    @property
    def content(self) -> str:
        return self.choices[0].message.content or ""

    @property
    def finish_reason(self) -> str | None:
        return self.choices[0].finish_reason

    @property
    def choice(self) -> dict[str, Any]:
        """The first choice as plain data (its message and logprobs)."""
        return self.choices[0].model_dump()


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    messages: list[dict[str, str]]
    temperature: float
    max_tokens: int
    frequency_penalty: float | None = None  # OpenAI's; llama.cpp's server and vLLM take it too
    presence_penalty: float | None = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None  # OpenAI's: the chosen tokens' log probabilities, and top_logprobs alternatives
    top_logprobs: int | None = None
    stream: bool = False
    extra_body: dict[str, Any] = Field(default_factory=dict, exclude=True)  # a server's own parameters

    def body(self) -> dict[str, Any]:
        """The JSON body: the extra parameters first, so they can never replace one of the request's own."""
        return {**self.extra_body, **self.model_dump(exclude_none=True)}


class LLMError(Exception):
    """One failed request. `retryable` says whether the same request may succeed later."""

    def __init__(self, kind: str, message: str, *, status: int | None = None, retryable: bool,
                 retry_after: float | None = None, outage: bool | None = None):
        super().__init__(message)
        self.kind = kind
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after
        self._outage = outage  # None: decided by kind and status

    @property
    def outage(self) -> bool:
        """The backend is down or failing (as opposed to refusing this request): see `streams.generate.outage`."""
        if self._outage is not None:
            return self._outage
        return self.kind in ("timeout", "connection") or (self.status is not None and self.status >= 500)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class LLMClient:
    """Async OpenAI-compatible chat-completions client. Use `async with` or call `aclose()`."""

    def __init__(self, base_url: str, *, api_key: SecretStr | None = None, timeout_s: float = 60.0,
                 max_connections: int = 8, transport: httpx.AsyncBaseTransport | None = None):
        headers = {"Content-Type": "application/json"}
        self._secret = api_key.get_secret_value() if api_key is not None else ""
        if self._secret:
            headers["Authorization"] = f"Bearer {self._secret}"
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self.base_url = base_url.rstrip("/")
        if transport is None:
            # httpx's API on aiohttp's connection pool and C parser: httpcore's per-request overhead
            # (connection liveness checks, trace hooks) was most of the worker's CPU at 1000 requests/s.
            transport = AiohttpTransport(limits=limits)
        self._http = httpx.AsyncClient(
            base_url=self.base_url, headers=headers, timeout=httpx.Timeout(timeout_s), limits=limits,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"LLMClient(base_url={self.base_url!r})"

    async def __aenter__(self) -> "LLMClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def probe(self, timeout_s: float = 3.0) -> str | None:
        """Is the server there? `GET /models`: None when it answers, else a short reason (for `/ready`).

        A 404 counts as answering (some servers have no model list); 401/403 do not: every
        request would fail the same way.
        """
        try:
            resp = await self._http.get("/models", timeout=timeout_s)
        except httpx.TransportError as exc:
            cause = exc.__cause__ or exc
            return f"unreachable: {type(cause).__name__}"
        if resp.status_code in (401, 403):
            return f"HTTP {resp.status_code}: the API key was refused"
        if resp.status_code >= 500:
            return f"HTTP {resp.status_code}"
        return None

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """Send one chat-completions request (no retries here). Raises LLMError, its text free of the API key."""
        resp = await self.post("/chat/completions", request.body())
        try:
            parsed = ChatResponse.model_validate(orjson.loads(resp.content))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            raise LLMError("bad_response", f"response is not a chat completion: {str(exc)[:200]}",
                           status=resp.status_code, retryable=True) from None
        if not parsed.choices:
            raise LLMError("bad_response", "response has no choices", status=resp.status_code, retryable=True)
        return parsed

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        """POST JSON to an OpenAI-compatible endpoint; a 2xx response, or LLMError (classified, key scrubbed)."""
        try:
            return await self._post(path, body)
        except LLMError as exc:
            if self._secret and self._secret in str(exc):  # servers echo a rejected key in their error text
                exc.args = (str(exc).replace(self._secret, "***"),)
            raise

    async def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            resp = await self._http.post(path, content=orjson.dumps(body))
        except httpx.TransportError as exc:
            # The aiohttp transport maps every aiohttp connection error (refused, reset) to a timeout
            # class; the aiohttp error it came from says which it really was.
            cause = exc.__cause__ or exc
            if isinstance(exc, httpx.TimeoutException) and isinstance(cause, (TimeoutError, httpx.TimeoutException)):
                raise LLMError("timeout", f"no answer within the timeout ({type(cause).__name__})",
                               retryable=True) from None
            raise LLMError("connection", f"{type(cause).__name__}: {cause}", retryable=True) from None
        if resp.status_code >= 400:
            raise LLMError(
                f"http_{resp.status_code}",
                f"HTTP {resp.status_code}: {_error_text(resp)}",
                status=resp.status_code,
                retryable=resp.status_code in RETRYABLE_STATUS or resp.status_code >= 500,
                retry_after=parse_retry_after(resp.headers.get("retry-after")),
            )
        return resp


def _error_text(resp: httpx.Response) -> str:
    """The server's error message, short; OpenAI-style `{"error": {"message": ...}}` or raw text."""
    try:
        data = orjson.loads(resp.content)
        if isinstance(data, dict):
            err = data.get("error", data)
            if isinstance(err, dict):
                return str(err.get("message") or err.get("detail") or err)[:300]
            return str(err)[:300]
    except orjson.JSONDecodeError:
        pass
    return resp.text[:300]
