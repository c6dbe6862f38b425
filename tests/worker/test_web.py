"""`/health` and `/ready` on a real worker: ready once the broker answers, the group assigned partitions and
the LLM answers; `/ready` turns 503 (naming the LLM) when the LLM server goes away, and back when it returns."""

import httpx
import pytest

from streams.local.broker import EmbeddedBroker
from streams.local.processes import free_port
from support.wait import wait_until

pytestmark = pytest.mark.integration


def get(port: int, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)


def wait_for(port: int, path: str, status: int, timeout: float = 60) -> dict:
    def answered():
        resp = get(port, path)
        return resp.json() if resp.status_code == status else None

    return wait_until(answered, timeout, f"{path} answering {status}", interval=0.25)


def test_ready_follows_the_llm(fake_llm, start_worker):
    llm = fake_llm()
    port = free_port()
    worker = start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_WEB_PORT=str(port))
    assert wait_for(port, "/health", 200) == {"status": "ok"}
    ready = wait_for(port, "/ready", 200)
    assert ready["ready"] is True
    assert ready["checks"]["broker"]["ok"] and ready["checks"]["llm"]["ok"]
    assert ready["checks"]["partitions"]["detail"].startswith("4 partition(s)")
    worker.wait_assigned()

    llm.stop()
    down = wait_for(port, "/ready", 503, timeout=15)
    assert down["ready"] is False
    assert down["checks"]["llm"] == {"ok": False, "detail": down["checks"]["llm"]["detail"]}
    assert "unreachable" in down["checks"]["llm"]["detail"]
    assert down["checks"]["broker"]["ok"] and down["checks"]["partitions"]["ok"]
    assert get(port, "/health").status_code == 200  # alive, just not ready

    llm.start()  # same port: the backend comes back
    assert wait_for(port, "/ready", 200, timeout=15)["ready"] is True


def test_ready_refuses_a_rejected_api_key(fake_llm, start_worker):
    llm = fake_llm()
    llm.models_status = 401
    port = free_port()
    start_worker(PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_WEB_PORT=str(port),
                 PAIRSTREAM_LLM_API_KEY="sk-wrong-key-123456")
    body = wait_for(port, "/ready", 503)
    assert body["checks"]["llm"]["detail"] == "HTTP 401: the API key was refused"
    assert "sk-wrong" not in str(body)


def test_ready_follows_the_broker(fake_llm, start_worker, tmp_path):
    llm = fake_llm()
    own = EmbeddedBroker(log_file=tmp_path / "own-broker.log").start()  # a broker this test may stop
    try:
        port = free_port()
        start_worker(PAIRSTREAM_BROKER=own.url, PAIRSTREAM_LLM_BASE_URL=llm.base_url, PAIRSTREAM_WEB_PORT=str(port))
        assert wait_for(port, "/ready", 200)["checks"]["broker"]["ok"]
        own.stop()
        down = wait_for(port, "/ready", 503, timeout=20)
        assert down["checks"]["broker"]["ok"] is False and down["checks"]["llm"]["ok"] is True
        assert get(port, "/health").status_code == 200
    finally:
        own.stop()
