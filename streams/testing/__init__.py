"""Test utilities shipped with pairstream: a fake OpenAI-compatible server for fault injection and benchmarks."""

from streams.testing.fake_llm import FakeLLM, Reply, echo_pair

__all__ = ["FakeLLM", "Reply", "echo_pair"]
