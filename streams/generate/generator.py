"""One anchor -> a validated sentence pair, or a failure that says why (stage `llm`, `parse` or `quality`).

Two retry loops, kept apart on purpose:
- transport retries (`PAIRSTREAM_LLM_MAX_RETRIES`): 429/408/409/5xx, connection
  errors and timeouts are retried with exponential backoff and full jitter,
  honouring `Retry-After` within a cap. Other 4xx fail at once.
- generation attempts (`PAIRSTREAM_MAX_GENERATION_ATTEMPTS`): output that does
  not parse, is truncated or fails validation is re-asked with an adjusted
  request (higher temperature, more tokens, a correction note). With a quality
  judge and PAIRSTREAM_QUALITY=gate, a valid pair the embedding checks refuse is
  re-asked the same way; when every attempt fails, the failure carries the best
  candidate's scores and every candidate. A note is the fixed sentence of the
  problem's kind (`reask.REASK_NOTES`), never a check's message.
Unlike a batch pipeline, a failure here costs only this anchor, never a batch.
"""

import asyncio
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from streams.generate.decode import AnchorRequest
from streams.generate.judging import Candidate, Judge, JudgeUnavailable, Miner
from streams.generate.limits import ConcurrencyLimit, limit_for
from streams.generate.llm import ChatRequest, ChatResponse, LLMClient, LLMError
from streams.metrics import Metrics
from streams.generate.outage import OutageGate
from streams.generate.resilience import RetryPolicy, call_with_retries
from streams.settings import Settings
from streams.generate.task import OutputParseError, build_messages, example_for, parse_output, response_format
from streams.generate.validation import Problem, check_pair


OVERLOAD_STATUS = {429, 503}  # "too many requests for me now": the adaptive limit backs off


@dataclass
class Generated:
    positive: str
    negative: str | None
    model_name: str
    prompt_tokens: int
    completion_tokens: int
    attempts: int
    quality: dict | None = None  # the record's `quality` (scores and verdict), None without a judge
    mined: list[dict] = field(default_factory=list)  # the record's `mined_negatives`


def served_model_name(name: str | None) -> str | None:
    """The model name a server reported, or None for a placeholder (llama.cpp answers "-" without an alias)."""
    name = (name or "").strip()
    return None if name in ("", "-") else name


@dataclass
class GenerationFailure:
    stage: str  # "llm" or "parse"
    kind: str
    message: str
    attempts: int
    last_output: str | None = None
    quality: dict | None = None  # stage quality: the best candidate's scores
    candidates: list[dict] | None = None  # stage quality: every refused candidate, best first


@dataclass
class _Tally:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_name: str = ""
    outputs: list[str] = field(default_factory=list)


# What the quality gate refuses (streams.quality); each has its fixed re-ask note (`reask.REASK_NOTES`).
NEGATIVE_PROBLEMS = ("false_negative", "easy_negative", "entailed_negative", "rerank_negative",
                     "llm_judge_negative")
QUALITY_PROBLEMS = ("near_copy", "off_topic", "invented", "repetition", "degenerate", "fragment", "example_leak",
                    "round_trip", "rerank_positive", "llm_judge_positive") + NEGATIVE_PROBLEMS


def next_temperature(current: float, problem: Problem) -> float:
    """The re-ask's temperature: hotter after a copy or bad output (the model needs to move away), cooler after
    an off-topic positive (it moved too far), unchanged after a bad negative (the note says what to fix)."""
    if problem.kind == "off_topic":
        return max(0.1, current - 0.3)
    if problem.kind in NEGATIVE_PROBLEMS:
        return current
    return min(1.5, current + 0.4)


