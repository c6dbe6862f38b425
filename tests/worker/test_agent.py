"""The worker against the embedded broker and a fake LLM: every anchor ends as one triplet or one dead
letter, per-record fields are honoured, concurrency is bounded, and acks never pass an in-flight anchor."""

import asyncio
import logging

import orjson
import pytest

from support.kafka import account, produce, read_topic
from streams.worker.agent import InOrderAcker
from streams.bench.fake_llm import Reply

pytestmark = pytest.mark.integration


def test_json_and_bare_text_anchors_become_complete_triplets(broker, names, fake_llm, start_worker):
    llm = fake_llm(model="fake-served-model")
    values = [
        b"A man is playing a flute.",
        orjson.dumps({"anchor": "Who wrote Hamlet?", "id": "q-1", "action": "answer", "triplet": False,
                      "metadata": {"source": "quiz"}}),
        orjson.dumps({"anchor": "Stocks fell on Monday.", "id": "h-1", "hard_negative": True,
                      "context": "Financial news.", "action": "semantically-similar"}),
    ]
    produce(broker, names["anchors"], values)
    worker = start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_ACTION="query")
    records = {r["anchor"]: r for r in read_topic(broker, names["triplets"], 3)}
    assert len(records) == 3, worker.log[-2000:]

    bare = records["A man is playing a flute."]
    assert bare["action"] == "query" and bare["triplet"] is True and bare["negative"]
    assert bare["source"]["topic"] == names["anchors"] and bare["_key"] == bare["id"].encode()
    assert bare["model_name"] == "fake-served-model" and bare["usage"]["prompt_tokens"] == 50
    assert bare["attempts"] == 1 and bare["latency_ms"] >= 0 and bare["generated_at"].endswith("Z")

    pair = records["Who wrote Hamlet?"]
    assert (pair["id"], pair["action"], pair["triplet"], pair["negative"], pair["metadata"]) == (
        "q-1", "answer", False, None, {"source": "quiz"})

    hard = records["Stocks fell on Monday."]
    assert (hard["hard_negative"], hard["context"], hard["action"]) == (True, "Financial news.", "semantically-similar")

    prompts = {r["messages"][-1]["content"]: r for r in llm.requests}
    hard_req = next(r for c, r in prompts.items() if "Stocks fell" in c)
    assert "hard negative" in hard_req["messages"][0]["content"]
    assert "## Context\n\nFinancial news." in hard_req["messages"][-1]["content"]
    pair_req = next(r for c, r in prompts.items() if "Hamlet" in c)
    assert pair_req["response_format"]["json_schema"]["schema"]["required"] == ["positive"]
    assert "an answer to" in pair_req["messages"][0]["content"]
    assert read_topic(broker, names["dlq"], 1, timeout=1) == []


def test_bad_input_becomes_dead_letters_and_the_worker_keeps_going(broker, names, fake_llm, start_worker):
    llm = fake_llm()
    values = [b"\xff\xfe", b"[1,2]", b"", b'{"anchor": "tru', b'{"anchor": "  "}', b'{"anchor": "x", "action": "nah"}',
              b"A good anchor after the bad ones."]
    produce(broker, names["anchors"], values, partition=0)
    start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url)
    letters = read_topic(broker, names["dlq"], 6)
    triplets = read_topic(broker, names["triplets"], 1)
    assert len(triplets) == 1 and triplets[0]["anchor"] == "A good anchor after the bad ones."
    by_offset = {d["source"]["offset"]: d for d in letters}
    assert sorted(by_offset) == [0, 1, 2, 3, 4, 5]
    assert [by_offset[i]["error"]["type"] for i in range(6)] == [
        "not_utf8", "not_an_object", "empty_value", "invalid_json", "invalid_anchor", "unknown_action"]
    assert by_offset[0]["raw_encoding"] == "base64" and by_offset[3]["raw"] == '{"anchor": "tru'
    assert all(d["id"] and d["failed_at"] for d in letters)


