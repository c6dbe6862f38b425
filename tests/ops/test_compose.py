"""docker-compose.yml cannot run here (no Docker engine); check what can be checked: it parses, it is the full
stack a user expects (Kafka KRaft with its topics, model servers, scalable workers with health checks, the
sink on a volume, Prometheus finding every worker, Grafana provisioned), and every PAIRSTREAM_* name it sets
is a real setting."""

import re

import yaml

from support.processes import ROOT
from streams.settings import ENV_PREFIX, Settings

KNOWN = {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_kafka_workers_model_servers_and_monitoring():
    services = compose()["services"]
    assert services["kafka"]["image"].startswith("apache/kafka")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert "gpu" in services["llm-gpu"]["profiles"] and "cpu" in services["llm-cpu"]["profiles"]
    assert services["worker-cpu"]["build"]["dockerfile"] == "ops/Dockerfile"
    assert (ROOT / "ops" / "Dockerfile").exists()
    assert {"prometheus", "grafana", "sink", "kafka-init"} <= services.keys()


def test_every_pairstream_variable_in_compose_is_a_setting():
    names = set(re.findall(r"\b(PAIRSTREAM_[A-Z0-9_]+)\b", (ROOT / "docker-compose.yml").read_text()))
    assert names, "compose sets no PAIRSTREAM_* variables?"
    assert names <= KNOWN, f"unknown settings: {sorted(names - KNOWN)}"


def test_topics_are_created_before_workers_with_the_configured_partitions():
    services = compose()["services"]
    script = services["kafka-init"]["command"][0]
    partitions = dict(re.findall(r"([a-z-]+):(\d+)", script.split("do")[0]))
    env = services["worker-cpu"]["environment"]
    assert partitions[env["PAIRSTREAM_ANCHORS_TOPIC"]] == env["PAIRSTREAM_TOPIC_PARTITIONS"]
    assert {env["PAIRSTREAM_TRIPLETS_TOPIC"], env["PAIRSTREAM_DLQ_TOPIC"]} <= partitions.keys()
    for name in ("worker-cpu", "worker-gpu", "sink"):
        assert services[name]["depends_on"]["kafka-init"]["condition"] == "service_completed_successfully"


def test_workers_scale_and_report_readiness():
    services = compose()["services"]
    for worker, llm in (("worker-cpu", "llm-cpu"), ("worker-gpu", "llm-gpu")):
        svc = services[worker]
        assert f"//{llm}:8000/v1" in svc["environment"]["PAIRSTREAM_LLM_BASE_URL"]
        assert "container_name" not in svc and "ports" not in svc  # --scale would clash on either
        port = svc["environment"]["PAIRSTREAM_WEB_PORT"]
        assert svc["environment"]["PAIRSTREAM_WEB_HOST"] == "0.0.0.0"
        assert f"127.0.0.1:{port}/ready" in " ".join(svc["healthcheck"]["test"])
        grace = float(svc["stop_grace_period"].rstrip("s"))
        assert grace > Settings.model_fields["drain_timeout_s"].default


def test_prometheus_scrapes_every_worker_service_and_grafana_is_provisioned():
    services = compose()["services"]
    mounts = {m.split(":")[0] for name in ("prometheus", "grafana") for m in services[name]["volumes"]}
    for mount in mounts:
        if mount.startswith("./"):
            assert (ROOT / mount).exists(), mount
    config = yaml.safe_load((ROOT / "ops/prometheus/prometheus.yml").read_text())
    sd = config["scrape_configs"][0]["dns_sd_configs"][0]
    assert set(sd["names"]) == {"worker-cpu", "worker-gpu"}
    assert str(sd["port"]) == services["worker-cpu"]["environment"]["PAIRSTREAM_WEB_PORT"]
    assert config["scrape_configs"][0]["metrics_path"] == "/metrics"
    datasource = yaml.safe_load((ROOT / "ops/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def test_the_sink_writes_to_a_named_volume():
    spec = compose()
    sink = spec["services"]["sink"]
    out = sink["command"][sink["command"].index("--out") + 1]
    volume, target = sink["volumes"][0].split(":")[:2]
    assert volume in spec["volumes"] and out == target
