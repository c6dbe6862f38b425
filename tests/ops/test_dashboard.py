"""The provisioned Grafana dashboard only uses series the worker exports, through the provisioned data source."""

import json
import re

import yaml

from support.processes import ROOT
from streams.metrics import Metrics

DASHBOARD = ROOT / "ops" / "grafana" / "dashboards" / "pairstream.json"
PROMETHEUS_BUILTINS = {"up"}


def expressions(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def test_dashboard_references_only_exported_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    exported = Metrics().names()
    exprs = expressions(dashboard)
    assert len(exprs) >= 10
    used = {name for e in exprs for name in re.findall(r"\b(pairstream_[a-z_]+)\b", e)}
    assert used <= exported, f"not exported: {sorted(used - exported)}"
    for e in exprs:  # every expression reads a pairstream series or a Prometheus built-in
        assert re.search(r"\bpairstream_", e) or set(re.findall(r"\b([a-z_]+)\{", e)) <= PROMETHEUS_BUILTINS, e
    # the central series of the issue are on it
    for needed in ("pairstream_consumer_lag", "pairstream_dead_letters_total", "pairstream_llm_requests_total",
                   "pairstream_llm_request_duration_seconds_bucket", "pairstream_concurrency_limit"):
        assert needed in used


def test_dashboard_uses_the_provisioned_datasource():
    dashboard = json.loads(DASHBOARD.read_text())
    uid = yaml.safe_load((ROOT / "ops/grafana/provisioning/datasources/prometheus.yml").read_text())[
        "datasources"][0]["uid"]
    assert {p["datasource"]["uid"] for p in dashboard["panels"]} == {uid}
    provider = yaml.safe_load((ROOT / "ops/grafana/provisioning/dashboards/pairstream.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_operations_page_documents_every_metric():
    page = (ROOT / "docs" / "operations.md").read_text()
    documented = set(re.findall(r"`(pairstream_[a-z_]+)`", page))
    histograms = {f.name for f in Metrics().registry.collect() if f.type == "histogram"}
    families = {re.sub(r"_(bucket|sum|count)$", "", n) if re.sub(r"_(bucket|sum|count)$", "", n) in histograms else n
                for n in Metrics().names()}
    assert families <= documented, f"undocumented: {sorted(families - documented)}"