def test_llm_failures_become_dead_letters_with_stage(broker, names, fake_llm, start_worker):
    def behaviour(body, n):
        text = body["messages"][-1]["content"]
        if "forbidden" in text:
            return Reply(status=400, content="content policy")
        if "garbled" in text:
            return Reply(content="I cannot do JSON")
        return None

    llm = fake_llm(behaviour=behaviour)
    produce(broker, names["anchors"], [b"a forbidden anchor", b"a garbled anchor", b"a fine anchor"])
    start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_MAX_GENERATION_ATTEMPTS="2")
    letters = {d["raw"]: d for d in read_topic(broker, names["dlq"], 2)}
    assert letters["a forbidden anchor"]["stage"] == "llm" and "HTTP 400" in letters["a forbidden anchor"]["error"]["message"]
    assert letters["a garbled anchor"]["stage"] == "parse" and letters["a garbled anchor"]["attempts"] == 2
    assert letters["a garbled anchor"]["last_output"] == "I cannot do JSON"
    assert [t["anchor"] for t in read_topic(broker, names["triplets"], 1)] == ["a fine anchor"]


def test_concurrency_is_used_and_bounded(broker, names, fake_llm, start_worker):
    llm = fake_llm(latency_s=0.3)
    produce(broker, names["anchors"], [f"Anchor number {i}.".encode() for i in range(40)])
    start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_CONCURRENCY="6")
    assert len(read_topic(broker, names["triplets"], 40)) == 40
    assert llm.max_in_flight == 6


def test_auto_concurrency_finds_the_slots_of_a_backend_it_is_not_told(broker, names, fake_llm, start_worker):
    """`auto` against a backend of 8 slots that answers 429 beyond them: every anchor becomes a triplet,
    the backend runs full, and 429s stay rare (the limit backs off instead of hammering it)."""
    n = 400
    llm = fake_llm(latency_s=0.1, sigma=0.3, slots=8, max_queue=0)
    produce(broker, names["anchors"], [f"Anchor number {i}.".encode() for i in range(n)])
    start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_CONCURRENCY="auto", PAIRSTREAM_LLM_MAX_RETRIES="8")
    acc = account(broker, names, n)
    print(f"\nauto concurrency: {llm.served} served, {llm.rejected} answered 429, max in flight {llm.max_in_flight}")
    assert not acc.lost and not acc.dead_letters and len({t["id"] for t in acc.triplets}) == n
    assert llm.max_in_flight == 8  # it found (and used) every slot
    assert llm.rejected < 0.1 * llm.served, f"{llm.rejected} of {llm.served + llm.rejected} answered 429"


class _Msg:
    def __init__(self, partition, offset, generation_id=1):
        self.tp = ("t", partition)
        self.offset = offset
        self.generation_id = generation_id


class _Event:
    def __init__(self, partition, offset, generation_id=1):
        self.message = _Msg(partition, offset, generation_id)


class _Stream:
    def __init__(self):
        self.acked = []

    async def ack(self, event):
        self.acked.append((event.message.tp[1], event.message.offset))


async def test_in_order_acker_never_acks_past_an_unfinished_event():
    stream = _Stream()
    acker = InOrderAcker(stream)
    t = {(p, o): acker.track(_Event(p, o)) for p in (0, 1) for o in range(3)}
    await acker.done(t[0, 1])
    await acker.done(t[0, 2])
    await acker.done(t[1, 0])
    assert stream.acked == [(1, 0)]  # partition 0 waits for offset 0
    await acker.done(t[0, 0])
    assert stream.acked == [(1, 0), (0, 0), (0, 1), (0, 2)]
    assert acker.in_flight == 2


async def test_in_order_acker_never_acks_an_event_from_an_earlier_generation():
    stream, generation = _Stream(), [1]
    acker = InOrderAcker(stream, generation=lambda: generation[0])
    old = acker.track(_Event(0, 0, generation_id=1))
    generation[0] = 2  # a rebalance happened while it was in flight: the partition is re-read from the commit
    new = acker.track(_Event(0, 0, generation_id=2))
    await acker.done(old)
    await acker.done(new)
    assert stream.acked == [(0, 0)] and acker.in_flight == 0  # only the new generation's ack


# -- producing: a retriable failure waits and re-sends, only a refusal of the record makes a dead letter ---------

class _FakeProducer:
    """`send_and_wait` raises the next scripted error of a topic (None: delivered) and records every call."""

    def __init__(self, script: dict[str, list[BaseException | None]]):
        self.script = {topic: list(errors) for topic, errors in script.items()}
        self.calls: list[tuple[str, bytes]] = []

    async def send_and_wait(self, topic, key, value, partition, timestamp, headers):
        self.calls.append((topic, key))
        errors = self.script.get(topic) or [None]
        error = errors.pop(0) if len(errors) > 1 else errors[0]
        if error is not None:
            raise error

    def delivered(self, topic: str) -> int:
        return sum(1 for t, _ in self.calls if t == topic)


