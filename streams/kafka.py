"""Kafka connection details shared by the worker (Faust), `publish` and `consume` (aiokafka).

Security settings are translated once here, for both client libraries, so that
a SASL_SSL cluster works the same for every command.
"""

import ssl
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka import errors as kafka_errors
from aiokafka.errors import TopicAlreadyExistsError

from streams.settings import Settings


def ssl_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.broker_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    cafile = str(settings.broker_ca_file) if settings.broker_ca_file else None
    return ssl.create_default_context(cafile=cafile)


def aiokafka_kwargs(settings: Settings) -> dict[str, Any]:
    """Connection kwargs for AIOKafkaProducer / AIOKafkaConsumer / admin client."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.broker_security_protocol,
    }
    ctx = ssl_context(settings)
    if ctx is not None:
        kwargs["ssl_context"] = ctx
    if settings.broker_security_protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = settings.broker_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.broker_sasl_username
        kwargs["sasl_plain_password"] = (
            settings.broker_sasl_password.get_secret_value() if settings.broker_sasl_password else None
        )
    return kwargs


def faust_credentials(settings: Settings) -> Any:
    """`broker_credentials` for faust.App, or None for PLAINTEXT."""
    ctx = ssl_context(settings)
    if settings.broker_security_protocol.startswith("SASL"):
        password = settings.broker_sasl_password.get_secret_value() if settings.broker_sasl_password else None
        return faust.SASLCredentials(
            username=settings.broker_sasl_username, password=password, ssl_context=ctx,
            mechanism=settings.broker_sasl_mechanism,
        )
    if ctx is not None:
        return faust.SSLCredentials(ctx)
    return None


class TopicCreationError(RuntimeError):
    """The broker refused to create a topic (authorisation, policy, replication factor...); exit code 1."""


def worker_topics(settings: Settings) -> list[str]:
    """The topics a worker reads and writes, created before it starts."""
    return [settings.anchors_topic, settings.triplets_topic, settings.dlq_topic] + (
        [settings.mining_topic_name] if settings.mines_from_group else [])


async def ensure_topics(settings: Settings, names: list[str]) -> list[str]:
    """Create the topics that do not exist yet (with `topic_partitions`); returns those this call created.

    aiokafka returns the broker's per-topic error codes instead of raising: "already exists" (another worker
    was quicker) is fine, any other code raises TopicCreationError naming the topic and the error.
    """
    admin = AIOKafkaAdminClient(**aiokafka_kwargs(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [n for n in dict.fromkeys(names) if n not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [NewTopic(n, num_partitions=settings.topic_partitions, replication_factor=settings.topic_replicas)
             for n in missing]
        )
        created, refused = [], []
        for topic, code, *message in response.topic_errors:  # v0 has no message
            if code == 0:
                created.append(topic)
            elif code != TopicAlreadyExistsError.errno:
                detail = f" ({message[0]})" if message and message[0] else ""
                refused.append(f"{topic}: {kafka_errors.for_code(code).__name__}{detail}")
        if refused:
            raise TopicCreationError(f"cannot create topic(s) on {settings.broker}: {'; '.join(refused)}")
        return created
    finally:
        await admin.close()
