"""What `pairstream bench` runs: the fake backend's shape, the load and the worker's concurrency.

The CLI derives its `bench` options from `BenchConfig`'s fields (name, default,
bounds, description), so the defaults and validation live here only.
"""

import math
import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

# Fields that are not command-line options (set by code: sweeps, tests).
INTERNAL_FIELDS = ("partitions", "timeout_s", "worker_env", "unique_anchors", "remote_embeddings")


class BenchConfig(BaseModel):
    """One benchmark run. Capacity of the backend: slots / mean latency (lognormal: median * exp(sigma^2 / 2))."""

    anchors: int = Field(2000, ge=20, description="Anchors in the saturation phase (published at once, a backlog).")
    warmup: int = Field(200, ge=0, description="Warm-up anchors.")
    slots: int = Field(32, ge=1, description="Requests the fake backend serves at once.")
    latency_ms: float = Field(500.0, ge=0, description="Median latency of the fake backend.")
    sigma: float = Field(0.6, ge=0, description="Lognormal sigma of the backend's latency.")
    max_queue: int | None = Field(
        None, ge=0, description="Backend answers 429 when more than this many requests wait for a slot "
        "(default: it queues).")
    concurrency: str | None = Field(
        None, description="Worker concurrency: an integer or auto [default: PAIRSTREAM_CONCURRENCY, else --slots].")
    burst: int = Field(1, ge=1, description="Publish this many times --anchors at once (memory must stay flat).")
    latency_load: float = Field(
        0.8, ge=0.05, le=1.0, description="Offered load of the latency phase, as a fraction of the measured "
        "throughput.")
    latency_anchors: int | None = Field(
        None, ge=0, description="Anchors in the latency phase [default: half of --anchors, at least 100; 0 skips it].")
    sentences: Path | None = Field(
        None, description="One anchor a line [default: ../shared/data/stsb_test_sentences.txt, else the shipped "
        "sample].")
    seed: int = Field(0, description="Seed of the backend's latency draws.")
    quality: Literal["off", "flag", "gate"] = Field(
        "off", description="The worker's PAIRSTREAM_QUALITY. `flag` scores every record with the local embedding "
        "model without re-asking (the fake backend's canned pairs would fail `gate`).")
    mining_window: int = Field(
        10_000, ge=1, description="The worker's PAIRSTREAM_MINING_WINDOW (sentences) in --compare mining.")
    partitions: int = Field(8, ge=1)
    timeout_s: float = 900.0
    worker_env: dict[str, str] = Field(default_factory=dict)
    unique_anchors: bool = False  # distinct texts past the sentence file's end (a mining window can fill)
    remote_embeddings: bool = False  # the gate embeds through the fake backend's /v1/embeddings (costs it nothing)

    @field_validator("concurrency")
    @classmethod
    def _int_or_auto(cls, value: str | None) -> str | None:
        if value is not None and value != "auto" and not (value.isdigit() and int(value) >= 1):
            raise ValueError(f"an integer >= 1 or auto (got {value!r})")
        return value

    @model_validator(mode="after")
    def _default_concurrency(self) -> "BenchConfig":
        if self.concurrency is None:
            self.concurrency = self._int_or_auto(os.environ.get("PAIRSTREAM_CONCURRENCY") or str(self.slots))
        return self

    @field_validator("sentences")
    @classmethod
    def _exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @property
    def saturation_anchors(self) -> int:
        return self.anchors * self.burst

    @property
    def latency_phase_anchors(self) -> int:
        return self.latency_anchors if self.latency_anchors is not None else max(100, self.anchors // 2)

    @property
    def mean_latency_s(self) -> float:
        return self.latency_ms / 1000 * math.exp(self.sigma**2 / 2)

    @property
    def capacity(self) -> float:
        """Requests/s of a backend whose slots are always busy."""
        return self.slots / self.mean_latency_s if self.latency_ms > 0 else math.inf

    @property
    def capacity_by_median(self) -> float:
        return self.slots / (self.latency_ms / 1000) if self.latency_ms > 0 else math.inf
