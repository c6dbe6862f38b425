"""ops/k8s cannot be applied here (no cluster); check the manifests hold together: they parse, every
PAIRSTREAM_* name is a real setting, probes hit the worker's endpoints on its web port, KEDA scales the
worker Deployment on the worker's own consumer group and topic, and the sink keeps its dataset on a volume."""

import re

import yaml

from support.processes import ROOT
from streams.settings import ENV_PREFIX, Settings

K8S = ROOT / "ops" / "k8s"
KNOWN = {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def manifests() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def find(kind: str, name: str) -> dict:
    return next(d for d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name)


def test_kustomization_lists_every_manifest():
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_every_pairstream_name_is_a_setting():
    text = "\n".join(p.read_text() for p in K8S.glob("*.yaml"))
    names = set(re.findall(r"\b(PAIRSTREAM_[A-Z0-9_]+)\b", text))
    assert names <= KNOWN, f"unknown settings: {sorted(names - KNOWN)}"
    config = find("ConfigMap", "pairstream-config")["data"]
    assert set(config) <= KNOWN
    Settings(**{k.removeprefix(ENV_PREFIX).lower(): v for k, v in config.items()})  # values validate too
    secret = find("Secret", "pairstream-secrets")["stringData"]
    assert set(secret) <= KNOWN
    assert all("KEY" in k or "PASSWORD" in k for k in secret)  # secrets only, nothing else hides there


def test_worker_probes_and_shutdown():
    config = find("ConfigMap", "pairstream-config")["data"]
    pod = find("Deployment", "pairstream-worker")["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["args"] == ["worker"]
    port = next(p for p in container["ports"] if p["name"] == "web")["containerPort"]
    assert str(port) == config["PAIRSTREAM_WEB_PORT"] == pod["metadata"]["annotations"]["prometheus.io/port"]
    assert config["PAIRSTREAM_WEB_HOST"] == "0.0.0.0"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert pod["spec"]["terminationGracePeriodSeconds"] > float(config["PAIRSTREAM_DRAIN_TIMEOUT_S"])
    refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
    assert refs == {"pairstream-config", "pairstream-secrets"}
    ca_mount = next(m for m in container["volumeMounts"] if m["name"] == "kafka-ca")["mountPath"]
    assert config["PAIRSTREAM_BROKER_CA_FILE"].startswith(ca_mount + "/")


def test_keda_scales_the_worker_on_its_consumer_group_lag():
    config = find("ConfigMap", "pairstream-config")["data"]
    scaled = find("ScaledObject", "pairstream-worker")["spec"]
    assert scaled["scaleTargetRef"]["name"] == "pairstream-worker"
    trigger = scaled["triggers"][0]
    assert trigger["type"] == "kafka"
    meta = trigger["metadata"]
    assert meta["consumerGroup"] == config["PAIRSTREAM_APP_ID"]
    assert meta["topic"] == config["PAIRSTREAM_ANCHORS_TOPIC"]
    assert "kafka://" + meta["bootstrapServers"] == config["PAIRSTREAM_BROKER"]
    assert int(meta["lagThreshold"]) > 0
    assert 1 <= scaled["minReplicaCount"] <= scaled["maxReplicaCount"] <= int(config["PAIRSTREAM_TOPIC_PARTITIONS"])
    auth = find("TriggerAuthentication", trigger["authenticationRef"]["name"])["spec"]["secretTargetRef"]
    secret = find("Secret", "pairstream-keda-kafka")["stringData"]
    assert {a["key"] for a in auth} <= secret.keys()
    mechanism = config["PAIRSTREAM_BROKER_SASL_MECHANISM"].lower().replace("-sha-", "_sha")  # SCRAM-SHA-512 -> scram_sha512
    assert secret["sasl"] == mechanism and secret["username"] == config["PAIRSTREAM_BROKER_SASL_USERNAME"]


def test_sink_keeps_its_dataset_on_a_volume():
    sink = find("Deployment", "pairstream-sink")["spec"]
    assert sink["replicas"] == 1 and sink["strategy"]["type"] == "Recreate"
    container = sink["template"]["spec"]["containers"][0]
    out = container["args"][container["args"].index("--out") + 1]
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == out)
    volume = next(v for v in sink["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    find("PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"])