class _FakeApp:
    def __init__(self, producer):
        self.producer = producer


class _AnchorMsg:
    topic, partition, value = "anchors", 0, b"An anchor."

    def __init__(self, offset: int = 7):
        self.offset = offset


def _agent(producer):
    from streams.generate.limits import limit_for
    from streams.settings import Settings
    from streams.worker.agent import AnchorAgent
    from streams.worker.processor import AnchorProcessor

    settings = Settings(triplets_topic="triplets", dlq_topic="dlq")
    agent = AnchorAgent(_FakeApp(producer), AnchorProcessor(settings, generator=None), limit_for(4))
    agent.delivery.backoff_s = 0.05  # the real first wait is 0.5 s
    return agent


def _triplet(i: int = 0):
    from streams.worker.processor import Outcome

    return Outcome("triplet", "triplets", f"id-{i}".encode(), b'{"id": "x"}', attempts=1)


def _dead_letter():
    from streams.worker.processor import Outcome

    return Outcome("dead_letter", "dlq", b"id-0", b'{"id": "x"}', "llm", "http_400", "refused", 1)


def _sending(exc: BaseException) -> BaseException:
    """An error raised while the record is scheduled: Faust wraps aiokafka's in ProducerSendError."""
    from faust.exceptions import ProducerSendError

    try:
        raise ProducerSendError(f"Error while sending: {exc!r}") from exc
    except ProducerSendError as wrapped:
        return wrapped


def _retriable():
    from aiokafka import errors as E

    return {
        "node not ready": E.NodeNotReadyError("node 1 not ready"),  # the broker unreachable past the batch's expiry
        "request timed out": E.RequestTimedOutError(),  # a produce request unanswered (network cut)
        "connection lost": E.KafkaConnectionError("Connection at 127.0.0.1:9092 closed"),
        "not leader": E.NotLeaderForPartitionError(),  # no leader known when the batch expired
        "leader not available": E.LeaderNotAvailableError(),
        "not enough replicas": E.NotEnoughReplicasError(),
        "send buffer full (timeout)": _sending(E.KafkaTimeoutError()),  # aiokafka says retriable=False, but it is
        "no metadata": _sending(E.UnknownTopicOrPartitionError()),
    }


def _permanent():
    from aiokafka import errors as E

    return {
        "too large (client)": _sending(E.MessageSizeTooLargeError("The message is 1300000 bytes")),
        "too large (broker)": E.MessageSizeTooLargeError(),
        "record too large": E.RecordTooLargeError(),
        "invalid record": E.for_code(87)(),
        "corrupt record": E.CorruptRecordException(),
        "not authorised": E.TopicAuthorizationFailedError("triplets"),
        "serialization": TypeError("value must be bytes"),
    }


@pytest.mark.parametrize("name", list(_retriable()))
async def test_a_triplet_is_resent_after_a_retriable_produce_error_not_dead_lettered(name):
    """Review item 13: past the producer's delivery timeout a broker outage turned triplets into `produce` dead
    letters (and crashed the worker when the dead letter failed too). A retriable error re-sends the triplet."""
    producer = _FakeProducer({"triplets": [_retriable()[name], _retriable()[name], None]})
    agent = _agent(producer)
    await asyncio.wait_for(agent._produce(_triplet(), _AnchorMsg()), 20)
    assert producer.calls == [("triplets", b"id-0")] * 3
    assert agent.metrics.triplets_produced._value.get() == 1


@pytest.mark.parametrize("name", list(_permanent()))
async def test_a_triplet_the_broker_refuses_for_good_becomes_one_dead_letter(name):
    error = _permanent()[name]
    producer = _FakeProducer({"triplets": [error], "dlq": [None]})
    agent = _agent(producer)
    await asyncio.wait_for(agent._produce(_triplet(), _AnchorMsg()), 20)
    assert producer.calls == [("triplets", b"id-0"), ("dlq", b"id-0")]
    assert agent.metrics.triplets_produced._value.get() == 0
    # the dead letter names the producer's own error, not Faust's wrapper around it
    kind = type(error.__cause__ or error).__name__
    assert agent.metrics.dead_letters.labels("produce", kind)._value.get() == 1


