"""`pairstream broker` runs a real Kafka-compatible broker, prints its address and stops on SIGTERM."""

import signal

import pytest

from support.kafka import produce, read_topic
from support.processes import spawn_cli
from streams.local.broker import EmbeddedBroker
from streams.local.processes import free_port

pytestmark = pytest.mark.integration


def test_broker_command_serves_kafka_and_stops_cleanly():
    port = free_port()
    proc = spawn_cli("broker", "--port", str(port), text=True)
    try:
        line = proc.stdout.readline()
        assert line.strip() == f"broker listening: PAIRSTREAM_BROKER=kafka://127.0.0.1:{port}"
        handle = EmbeddedBroker(port=port)  # only used for its addresses
        produce(handle, "smoke", [b"{\"hello\": 1}"])
        assert read_topic(handle, "smoke", 1) == [{"_key": None, "hello": 1}]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
