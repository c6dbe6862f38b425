"""docker-compose.yml cannot run here (no Docker engine); check what can be checked: it parses, has the
services a user expects, and every PAIRSTREAM_* name it sets is a real setting."""

import re

import yaml

from conftest import ROOT
from streams.settings import ENV_PREFIX, Settings

KNOWN = {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_kafka_worker_and_model_server_profiles():
    services = compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert "gpu" in services["llm-gpu"]["profiles"] and "cpu" in services["llm-cpu"]["profiles"]
    assert services["worker-cpu"]["build"]["dockerfile"] == "ops/Dockerfile"
    assert (ROOT / "ops" / "Dockerfile").exists()


def test_every_pairstream_variable_in_compose_is_a_setting():
    names = set(re.findall(r"\b(PAIRSTREAM_[A-Z0-9_]+)\b", (ROOT / "docker-compose.yml").read_text()))
    assert names, "compose sets no PAIRSTREAM_* variables?"
    assert names <= KNOWN, f"unknown settings: {sorted(names - KNOWN)}"


def test_worker_services_point_at_their_model_server():
    services = compose()["services"]
    for worker, llm in (("worker-cpu", "llm-cpu"), ("worker-gpu", "llm-gpu")):
        assert f"//{llm}:8000/v1" in services[worker]["environment"]["PAIRSTREAM_LLM_BASE_URL"]
