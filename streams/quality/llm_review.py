"""A second opinion from an LLM judge: yes/no questions about meaning, answered with one token each.

A small local model (Qwen2.5-Coder-1.5B) cannot be trusted with one holistic verdict in the readers'
rubric: asked for labels it refuses most right records too (issue 24 measured 58% of gold paraphrases
refused with SmolLM2). It can answer narrow questions, and its probability of "Yes" against "No" on
the first answer token (`logprobs`, OpenAI's form, which llama.cpp's server and vLLM speak) is a
graded score, not a coin: best of n ranks candidates by it (`Judgement.rank`), and a threshold
calibrated on labelled records (`pairstream bench --judge`) refuses the worst.

- positive: "Does B state anything A does not, or leave out anything A states?" asked as two questions
  (added, dropped) of one shared instruction, so the server's prompt cache serves every request; the
  score `judge_positive` is the probability that neither happened (the product of the two "No"s).
- negative: "If A is true, is B also true?"; `judge_negative` is the probability of "Yes" (a negative
  true of the anchor teaches the model the opposite of the truth).

Each question costs one request with `max_tokens` 1: the prompt, mostly cached, is the cost. A server
that returns no logprobs is read from the answer's text (Yes 1.0, No 0.0). It is an OpenAI-compatible
chat endpoint of its own (URL, model, key, timeout) behind the same retries and outage gate as the
generator's LLM: a judge that is down holds anchors, it never passes them unjudged.
"""

import asyncio
import math
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from pydantic import SecretStr

from streams.generate.llm import ChatRequest, LLMClient
from streams.generate.outage import OutageGate
from streams.generate.resilience import RetryPolicy
from streams.generate.validation import Problem
from streams.quality.embedder import EmbeddingError, backend_call

SYSTEM = "You check rewrites of sentences for a dataset of sentence pairs. Be strict. Answer Yes or No."
QUESTIONS = {
    "added": "A: {a}\nB: {b}\nDoes B state any fact, detail, person, object, place or number that A does not "
             "state? Answer Yes or No.",
    "dropped": "A: {a}\nB: {b}\nDoes B leave out any fact, detail, person, object, place or number that A "
               "states? Answer Yes or No.",
    "entailed": "A: {a}\nB: {b}\nIf A is true, is B certainly true as well? Answer Yes or No.",
}


@dataclass
class Review:
    """What a reviewer found, and the scores it gives (recorded in the record's `quality`)."""

    problems: list[Problem] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)


def yes_probability(choice: dict) -> float:
    """P(Yes) / (P(Yes) + P(No)) from the first token's top logprobs; from the text when there are none."""
    top = ((choice.get("logprobs") or {}).get("content") or [{}])[0].get("top_logprobs") or []
    yes = no = 0.0
    for entry in top:
        token = str(entry.get("token", "")).strip().lower()
        if token in ("yes", "no"):
            p = math.exp(float(entry["logprob"]))
            yes, no = (yes + p, no) if token == "yes" else (yes, no + p)
    if yes + no > 0:
        return yes / (yes + no)
    text = str((choice.get("message") or {}).get("content") or "").strip().lower()
    if text.startswith("yes"):
        return 1.0
    if text.startswith("no"):
        return 0.0
    raise EmbeddingError("bad_review", f"LLM judge: neither Yes nor No in its answer: {text[:60]!r}")


class LLMReviewer:
    name = "llm_judge"

    def __init__(self, base_url: str, model: str, *, api_key: SecretStr | None = None, timeout_s: float = 60.0,
                 min_positive: float = 0.5, max_negative: float = 0.5, retry: RetryPolicy | None = None,
                 gate: OutageGate | None = None, max_connections: int = 8,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        self.client = LLMClient(base_url, api_key=api_key, timeout_s=timeout_s, max_connections=max_connections)
        self.model = model
        self.min_positive, self.max_negative = min_positive, max_negative
        self.retry = retry or RetryPolicy()
        self.gate = gate or OutageGate(backend="LLM judge")
        self._sleep = sleep

    def request(self, question: str, a: str, b: str) -> ChatRequest:
        return ChatRequest(model=self.model, temperature=0.0, max_tokens=1, logprobs=True, top_logprobs=10,
                           messages=[{"role": "system", "content": SYSTEM},
                                     {"role": "user", "content": QUESTIONS[question].format(a=a, b=b)}])

    async def ask(self, question: str, a: str, b: str) -> float:
        """P(Yes) for one question about sentences A and B."""
        request = self.request(question, a, b)
        response = await backend_call("LLM judge", lambda: self.client.chat(request), retry=self.retry,
                                      gate=self.gate, sleep=self._sleep)
        return yes_probability(response.choice)

    async def scores(self, anchor: str, positive: str, negative: str | None) -> dict[str, float]:
        # A task group, not gather: when one question fails past its retries the others are cancelled, never
        # left running against a client that is being closed.
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self.ask("added", anchor, positive)),
                     group.create_task(self.ask("dropped", anchor, positive))]
            if negative is not None:
                tasks.append(group.create_task(self.ask("entailed", anchor, negative)))
        answers = [task.result() for task in tasks]
        out = {"judge_positive": round((1 - answers[0]) * (1 - answers[1]), 4)}
        if negative is not None:
            out["judge_negative"] = round(answers[2], 4)
        return out

    async def review(self, anchor: str, positive: str, negative: str | None) -> Review:
        try:
            scores = await self.scores(anchor, positive, negative)
        except* EmbeddingError as group:  # the first failure, as a single error (the task group wraps it)
            raise group.exceptions[0] from None
        found = []
        if scores["judge_positive"] < self.min_positive:
            found.append(Problem("llm_judge_positive", f"the LLM judge finds the positive adds or drops something "
                                                       f"(score {scores['judge_positive']:.2f})"))
        if scores.get("judge_negative", 0.0) > self.max_negative:
            found.append(Problem("llm_judge_negative", f"the LLM judge finds the negative true of the anchor "
                                                       f"(score {scores['judge_negative']:.2f})"))
        return Review(found, scores)

    async def aclose(self) -> None:
        await self.client.aclose()