class Generator:
    """Turns an `AnchorRequest` into `Generated` or `GenerationFailure`; never raises for LLM trouble."""

    def __init__(self, llm: LLMClient, settings: Settings, *, retry: RetryPolicy | None = None,
                 gate: OutageGate | None = None, limit: ConcurrencyLimit | None = None,
                 metrics: Metrics | None = None, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 judge: Judge | None = None, miner: Miner | None = None):
        self.llm = llm
        self.settings = settings
        self.judge = judge if settings.quality != "off" else None
        self.miner = miner if self.judge is not None else None
        self.limit = limit or limit_for(settings.concurrency, settings.concurrency_max)
        self.retry = retry or RetryPolicy(max_retries=settings.llm_max_retries)
        self.gate = gate or OutageGate(settings.llm_outage_failures, max_cooldown_s=settings.llm_outage_probe_max_s)
        self.metrics = metrics or Metrics()
        self._sleep = sleep
        self._extra_body = settings.llm_extra  # parsed once, not per request (never mutated: ChatRequest copies)

    def request_for(self, req: AnchorRequest, attempt: int, problem: Problem | None,
                    temperature: float | None = None) -> ChatRequest:
        s = self.settings
        max_tokens = s.llm_max_tokens * (2 if problem and problem.kind == "truncated" else 1)
        return ChatRequest(
            model=s.llm_model,
            # the note is chosen by the problem's kind only: its message may quote another record (round trip)
            messages=build_messages(req.anchor, req.spec, s.structured_output, problem.kind if problem else None),
            temperature=temperature if temperature is not None else min(1.5, s.llm_temperature + 0.4 * attempt),
            max_tokens=max_tokens,
            frequency_penalty=s.llm_frequency_penalty,
            presence_penalty=s.llm_presence_penalty,
            extra_body=self._extra_body,
            response_format=response_format(req.spec, s.max_output_chars, s.llm_response_format)
            if s.structured_output else None,
        )

    async def generate(self, req: AnchorRequest) -> Generated | GenerationFailure:
        tally = _Tally()
        problem: Problem | None = None
        refused: list[Candidate] = []  # valid pairs the quality gate refused
        heat = self.settings.llm_temperature
        # Best of n only where there is a judge to choose: without one, the first candidate is as good as any.
        n = self.settings.candidates if self.judge is not None else 1
        for attempt in range(self.settings.max_generation_attempts):
            if problem is not None:
                self.metrics.generation_retries.labels(problem.kind).inc()
            heat = next_temperature(heat, problem) if problem is not None else self.settings.llm_temperature
            request = self.request_for(req, attempt, problem, heat)
            answers = await asyncio.gather(*(self._send(request, tally) for _ in range(n)), return_exceptions=True)
            failures = [a for a in answers if isinstance(a, BaseException)]
            for failure in failures:
                if not isinstance(failure, LLMError):
                    raise failure
            responses = [a for a in answers if not isinstance(a, BaseException)]
            if not responses:  # every request failed past its retries: an LLM failure, as with one candidate
                exc = failures[0]
                return GenerationFailure("llm", exc.kind, str(exc), tally.requests,
                                         tally.outputs[-1] if tally.outputs else None)
            outcome = await self._choose(req, responses, tally)
            if isinstance(outcome, (Generated, GenerationFailure)):
                return outcome
            problem, judged = outcome
            refused += judged
        assert problem is not None
        if refused:
            refused.sort(key=lambda c: c.judgement.rank)
            best = refused[0].judgement
            return GenerationFailure(
                "quality", best.problems[0].kind,
                f"no pair passed the quality gate in {self.settings.max_generation_attempts} attempts; best: "
                f"{', '.join(p.kind for p in best.problems)} ({best.problems[0].message})",
                tally.requests, tally.outputs[-1] if tally.outputs else None, best.quality,
                [c.record() for c in refused])
        return GenerationFailure(
            "parse", problem.kind,
            f"no valid output after {self.settings.max_generation_attempts} attempts; last: {problem.message}",
            tally.requests, tally.outputs[-1] if tally.outputs else None,
        )

    async def _choose(self, req: AnchorRequest, responses: list[ChatResponse], tally: _Tally
                      ) -> "Generated | GenerationFailure | tuple[Problem, list[Candidate]]":
        """The best of this attempt's candidates, delivered; or the problem to re-ask about and the candidates the
        gate refused. Each valid candidate is judged (concurrently: the embedder batches them together)."""
        example = example_for(req.anchor, req.spec.action)
        forbidden = (example.anchor, example.positive, example.negative, example.hard_negative)
        problem: Problem | None = None
        pairs = []
        for response in responses:
            tally.outputs.append(response.content)
            found, pair = self._validate(req, response, forbidden)
            if found is not None:
                problem = problem or found
                self.metrics.candidates.labels("invalid").inc()
            else:
                pairs.append(pair)
        if not pairs:
            return problem, []
        if self.judge is None:
            pair = pairs[0]
            self.metrics.candidates.labels("delivered").inc()
            return Generated(pair.positive, pair.negative, tally.model_name or self.settings.llm_model,
                             tally.prompt_tokens, tally.completion_tokens, tally.requests)
        try:
            judgements = await asyncio.gather(*(self.judge(req, p.positive, p.negative) for p in pairs))
        except JudgeUnavailable as exc:
            return GenerationFailure("quality", exc.kind, f"the pair could not be scored: {exc}", tally.requests,
                                     tally.outputs[-1])
        candidates = sorted((Candidate(p.positive, p.negative, j) for p, j in zip(pairs, judgements)),
                            key=lambda c: c.judgement.rank)
        for candidate in candidates:
            for found in candidate.judgement.problems:
                self.metrics.quality_rejections.labels(found.kind).inc()
        best = candidates[0]
        if best.judgement.problems and self.settings.quality == "gate":
            self.metrics.candidates.labels("refused").inc(len(candidates))
            return best.judgement.problems[0], candidates
        self.metrics.candidates.labels("delivered").inc()
        for other in candidates[1:]:
            self.metrics.candidates.labels("refused" if other.judgement.problems else "passed").inc()
        mined = []
        if self.miner is not None and best.judgement.vectors is not None:
            mined = await self.miner(req.id, req.anchor, best.positive, best.negative, best.judgement.vectors)
            self.metrics.mined_negatives.observe(len(mined))
        quality = {**best.judgement.quality, "candidates": len(candidates)} if len(responses) > 1 \
            else best.judgement.quality
        return Generated(best.positive, best.negative, tally.model_name or self.settings.llm_model,
                         tally.prompt_tokens, tally.completion_tokens, tally.requests, quality, mined)

    def _validate(self, req: AnchorRequest, response: ChatResponse, forbidden: tuple[str, ...]):
        """(problem, None) for output that is truncated, does not parse or does not validate; else (None, pair)."""
        if response.finish_reason == "length":
            return Problem("truncated", "output was cut off at max_tokens (finish_reason=length)"), None
        try:
            pair = parse_output(response.content, req.spec, self.settings.structured_output)
        except OutputParseError as exc:
            return Problem(exc.kind, str(exc)), None
        problem = check_pair(req.anchor, pair.positive, pair.negative, want_negative=req.spec.triplet,
                             max_chars=self.settings.max_output_chars, forbidden=forbidden)
        return (problem, None) if problem is not None else (None, pair)

    async def _send(self, request: ChatRequest, tally: _Tally) -> ChatResponse:
        """One logical request with transport retries; the last LLMError propagates."""

        def sent() -> None:
            tally.requests += 1

        response = await call_with_retries(
            lambda: self._limited_chat(request), retry=self.retry, gate=self.gate, sleep=self._sleep, on_send=sent,
            on_retry=lambda exc: self.metrics.llm_retries.labels(exc.kind).inc())
        if response.usage:
            tally.prompt_tokens += response.usage.prompt_tokens
            tally.completion_tokens += response.usage.completion_tokens
            self.metrics.llm_tokens.labels("prompt").inc(response.usage.prompt_tokens)
            self.metrics.llm_tokens.labels("completion").inc(response.usage.completion_tokens)
        tally.model_name = served_model_name(response.model) or tally.model_name
        return response

    async def _limited_chat(self, request: ChatRequest) -> ChatResponse:
        """One HTTP request holding a concurrency permit; tells the limit and the metrics what the backend did."""
        started = await self.limit.acquire()
        clock = time.perf_counter()
        try:
            response = await self.llm.chat(request)
        except LLMError as exc:
            self.limit.on_result(started, ok=False, overloaded=exc.status in OVERLOAD_STATUS)
            self._observe(str(exc.status) if exc.kind.startswith("http_") else exc.kind, clock)
            raise
        finally:
            self.limit.release()
        self.limit.on_result(started, ok=True)
        self._observe("200", clock)
        return response

    def _observe(self, status: str, clock: float) -> None:
        self.metrics.llm_requests.labels(status).inc()
        self.metrics.llm_latency.observe(time.perf_counter() - clock)