async def test_a_dead_letter_is_resent_after_retriable_errors_instead_of_crashing():
    from aiokafka import errors as E

    producer = _FakeProducer({"dlq": [E.NodeNotReadyError("down"), E.RequestTimedOutError(), None]})
    agent = _agent(producer)
    await asyncio.wait_for(agent._produce(_dead_letter(), _AnchorMsg()), 20)
    assert producer.calls == [("dlq", b"id-0")] * 3


async def test_a_refused_triplet_whose_dead_letter_waits_out_an_outage_is_dead_lettered_once():
    from aiokafka import errors as E

    producer = _FakeProducer({"triplets": [_sending(E.MessageSizeTooLargeError())],
                              "dlq": [E.KafkaConnectionError("closed"), None]})
    agent = _agent(producer)
    await asyncio.wait_for(agent._produce(_triplet(), _AnchorMsg()), 20)
    assert producer.calls == [("triplets", b"id-0"), ("dlq", b"id-0"), ("dlq", b"id-0")]


async def test_a_dead_letter_refused_for_good_stops_the_worker_without_acking():
    from aiokafka import errors as E

    from streams.worker.agent import FatalProduceError

    producer = _FakeProducer({"dlq": [E.TopicAuthorizationFailedError("dlq")]})
    with pytest.raises(FatalProduceError):
        await asyncio.wait_for(_agent(producer)._produce(_dead_letter(), _AnchorMsg()), 20)


async def test_an_outage_is_logged_once_for_all_records_waiting_not_once_per_record(caplog):
    from aiokafka import errors as E

    producer = _FakeProducer({"triplets": [E.NodeNotReadyError("down")] * 3 + [None]})
    agent = _agent(producer)
    with caplog.at_level(logging.INFO, logger="pairstream"):
        await asyncio.wait_for(asyncio.gather(*(agent._produce(_triplet(i), _AnchorMsg(i)) for i in range(20))), 30)
    assert producer.delivered("triplets") >= 23 and producer.delivered("dlq") == 0
    assert {key for _, key in producer.calls} == {f"id-{i}".encode() for i in range(20)}
    waiting = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(waiting) == 1, [r.getMessage() for r in waiting]
    assert "waiting for the broker" in waiting[0].getMessage() and "NodeNotReadyError" in waiting[0].getMessage()
    back = [r.getMessage() for r in caplog.records if "takes records again" in r.getMessage()]
    assert len(back) == 1 and "3 re-sends" in back[0], back
    assert agent.metrics.produce_retries.labels("NodeNotReadyError")._value.get() == 3


# -- what the broker holds decides what a redelivery skips and what is mined from ---------------------------------

async def test_only_a_triplet_the_broker_took_is_mined_from_or_skipped_on_redelivery():
    """Review: the miner shared a record's sentences before its produce was acknowledged, and the produced-ids
    skip learnt dead-lettered ids too (a corrected anchor sent again was never generated)."""
    from types import SimpleNamespace

    import numpy as np

    from streams.group.produced import ProducedIds
    from streams.quality.mining import MiningRules, SentenceWindow, StreamMiner
    from streams.worker.processor import Outcome

    shared = []
    miner = StreamMiner(SentenceWindow(100, 3600), MiningRules(k=1), share=lambda rid, texts, v: shared.append(rid))
    producer = _FakeProducer({"triplets": [None], "dlq": [None]})
    agent = _agent(producer)
    agent.produced, agent.miner = ProducedIds(100), miner
    outcomes = {"delivered": _triplet(1), "refused": _triplet(2), "failed": Outcome(
        "dead_letter", "dlq", b"id-3", b"{}", "llm", "http_400", "refused", 1)}
    for i, name in enumerate(outcomes, 1):
        await miner(f"id-{i}", f"Anchor {i}.", f"Positive {i}.", None, np.eye(4, dtype=np.float32)[:2])
    producer.script["triplets"] = [None]

    class _Acker:
        async def done(self, ticket):
            pass

    for name, outcome in outcomes.items():
        if name == "refused":
            producer.script["triplets"] = [_permanent()["record too large"]]
        agent.processor.process = lambda *args, outcome=outcome: asyncio.sleep(0, outcome)
        await agent._handle(SimpleNamespace(message=_AnchorMsg()), None, _Acker())
    assert [t for t, _ in producer.calls] == ["triplets", "triplets", "dlq", "dlq"]
    assert "id-1" in agent.produced and "id-2" not in agent.produced and "id-3" not in agent.produced
    assert shared == ["id-1"] and set(miner.window.record_ids) - {None} == {"id-1"}
