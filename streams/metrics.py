"""The worker's Prometheus metrics, served at `/metrics` on its web port.

Counters and the latency histogram are updated where things happen (agent,
generator); live state (anchors in flight, the concurrency limit, consumer lag
per partition, LLM outage) is read when Prometheus scrapes, so it costs nothing
between scrapes. Each app gets its own registry: several workers can live in one
process (tests, `demo`) without their series colliding.

Label values come from small fixed sets (stages, error kinds, HTTP status codes);
no record ids, anchors or URLs ever become labels.
"""

from dataclasses import dataclass
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

disable_created_metrics()  # `*_created` series double the output and no dashboard uses them

CONTENT_TYPE = "text/plain; version=0.0.4"  # Prometheus text format (UTF-8)

# LLM requests take from milliseconds (a cached small model) to minutes (a long generation on a busy GPU).
LLM_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# Cosine similarities and margins, -1 to 1.
SCORE_BUCKETS = tuple(round(-1 + 0.1 * i, 1) for i in range(21))
MINED_BUCKETS = (0, 1, 2, 3, 4, 6, 8, 16, 32)


class Metrics:
    """Every series the worker exports. `names()` lists them for the dashboard test and the README."""

    def __init__(self, registry: CollectorRegistry | None = None):
        r = self.registry = registry or CollectorRegistry()
        self.anchors_consumed = Counter(
            "pairstream_anchors_consumed", "Anchors taken from the anchors topic (redeliveries included).", registry=r)
        self.triplets_produced = Counter(
            "pairstream_triplets_produced", "Triplet records produced and acknowledged by the broker.", registry=r)
        self.dead_letters = Counter(
            "pairstream_dead_letters", "Dead-letter records produced, by stage and error type.",
            ["stage", "error"], registry=r)
        self.redeliveries_skipped = Counter(
            "pairstream_redeliveries_skipped", "Redelivered anchors whose record the group had already produced "
            "(its id seen on the output topics): acked without an LLM call.", registry=r)
        self.produce_retries = Counter(
            "pairstream_produce_retries", "Output records sent again after the broker did not take them within the "
            "producer's delivery timeout (an outage), by error type.", ["error"], registry=r)
        self.llm_requests = Counter(
            "pairstream_llm_requests", "HTTP requests to the LLM, by HTTP status code or `timeout`, `connection`, "
            "`bad_response`.", ["status"], registry=r)
        self.llm_retries = Counter(
            "pairstream_llm_retries", "Transport retries (429, 5xx, timeouts, connection errors), by what failed.",
            ["reason"], registry=r)
        self.candidates = Counter(
            "pairstream_candidates", "Candidates generated (best of n), by outcome: delivered, passed (passed the gate "
            "but another was better), refused, invalid (did not parse or validate).", ["outcome"], registry=r)
        self.generation_retries = Counter(
            "pairstream_generation_retries", "Re-asks after output that did not parse or validate, by problem.",
            ["problem"], registry=r)
        self.llm_latency = Histogram(
            "pairstream_llm_request_duration_seconds", "Duration of one LLM HTTP request (answered or failed).",
            buckets=LLM_LATENCY_BUCKETS, registry=r)
        self.llm_tokens = Counter(
            "pairstream_llm_tokens", "Tokens reported by the LLM's usage: `prompt` (in) and `completion` (out).",
            ["kind"], registry=r)

        self.quality_scores = Histogram(
            "pairstream_quality_score", "Embedding scores of every judged pair: `anchor_positive`, `anchor_negative` "
            "(cosines) and `margin` (their difference).", ["score"], buckets=SCORE_BUCKETS, registry=r)
        self.quality_rejections = Counter(
            "pairstream_quality_rejections", "Pairs the quality checks found wrong, by problem (near_copy, off_topic, "
            "false_negative, easy_negative, invented, entailed_negative, fragment, repetition, degenerate, "
            "example_leak, round_trip, and the reviewers' rerank_* and llm_judge_*); a pair can have two.", ["problem"], registry=r)
        self.quality_abstentions = Counter(
            "pairstream_quality_abstentions", "Checks that could not judge a pair and passed it on to the others, by "
            "check (e.g. `invented` or `fragment` on text not in Latin script: their word lists are English).",
            ["check"], registry=r)
        self.mined_negatives = Histogram(
            "pairstream_mined_negatives", "Negatives mined from the stream per delivered record (0 while the index "
            "warms up or when no sentence passes the rules).", buckets=MINED_BUCKETS, registry=r)
        self.mining_feed = Counter(
            "pairstream_mining_feed", "Records of the mining topic (the group's sentences with their vectors): "
            "`sent` (this worker's), `received` (into the index), `refused` (another embedder or vector width, too "
            "old, or not a mining record), `failed` (not sent).", ["event"], registry=r)
        self.embedding_batches = Counter(
            "pairstream_embedding_batches", "Embedding backend calls (micro-batches of the anchors in flight).",
            registry=r)

        # Live state, read at scrape time; the app replaces `state` with readers of the running worker.
        self.state = StateReader()
        r.register(_StateCollector(self))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def names(self) -> set[str]:
        """Every sample name this worker exports (`_total`, `_bucket`... included), labelled or not."""
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
        return {family.name + suffix for family in self.registry.collect() for suffix in suffixes[family.type]}


