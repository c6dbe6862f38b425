"""The quality gate's judge: embed anchor, positive and negative (micro-batched across the anchors in
flight), score them and name what is wrong; then, where a user has them, ask stronger judges (a cross-encoder,
an LLM judge) about the pairs that passed. It is the `Judge` the generator calls (`streams.generate.judging`).
"""

import logging
from typing import Protocol

import numpy as np

from streams.generate.resilience import RetryPolicy
from streams.generate.judging import Judgement, JudgeUnavailable
from streams.generate.outage import OutageGate
from streams.metrics import Metrics
from streams.generate.task import example_words
from streams.quality.alignment import alignment_review
from streams.quality.batcher import MicroBatcher
from streams.quality.form import form_review
from streams.quality.llm_review import Review
from streams.quality.checks import Thresholds, findings, scores_of
from streams.quality.embedder import Embedder, EmbeddingError
from streams.quality.mining import MiningRules, SentenceWindow, StreamMiner
from streams.quality.round_trip import round_trip_problem
from streams.settings import Settings

log = logging.getLogger("pairstream.quality")


class Reviewer(Protocol):
    """A second opinion on a pair the checks passed (`rerank.RerankReviewer`, `llm_review.LLMReviewer`): what it
    finds wrong, and the scores it gives (`Review`)."""

    async def review(self, anchor: str, positive: str, negative: str | None) -> Review: ...


class EmbeddingJudge:
    def __init__(self, embedder: Embedder, limits: Thresholds, *, metrics: Metrics | None = None,
                 max_batch: int = 32, max_wait_s: float = 0.005):
        self.embedder = embedder
        self.limits = limits
        self.metrics = metrics or Metrics()
        self.batcher = MicroBatcher(self._embed_batch, max_batch, max_wait_s)
        # The stream's recent sentences (the miner's window) for the round-trip check; None: no such check.
        self.window: SentenceWindow | None = None
        self.reviewers: list[Reviewer] = []  # second opinions, asked in order, only about pairs still passing
        self.review_every_pair = False  # ask them about every pair (to measure them: `bench --judge`)

    @property
    def gate(self) -> OutageGate | None:
        """The embedding backend's outage gate (remote and guarded local embedders have one), for metrics."""
        return getattr(self.embedder, "gate", None)

    async def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self.metrics.embedding_batches.inc()
        return await self.embedder.embed(texts)

    async def __call__(self, req, positive: str, negative: str | None) -> Judgement:
        texts = [req.anchor, positive] + ([negative] if negative is not None else [])
        try:
            vectors = await self.batcher.embed(texts)
        except EmbeddingError as exc:
            raise JudgeUnavailable(exc.kind, str(exc)) from None
        except Exception as exc:  # the local model failed: this anchor's pair cannot be judged
            raise JudgeUnavailable("embedding_failed", f"{type(exc).__name__}: {exc}") from None
        scores = scores_of(vectors, self.embedder.name)
        found = findings(scores, req.anchor, positive, negative, hard_negative=req.spec.hard_negative,
                         limits=self.limits)
        form, abstained = form_review(req.anchor, positive, negative, query=req.spec.action == "query",
                                      example_words=example_words(req.spec, req.anchor))
        aligned, cannot = self._alignment(req.anchor, positive, negative)
        found += form + aligned
        for abstention in abstained + cannot:  # a check that cannot read the script passes the pair on to the others
            self.metrics.quality_abstentions.labels(abstention.check).inc()
            log.debug("record %s: %s abstains: %s", req.id, abstention.check, abstention.reason)
        if self.window is not None:
            found += filter(None, [round_trip_problem(self.window, req.id, req.anchor, vectors)])
        review = await self._reviews(req.anchor, positive, negative, found)
        found += review.problems
        observed = {"anchor_positive": scores.anchor_positive, "anchor_negative": scores.anchor_negative,
                    "margin": None if scores.margin is None else round(scores.margin, 4), **review.scores}
        for name, value in observed.items():
            if value is not None:
                self.metrics.quality_scores.labels(name).observe(value)
        return Judgement({**observed, "model": scores.model}, found, vectors)

    async def _reviews(self, anchor: str, positive: str, negative: str | None, found: list) -> Review:
        """The reviewers' findings and scores; each is asked only while nothing refused the pair (they cost a
        request)."""
        more = Review()
        for reviewer in self.reviewers:
            if (found or more.problems) and not self.review_every_pair:
                break
            try:
                review = await reviewer.review(anchor, positive, negative)
            except EmbeddingError as exc:
                raise JudgeUnavailable(exc.kind, str(exc)) from None
            more.problems += review.problems
            more.scores.update(review.scores)
        return more

    def _alignment(self, anchor: str, positive: str, negative: str | None) -> tuple[list, list]:
        """Token-level checks, where the embedder keeps its token vectors (the in-process model): problems and
        abstentions (a script the model's wordpieces cannot align)."""
        token_vectors = getattr(self.embedder, "token_vectors", None)
        if token_vectors is None:
            return [], []
        a, p = token_vectors(anchor), token_vectors(positive)
        n = token_vectors(negative) if negative is not None else None
        if a is None or p is None:  # evicted meanwhile (a very long batch): judged by the other checks only
            return [], []
        return alignment_review(a, p, n, min_token_match=self.limits.min_token_match,
                                max_negative_containment=self.limits.max_negative_containment)

    async def aclose(self) -> None:
        for backend in (self.embedder, *self.reviewers):
            close = getattr(backend, "aclose", None)
            if close is not None:
                await close()


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(max_copy=settings.quality_max_copy, max_char_ratio=settings.quality_max_char_ratio,
                      min_topic=settings.quality_min_topic,
                      negative_ratio=settings.quality_negative_ratio,
                      min_hard_negative=settings.quality_min_hard_negative,
                      min_token_match=settings.quality_min_token_match,
                      max_negative_containment=settings.quality_max_negative_containment)


