"""Second opinions (issue 24, item 6): a cross-encoder behind `/rerank` and an LLM judge, against fakes on
loopback. Each refuses with its own check's name, is asked only about pairs the cheaper checks passed, retries
a failing backend behind its own outage gate, and turns an answer it cannot read into an anchor that cannot be
judged, never into a verdict."""

import orjson
import pytest

from streams.bench.fake_llm import Reply
from streams.generate.generator import QUALITY_PROBLEMS
from streams.generate.judging import JudgeUnavailable
from streams.generate.resilience import RetryPolicy
from streams.generate.task import TaskSpec
from streams.quality.embedder import EmbeddingError
from streams.quality.judge import build_judge
from streams.quality.llm_review import QUESTIONS, LLMReviewer, yes_probability
from streams.quality.rerank import RerankReviewer, parse_scores
from streams.settings import Settings
from support.fake_tei import FakeTEI
from types import SimpleNamespace

ANCHOR = "A man is firing a rifle."
GOOD = "A man shoots with a rifle."
SWAPPED = "A man is shot with his rifle."
NEGATIVE = "A woman is cooking rice."


async def no_sleep(_):
    pass


@pytest.fixture
def tei():
    with FakeTEI(rerank={(ANCHOR, GOOD): 0.93, (ANCHOR, SWAPPED): 0.41, (ANCHOR, NEGATIVE): 0.02,
                         (ANCHOR, "A man fires a gun."): 0.88}) as server:
        yield server


def reranker(tei, **kwargs) -> RerankReviewer:
    return RerankReviewer(f"http://127.0.0.1:{tei.port}/rerank", sleep=no_sleep, **kwargs)


async def test_the_cross_encoder_refuses_a_swapped_role_and_an_entailed_negative(tei):
    r = reranker(tei)
    try:
        assert (await r.review(ANCHOR, GOOD, NEGATIVE)).problems == []
        swapped = (await r.review(ANCHOR, SWAPPED, "A man fires a gun.")).problems
    finally:
        await r.aclose()
    assert [p.kind for p in swapped] == ["rerank_positive", "rerank_negative"]
    assert "0.41" in swapped[0].message and "0.88" in swapped[1].message
    assert tei.rerank_requests[0] == {"query": ANCHOR, "texts": [GOOD, NEGATIVE], "truncate": True}


async def test_a_reranker_that_is_restarting_is_retried_not_a_verdict(tei):
    tei.rerank_failures = 2
    r = reranker(tei, retry=RetryPolicy(max_retries=3))
    try:
        assert (await r.review(ANCHOR, GOOD, None)).problems == []
    finally:
        await r.aclose()
    assert len(tei.rerank_requests) == 3


async def test_a_reranker_down_for_good_means_the_pair_cannot_be_judged(tei):
    tei.rerank_failures = 100
    r = reranker(tei, retry=RetryPolicy(max_retries=1))
    try:
        with pytest.raises(EmbeddingError, match="reranker: HTTP 503"):
            await r.review(ANCHOR, GOOD, None)
    finally:
        await r.aclose()


@pytest.mark.parametrize("body, error", [
    (b"[]", "scores for"), (b'{"results": [{"index": 0}]}', "not a rerank response"),
    (b'[{"index": 0, "score": "high"}]', "finite"), (b"<html>", "not a rerank response"),
])
def test_an_answer_that_is_not_scores_is_an_error(body, error):
    with pytest.raises(EmbeddingError, match=error):
        parse_scores(body, 1)


def test_both_answer_forms_are_read_by_index():
    assert parse_scores(b'[{"index": 1, "score": 0.2}, {"index": 0, "score": 0.9}]', 2) == [0.9, 0.2]
    cohere = b'{"results": [{"index": 1, "relevance_score": 0.1}, {"index": 0, "relevance_score": 0.7}]}'
    assert parse_scores(cohere, 2) == [0.7, 0.1]


def judge_with(settings: Settings):
    return build_judge(settings)


async def test_the_reviewer_is_asked_only_about_pairs_the_checks_pass(tei):
    """A copy is refused by the in-process checks; the cross-encoder never sees it. A pair that passes them and
    that the cross-encoder scores low is refused by `rerank_positive`, named in the verdict."""
    judge = judge_with(Settings(quality="gate", review_rerank_url=f"http://127.0.0.1:{tei.port}/rerank"))
    req = SimpleNamespace(id="r1", anchor=ANCHOR, spec=TaskSpec("paraphrase", True, False, None))
    try:
        copied = await judge(req, ANCHOR.lower(), NEGATIVE)
        assert "near_copy" in [p.kind for p in copied.problems] and tei.rerank_requests == []
        swapped = await judge(req, SWAPPED, NEGATIVE)
    finally:
        await judge.aclose()
    # The in-process checks pass the swapped role (pooled cosine 0.90, every token matched): only the
    # cross-encoder refuses it.
    assert len(tei.rerank_requests) == 1
    assert [p.kind for p in swapped.problems] == ["rerank_positive"]
    assert swapped.quality["problems"] == ["rerank_positive"]


