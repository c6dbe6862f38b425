"""Topic creation (`streams.kafka.ensure_topics`) reads the broker's per-topic error codes: "already exists" is
fine, anything else (authorisation, policy, replication factor) is a clear error and exit code 1.

The embedded broker accepts every CreateTopics request, so the broker's answer is injected here: aiokafka's
admin client returns per-topic codes instead of raising, and that is exactly what the fake answers with."""

import asyncio
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import streams.kafka
from streams.cli import cli
from streams.kafka import TopicCreationError, ensure_topics
from streams.settings import Settings


def admin_answering(codes: dict[str, tuple[int, str | None]], existing: list[str] = ()):
    class FakeAdmin:
        created: list[str] = []

        def __init__(self, **kwargs):
            pass

        async def start(self):
            pass

        async def close(self):
            pass

        async def list_topics(self):
            return list(existing)

        async def create_topics(self, new_topics, **kwargs):
            FakeAdmin.created += [t.name for t in new_topics]
            errors = [(t.name, *codes.get(t.name, (0, None))) for t in new_topics]
            return SimpleNamespace(topic_errors=errors)

    return FakeAdmin


def test_a_refused_topic_is_an_error_naming_it(monkeypatch):
    """Review item: an authorisation or replication-factor failure was reported as "created"."""
    monkeypatch.setattr(streams.kafka, "AIOKafkaAdminClient", admin_answering({
        "anchors": (29, "Authorization failed."), "anchors-dlq": (38, None), "triplets": (0, None)}))
    with pytest.raises(TopicCreationError) as err:
        asyncio.run(ensure_topics(Settings(), ["anchors", "triplets", "anchors-dlq"]))
    text = str(err.value)
    assert "anchors: TopicAuthorizationFailedError (Authorization failed.)" in text
    assert "anchors-dlq: InvalidReplicationFactorError" in text and "triplets" not in text.split(":", 1)[1]


def test_already_exists_is_fine_and_existing_topics_are_not_created_again(monkeypatch):
    fake = admin_answering({"triplets": (36, "Topic with this name already exists.")}, existing=["anchors"])
    monkeypatch.setattr(streams.kafka, "AIOKafkaAdminClient", fake)
    created = asyncio.run(ensure_topics(Settings(), ["anchors", "triplets", "anchors-dlq"]))
    assert fake.created == ["triplets", "anchors-dlq"] and created == ["anchors-dlq"]


def test_publish_exits_1_when_its_topic_cannot_be_created(monkeypatch):
    monkeypatch.setattr(streams.kafka, "AIOKafkaAdminClient", admin_answering({"anchors": (29, None)}))
    result = CliRunner().invoke(cli, ["publish", "-", "--quiet"], input="One anchor.\n")
    assert result.exit_code == 1
    assert "cannot create topic" in result.output and "TopicAuthorizationFailedError" in result.output