def outage_gate(settings: Settings, backend: str) -> OutageGate:
    """A quality backend's own outage gate, tuned as the LLM's is."""
    return OutageGate(settings.llm_outage_failures, max_cooldown_s=settings.llm_outage_probe_max_s, backend=backend)


def build_judge(settings: Settings, metrics: Metrics | None = None) -> EmbeddingJudge | None:
    """The judge `settings` ask for: None with PAIRSTREAM_QUALITY=off; a remote embedder when
    PAIRSTREAM_EMBEDDINGS_BASE_URL is set; else all-MiniLM-L6-v2 in-process."""
    if settings.quality == "off":
        return None
    # Both backends retry like the LLM and hold behind their own gate during an outage (guard.py).
    retry = RetryPolicy(max_retries=settings.llm_max_retries)
    gate = outage_gate(settings, "embedding backend")
    if settings.embeddings_base_url:
        from streams.quality.remote import RemoteEmbedder

        embedder: Embedder = RemoteEmbedder(
            settings.embeddings_base_url, settings.embeddings_model, api_key=settings.embeddings_api_key,
            timeout_s=settings.embeddings_timeout_s, retry=retry, gate=gate,
            max_chars=settings.embeddings_max_chars)
    else:
        from streams.quality.guard import GuardedEmbedder
        from streams.quality.local_minilm import LocalMiniLM

        embedder = GuardedEmbedder(LocalMiniLM(), retry=retry, gate=gate)
    judge = EmbeddingJudge(embedder, thresholds(settings), metrics=metrics, max_batch=settings.embeddings_batch,
                           max_wait_s=settings.embeddings_wait_ms / 1000)
    judge.reviewers = build_reviewers(settings)
    return judge


def build_reviewers(settings: Settings) -> list["Reviewer"]:
    """The second opinions configured, cheapest first: the cross-encoder, then the LLM judge. Each has its
    own retries and outage gate, as the embedder has."""
    reviewers: list[Reviewer] = []
    retry = RetryPolicy(max_retries=settings.llm_max_retries)
    if settings.review_rerank_url:
        from streams.quality.rerank import RerankReviewer

        reviewers.append(RerankReviewer(
            settings.review_rerank_url, model=settings.review_rerank_model, api=settings.review_rerank_api,
            min_positive=settings.review_rerank_min_positive, max_negative=settings.review_rerank_max_negative,
            api_key=settings.review_rerank_api_key, timeout_s=settings.embeddings_timeout_s, retry=retry,
            gate=outage_gate(settings, "reranker")))
    if settings.review_llm_base_url:
        from streams.quality.llm_review import LLMReviewer

        reviewers.append(LLMReviewer(
            settings.review_llm_base_url, settings.review_llm_model or settings.llm_model,
            api_key=settings.review_llm_api_key, timeout_s=settings.review_llm_timeout_s, retry=retry,
            min_positive=settings.review_llm_min_positive, max_negative=settings.review_llm_max_negative,
            gate=outage_gate(settings, "LLM judge")))
    return reviewers


def build_miner(settings: Settings, judge: EmbeddingJudge | None = None) -> StreamMiner | None:
    """The in-stream miner `settings` ask for: None without the quality embeddings or with
    PAIRSTREAM_MINED_NEGATIVES=0. One per worker, shared by all its anchors in flight; with
    PAIRSTREAM_QUALITY_ROUND_TRIP, `judge` searches its window too."""
    if settings.quality == "off" or settings.mined_negatives == 0:
        return None
    from threadpoolctl import threadpool_limits

    # One BLAS thread in this process: a search streams the whole window from memory (15 MB at 10,000
    # sentences), which more threads do not speed up; OpenBLAS's idle threads spin instead (measured here:
    # 3.0 ms of CPU per search with its 2 threads, 1.4 ms with 1, the same wall time).
    threadpool_limits(1, user_api="blas")
    rules = MiningRules(k=settings.mined_negatives, negative_ratio=settings.mining_negative_ratio,
                        min_score=settings.mining_min_score)
    miner = StreamMiner(SentenceWindow(settings.mining_window, settings.mining_max_age_s), rules)
    if judge is not None and settings.quality_round_trip:
        judge.window = miner.window
    return miner