def answers(added: str = "No", dropped: str = "No", entailed: str = "No"):
    """A fake judge answering each question by the question asked (the fake gives no logprobs: read as text)."""
    def reply(request, n):
        text = request["messages"][-1]["content"]
        for name, answer in (("state any fact", added), ("leave out", dropped), ("certainly true", entailed)):
            if name in text:
                return Reply(content=answer)
        return Reply(content="?")
    return reply


@pytest.mark.parametrize("added, dropped, entailed, kinds", [
    ("No", "No", "No", []), ("Yes", "No", "No", ["llm_judge_positive"]),
    ("No", "Yes", "No", ["llm_judge_positive"]), ("No", "No", "Yes", ["llm_judge_negative"]),
    ("Yes", "No", "Yes", ["llm_judge_positive", "llm_judge_negative"]),
])
async def test_the_llm_judge_refuses_what_it_finds_added_dropped_or_entailed(fake_llm, added, dropped, entailed,
                                                                             kinds):
    llm = fake_llm(behaviour=answers(added, dropped, entailed))
    r = LLMReviewer(llm.base_url, "judge-model", sleep=no_sleep)
    try:
        review = await r.review(ANCHOR, SWAPPED, NEGATIVE)
    finally:
        await r.aclose()
    assert [p.kind for p in review.problems] == kinds
    assert review.scores["judge_positive"] == (0.0 if "Yes" in (added, dropped) else 1.0)
    assert review.scores["judge_negative"] == (1.0 if entailed == "Yes" else 0.0)
    assert len(llm.requests) == 3  # one question each, one answer token each
    for request in llm.requests:
        assert request["model"] == "judge-model" and request["temperature"] == 0 and request["max_tokens"] == 1
        assert request["logprobs"] is True and request["top_logprobs"] >= 2
    asked = sorted(q["messages"][-1]["content"] for q in llm.requests)
    assert asked == sorted([QUESTIONS["added"].format(a=ANCHOR, b=SWAPPED),
                            QUESTIONS["dropped"].format(a=ANCHOR, b=SWAPPED),
                            QUESTIONS["entailed"].format(a=ANCHOR, b=NEGATIVE)])


def test_the_judges_score_is_the_yes_probability_of_the_first_token():
    def choice(top):
        return {"message": {"content": top[0][0]},
                "logprobs": {"content": [{"top_logprobs": [{"token": t, "logprob": lp} for t, lp in top]}]}}
    import math
    p = yes_probability(choice([(" No", math.log(0.6)), ("Yes", math.log(0.3)), ("To", math.log(0.1))]))
    assert p == pytest.approx(0.3 / 0.9)
    assert yes_probability({"message": {"content": "Yes."}}) == 1.0  # a server without logprobs
    assert yes_probability({"message": {"content": "no"}}) == 0.0


async def test_an_llm_judge_answer_that_is_neither_yes_nor_no_means_the_pair_cannot_be_judged(fake_llm):
    llm = fake_llm(behaviour=lambda request, n: Reply(content="Perhaps"))
    r = LLMReviewer(llm.base_url, "judge-model", sleep=no_sleep)
    try:
        with pytest.raises(EmbeddingError, match="neither Yes nor No"):
            await r.review(ANCHOR, GOOD, NEGATIVE)
    finally:
        await r.aclose()


async def test_an_llm_judge_outage_is_retried_then_the_anchor_cannot_be_judged(fake_llm):
    llm = fake_llm(behaviour=lambda request, n: Reply(status=503))
    judge = judge_with(Settings(quality="gate", review_llm_base_url=llm.base_url, review_llm_model="judge",
                                llm_max_retries=2, llm_outage_failures=0))
    judge.review_every_pair = True
    for reviewer in judge.reviewers:
        reviewer._sleep = no_sleep
    req = SimpleNamespace(id="r1", anchor=ANCHOR, spec=TaskSpec("paraphrase", True, False, None))
    try:
        with pytest.raises(JudgeUnavailable, match="LLM judge: HTTP 503"):
            await judge(req, GOOD, NEGATIVE)
    finally:
        await judge.aclose()
    # Each question is tried at most three times; the first to give up cancels the others.
    asked = [r["messages"][-1]["content"].rsplit("\n", 1)[-1] for r in llm.requests]
    assert max(asked.count(q) for q in set(asked)) == 3 and all(asked.count(q) <= 3 for q in set(asked))


def test_every_refusal_of_the_quality_package_gets_a_quality_note_on_the_re_ask():
    """Each check's kind is one the generator treats as a quality refusal (the re-ask carries its fixed note)."""
    import re
    from pathlib import Path

    kinds = set()
    for path in Path("streams/quality").glob("*.py"):
        kinds |= set(re.findall(r'Problem\(\s*"([a-z_]+)"', path.read_text()))
        kinds |= set(re.findall(r'Problem\(\s*f?"?([a-z_]+)"?,', path.read_text())) & set(QUALITY_PROBLEMS)
    assert kinds and kinds <= set(QUALITY_PROBLEMS), kinds - set(QUALITY_PROBLEMS)
