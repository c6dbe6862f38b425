"""The outage gate: after N outage errors in a row requests hold, one probe at a time goes out with a doubling
cooldown, and the first success releases everyone; held requests spend no retries."""

import asyncio
import time

from streams.generate.decode import AnchorRequest
from streams.generate.generator import Generated, Generator
from streams.generate.llm import LLMClient
from streams.generate.outage import OutageGate
from streams.settings import Settings
from streams.generate.task import TaskSpec
from streams.bench.fake_llm import Reply
from schemas import Source


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


async def test_gate_opens_after_consecutive_failures_and_probes_with_doubling_cooldown():
    clock = Clock()
    gate = OutageGate(failures_to_open=3, cooldown_s=1, max_cooldown_s=4, clock=clock)
    gate.failure("connection")
    gate.success()  # a success in between resets the count
    gate.failure("connection")
    gate.failure("connection")
    assert not gate.is_open and await gate.wait() is False
    gate.failure("timeout")
    assert gate.is_open and gate.outages == 1

    waiter = asyncio.ensure_future(gate.wait())
    await asyncio.sleep(0.1)
    assert not waiter.done()  # cooldown not over: hold
    clock.now += 1
    assert await asyncio.wait_for(waiter, 2) is True  # this one is the probe
    second = asyncio.ensure_future(gate.wait())
    clock.now += 10
    await asyncio.sleep(0.1)
    assert not second.done()  # only one probe at a time

    gate.failure("connection", probe=True)  # the probe failed: next probe after 2 s, then 4 s (the cap)
    assert gate.open_until == clock.now + 2
    clock.now += 2
    assert await asyncio.wait_for(second, 2) is True
    gate.failure("connection", probe=True)
    assert gate.open_until == clock.now + 4
    clock.now += 4
    assert await gate.wait() is True
    gate.failure("connection", probe=True)
    assert gate.open_until == clock.now + 4  # capped
    clock.now += 4
    assert await gate.wait() is True
    held = [asyncio.ensure_future(gate.wait()) for _ in range(3)]
    await asyncio.sleep(0.05)
    gate.success(probe=True)  # the probe answered: the backend is back, everybody goes
    assert await asyncio.wait_for(asyncio.gather(*held), 2) == [False, False, False]
    assert not gate.is_open and gate.cooldown_s == 1


async def test_abandoned_probe_lets_another_request_probe():
    clock = Clock()
    gate = OutageGate(failures_to_open=1, cooldown_s=1, clock=clock)
    gate.failure("connection")
    clock.now += 1
    assert await gate.wait() is True
    gate.probe_abandoned()
    assert await asyncio.wait_for(gate.wait(), 2) is True


async def test_disabled_gate_never_holds():
    gate = OutageGate(failures_to_open=0)
    for _ in range(10):
        gate.failure("connection")
    assert not gate.is_open and await gate.wait() is False


def _request(n: int) -> AnchorRequest:
    return AnchorRequest(id=f"r{n}", anchor=f"Anchor sentence number {n}.", spec=TaskSpec("paraphrase", True, False, None),
                         metadata=None, source=Source(topic="t", partition=0, offset=n))


async def test_outage_holds_requests_instead_of_spending_retries(fake_llm):
    """8 anchors in flight, backend down for 3 s, 6 retries each with short backoff: without the gate every anchor
    spends its 7 tries in about 1.5 s and fails; with it the backend sees a few probes and every anchor succeeds."""
    outage_s = 3.0
    start: list[float] = []

    def behaviour(body, n):
        start or start.append(time.monotonic())
        return Reply(status=503) if time.monotonic() - start[0] < outage_s else None

    llm = fake_llm(behaviour=behaviour)
    settings = Settings(llm_base_url=llm.base_url, llm_max_retries=6, llm_outage_failures=3, llm_outage_probe_max_s=1)
    async with LLMClient(llm.base_url, max_connections=8) as client:
        gen = Generator(client, settings)
        gen.retry.backoff_base_s = 0.05
        results = await asyncio.gather(*(gen.generate(_request(i)) for i in range(8)))
    assert all(isinstance(r, Generated) for r in results), results
    failed = len(llm.requests) - 8  # each anchor succeeded exactly once
    assert gen.gate.outages == 1
    # the 8 first tries fail, then about one probe a second during the outage
    assert 8 <= failed <= 8 + 5, failed


async def test_only_the_probes_own_result_moves_an_open_gate():
    """Review item: a stale request (sent before the gate opened) failing after it opened reset the probe
    state and doubled the cool-down, so a second probe could go out while the first was in flight."""
    clock = Clock()
    gate = OutageGate(failures_to_open=1, cooldown_s=1, max_cooldown_s=30, clock=clock)
    gate.failure("connection")
    assert gate.is_open
    clock.now += 1
    assert await gate.wait() is True  # the probe goes out
    gate.failure("timeout")  # a stale request fails while the probe is in flight
    gate.success()  # and another stale one answers: neither is the probe
    assert gate.is_open and gate.probing and gate.cooldown_s == 1
    second = asyncio.ensure_future(gate.wait())
    clock.now += 10
    await asyncio.sleep(0.1)
    assert not second.done(), "a second probe went out while the first was in flight"
    gate.failure("connection", probe=True)  # the probe's own failure: cool-down doubles, next probe may go
    assert gate.cooldown_s == 2 and gate.open_until == clock.now + 2
    clock.now += 2
    assert await asyncio.wait_for(second, 2) is True
    gate.success(probe=True)
    assert not gate.is_open and gate.cooldown_s == 1
