"""Best of n (issue 31): several candidates per attempt, each judged, the best that passes delivered; a refused
attempt re-asks; without a judge only one candidate is asked for. Against the fake LLM on loopback."""

import itertools

import orjson

from schemas import Source
from streams.bench.fake_llm import Reply
from streams.generate.decode import decode_anchor
from streams.generate.generator import Generated, GenerationFailure, Generator
from streams.generate.judging import Judgement
from streams.generate.llm import LLMClient
from streams.generate.reask import REASK_NOTES
from streams.generate.validation import Problem
from streams.metrics import Metrics
from streams.settings import Settings

ANCHOR = "The committee approved the plan on Monday."


def scripted(positives):
    """A fake LLM answering each request with the next positive of `positives` (cycled)."""
    answers = itertools.cycle(positives)
    return lambda body, n: Reply(content=orjson.dumps({"positive": next(answers),
                                                       "negative": "A cat sleeps on a warm windowsill."}).decode())


class ScoreJudge:
    """Refuses positives containing 'invented'; prefers a higher `judge_positive` (the word count of 'kept')."""

    def __init__(self):
        self.judged: list[str] = []

    async def __call__(self, req, positive, negative):
        self.judged.append(positive)
        problems = [Problem("invented", "the positive adds a detail")] if "invented" in positive else []
        scores = {"anchor_positive": 0.8, "anchor_negative": 0.1, "margin": 0.7, "model": "m",
                  "judge_positive": positive.count("kept") / 10}
        return Judgement(scores, problems)


async def generate(llm, judge, **settings):
    s = Settings(quality=settings.pop("quality", "gate"), **settings)
    req = decode_anchor(ANCHOR.encode(), Source(topic="t", partition=0, offset=0), s)
    metrics = Metrics()
    async with LLMClient(llm.base_url) as client:
        result = await Generator(client, s, judge=judge, metrics=metrics).generate(req)
    return result, metrics


def counted(metrics, outcome):
    return metrics.registry.get_sample_value("pairstream_candidates_total", {"outcome": outcome}) or 0


async def test_the_best_passing_candidate_is_delivered(fake_llm):
    llm = fake_llm(behaviour=scripted(["The plan was invented on Monday by them.",
                                       "On Monday the plan was kept and passed kept by the committee.",
                                       "The committee passed the plan kept on Monday."]))
    judge = ScoreJudge()
    result, metrics = await generate(llm, judge, candidates=3)
    assert isinstance(result, Generated)
    assert result.positive == "On Monday the plan was kept and passed kept by the committee."
    assert len(llm.requests) == 3 and result.attempts == 3 and len(judge.judged) == 3
    assert result.quality["candidates"] == 3 and result.quality["judge_positive"] == 0.2
    assert (counted(metrics, "delivered"), counted(metrics, "passed"), counted(metrics, "refused")) == (1, 1, 1)
    # The candidates are one prompt asked n times: the server's prompt cache serves all but the first.
    assert len({orjson.dumps(r["messages"]) for r in llm.requests}) == 1


async def test_an_attempt_whose_candidates_are_all_refused_is_asked_again_naming_the_problem(fake_llm):
    llm = fake_llm(behaviour=scripted(["It was invented.", "Also invented.", "The plan passed kept on Monday."]))
    result, metrics = await generate(llm, ScoreJudge(), candidates=2, max_generation_attempts=2)
    assert isinstance(result, Generated) and result.positive == "The plan passed kept on Monday."
    assert len(llm.requests) == 4
    reask = llm.requests[2]["messages"][-1]["content"]
    # the fixed note of the problem's kind, not the judge's message ("adds a detail")
    assert reask.endswith(f"\n{REASK_NOTES['invented']}\n") and "adds a detail" not in reask
    assert counted(metrics, "refused") == 3 and counted(metrics, "delivered") == 1


async def test_when_every_candidate_fails_the_dead_letter_carries_them_all(fake_llm):
    llm = fake_llm(behaviour=scripted(["It was invented."]))
    result, _ = await generate(llm, ScoreJudge(), candidates=2, max_generation_attempts=2)
    assert isinstance(result, GenerationFailure) and result.stage == "quality" and result.kind == "invented"
    assert result.attempts == 4 and len(result.candidates) == 4


async def test_without_a_judge_one_candidate_is_asked_for(fake_llm):
    llm = fake_llm(behaviour=scripted(["The plan was passed by the committee on Monday."]))
    result, _ = await generate(llm, ScoreJudge(), candidates=3, quality="off")
    assert isinstance(result, Generated) and len(llm.requests) == 1


async def test_one_candidate_failing_at_the_transport_does_not_lose_the_others(fake_llm):
    good = scripted(["The plan was passed kept by the committee on Monday."])
    llm = fake_llm(behaviour=lambda body, n: Reply(status=400) if n == 0 else good(body, n))
    result, _ = await generate(llm, ScoreJudge(), candidates=2)
    assert isinstance(result, Generated) and result.positive.startswith("The plan was passed")