STATE_SERIES = {
    "pairstream_anchors_in_flight": "Anchors taken but not yet finished (at most twice the concurrency limit).",
    "pairstream_llm_requests_in_flight": "LLM HTTP requests in flight.",
    "pairstream_concurrency_limit": "Current limit of LLM requests in flight (moves when concurrency is `auto`).",
    "pairstream_llm_outage": "1 while the LLM is considered down (requests held, probing), else 0.",
    "pairstream_embeddings_outage": "1 while the quality gate's embedding backend is considered down, else 0.",
    "pairstream_partitions_assigned": "Partitions of the anchors topic assigned to this worker.",
    "pairstream_consumer_lag": "Anchors not yet committed per partition: high watermark minus committed offset.",
    "pairstream_mining_window_sentences": "Sentences in the in-stream mining index (bounded by count and age).",
}


@dataclass
class StateReader:
    """Callables the app provides so metrics can read live state without importing Faust."""

    anchors_in_flight: Callable[[], int] = lambda: 0
    llm_in_flight: Callable[[], int] = lambda: 0
    concurrency_limit: Callable[[], int] = lambda: 0
    llm_outage: Callable[[], bool] = lambda: False
    embeddings_outage: Callable[[], bool] = lambda: False
    partitions_assigned: Callable[[], int] = lambda: 0
    lag: Callable[[], Iterable[tuple[str, int, int]]] = lambda: ()  # (topic, partition, lag) per assigned partition
    mining_window: Callable[[], int] = lambda: 0


class _StateCollector(Collector):
    def __init__(self, metrics: Metrics):
        self.metrics = metrics

    def collect(self):
        r = self.metrics.state
        for name, value in (("pairstream_anchors_in_flight", r.anchors_in_flight()),
                            ("pairstream_llm_requests_in_flight", r.llm_in_flight()),
                            ("pairstream_concurrency_limit", r.concurrency_limit()),
                            ("pairstream_llm_outage", int(r.llm_outage())),
                            ("pairstream_embeddings_outage", int(r.embeddings_outage())),
                            ("pairstream_partitions_assigned", r.partitions_assigned()),
                            ("pairstream_mining_window_sentences", r.mining_window())):
            yield GaugeMetricFamily(name, STATE_SERIES[name], value=value)
        lag = GaugeMetricFamily("pairstream_consumer_lag", STATE_SERIES["pairstream_consumer_lag"],
                                labels=["topic", "partition"])
        for topic, partition, value in r.lag():
            lag.add_metric([topic, str(partition)], value)
        yield lag
