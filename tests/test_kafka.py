"""Kafka security settings reach both client libraries, and real TLS and SASL connections work end to end.

The embedded broker runs behind a front (streams.local.broker_front) with a certificate the test generates and/or
SASL users; `publish`, `worker` and `consume` then talk to it only over TLS and/or SASL (PLAIN, SCRAM-SHA-256,
SCRAM-SHA-512), verifying the broker against the test CA. A client that trusts another CA, a plaintext client
and a wrong password are refused, and the password never appears in the output."""

import json
from pathlib import Path

import faust
import pytest

from support.processes import run_cli
from streams.local.broker import EmbeddedBroker
from streams.kafka import aiokafka_kwargs, faust_credentials
from streams.settings import Settings
from support.certs import make_pki


def test_plaintext_has_no_credentials():
    s = Settings(broker="kafka://a:9092;b:9092")
    assert aiokafka_kwargs(s) == {"bootstrap_servers": ["a:9092", "b:9092"], "security_protocol": "PLAINTEXT"}
    assert faust_credentials(s) is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_sasl_settings_reach_aiokafka_and_faust(tmp_path, protocol, mechanism):
    pki = make_pki(tmp_path)
    s = Settings(broker_security_protocol=protocol, broker_sasl_mechanism=mechanism, broker_sasl_username="svc",
                 broker_sasl_password="s3cret-pw", broker_ca_file=pki.ca)
    kw = aiokafka_kwargs(s)
    assert (kw["security_protocol"], kw["sasl_mechanism"]) == (protocol, mechanism)
    assert (kw["sasl_plain_username"], kw["sasl_plain_password"]) == ("svc", "s3cret-pw")
    assert ("ssl_context" in kw) == (protocol == "SASL_SSL")
    creds = faust_credentials(s)
    assert isinstance(creds, faust.SASLCredentials)
    assert (creds.username, creds.password, str(creds.mechanism.value)) == ("svc", "s3cret-pw", mechanism)
    assert (creds.ssl_context is not None) == (protocol == "SASL_SSL")
    assert "s3cret-pw" not in repr(s)


def test_ssl_uses_the_ca_file(tmp_path):
    pki = make_pki(tmp_path)
    s = Settings(broker_security_protocol="SSL", broker_ca_file=pki.ca)
    ctx = aiokafka_kwargs(s)["ssl_context"]
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName", "pairstream test CA"),),)]
    assert isinstance(faust_credentials(s), faust.SSLCredentials)


@pytest.fixture
def tls(tmp_path):
    pki = make_pki(tmp_path / "pki")
    with EmbeddedBroker(cert=pki.cert, key=pki.key, log_file=tmp_path / "tansu-tls.log") as broker:
        yield broker, pki


def consume_anchors(env: dict, n: int, out: Path, worker) -> list[str]:
    """`pairstream consume` n triplet records into `out` with `env`'s security settings; their anchors."""
    consumed = run_cli("consume", "--out", str(out), "--limit", str(n), "--until-idle", "60", "--quiet", env=env)
    assert consumed.returncode == 0, consumed.stderr[-2000:] + worker.log[-2000:]
    return [json.loads(line)["anchor"] for shard in sorted(out.glob("*.jsonl"))  # the full records (not the views)
            for line in shard.read_text().splitlines()]


@pytest.mark.integration
def test_publish_worker_and_consume_over_tls(tls, pairstream_env, fake_llm, start_worker, tmp_path):
    broker, pki = tls
    llm = fake_llm()
    secure = {"PAIRSTREAM_BROKER": broker.url, "PAIRSTREAM_BROKER_SECURITY_PROTOCOL": "SSL",
              "PAIRSTREAM_BROKER_CA_FILE": str(pki.ca)}
    env = {**pairstream_env, **secure}
    anchors = [f"Sentence {i} travels over TLS." for i in range(12)]
    published = run_cli("publish", "-", stdin="\n".join(anchors).encode(), env=env)
    assert published.returncode == 0, published.stderr[-2000:]
    assert "12" in published.stdout

    worker = start_worker(**secure, PAIRSTREAM_LLM_BASE_URL=llm.base_url)
    assert sorted(consume_anchors(env, len(anchors), tmp_path / "dataset", worker)) == sorted(anchors)
    assert len(llm.requests) == 12


@pytest.mark.integration
def test_a_broker_signed_by_another_ca_is_refused(tls, pairstream_env, tmp_path):
    broker, _ = tls
    stranger = make_pki(tmp_path / "other", ca_name="some other CA")
    env = {**pairstream_env, "PAIRSTREAM_BROKER": broker.url, "PAIRSTREAM_BROKER_SECURITY_PROTOCOL": "SSL",
           "PAIRSTREAM_BROKER_CA_FILE": str(stranger.ca)}
    result = run_cli("publish", "-", stdin=b"never sent\n", timeout=90, env=env)
    assert result.returncode == 1
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr

    plaintext = {**env, "PAIRSTREAM_BROKER_SECURITY_PROTOCOL": "PLAINTEXT"}
    result = run_cli("publish", "-", stdin=b"never sent\n", timeout=90, env=plaintext)
    assert result.returncode == 1  # a plaintext client cannot talk to the TLS listener


USERS = {"pairstream": "correct-horse-battery"}


@pytest.fixture(scope="module")
def sasl_brokers(tmp_path_factory):
    """A SASL_SSL and a SASL_PLAINTEXT listener, both requiring the users above."""
    tmp = tmp_path_factory.mktemp("sasl")
    pki = make_pki(tmp / "pki")
    with EmbeddedBroker(cert=pki.cert, key=pki.key, users=USERS, log_file=tmp / "sasl-ssl.log") as secure, \
            EmbeddedBroker(users=USERS, log_file=tmp / "sasl-plain.log") as plain:
        yield {"SASL_SSL": secure, "SASL_PLAINTEXT": plain}, pki


def sasl_env(base: dict, brokers, pki, protocol: str, mechanism: str, password: str) -> dict:
    return {**base, "PAIRSTREAM_BROKER": brokers[protocol].url, "PAIRSTREAM_BROKER_SECURITY_PROTOCOL": protocol,
            "PAIRSTREAM_BROKER_SASL_MECHANISM": mechanism, "PAIRSTREAM_BROKER_SASL_USERNAME": "pairstream",
            "PAIRSTREAM_BROKER_SASL_PASSWORD": password, "PAIRSTREAM_BROKER_CA_FILE": str(pki.ca)}


@pytest.mark.integration
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
@pytest.mark.parametrize("protocol", ["SASL_SSL", "SASL_PLAINTEXT"])
def test_sasl_publish_needs_the_right_password(sasl_brokers, pairstream_env, protocol, mechanism):
    brokers, pki = sasl_brokers
    good = run_cli("publish", "-", stdin=b"one anchor\n",
                   env=sasl_env(pairstream_env, brokers, pki, protocol, mechanism, USERS["pairstream"]))
    assert good.returncode == 0, good.stderr[-2000:]
    bad = run_cli("publish", "-", stdin=b"one anchor\n", timeout=90,
                  env=sasl_env(pairstream_env, brokers, pki, protocol, mechanism, "wrong-password-42"))
    assert bad.returncode == 1
    output = (bad.stdout + bad.stderr)
    assert "Authentication failed" in output
    assert "wrong-password-42" not in output and USERS["pairstream"] not in output


@pytest.mark.integration
def test_worker_and_consume_over_sasl_ssl_scram(sasl_brokers, pairstream_env, fake_llm, start_worker, tmp_path):
    brokers, pki = sasl_brokers
    env = sasl_env(pairstream_env, brokers, pki, "SASL_SSL", "SCRAM-SHA-512", USERS["pairstream"])
    llm = fake_llm()
    anchors = [f"Authenticated sentence {i}." for i in range(8)]
    assert run_cli("publish", "-", stdin="\n".join(anchors).encode(), env=env).returncode == 0
    secure = {k: v for k, v in env.items() if k.startswith("PAIRSTREAM_BROKER")}
    worker = start_worker(**secure, PAIRSTREAM_LLM_BASE_URL=llm.base_url)
    assert sorted(consume_anchors(env, len(anchors), tmp_path / "dataset", worker)) == sorted(anchors)
    worker.stop(15)
    assert USERS["pairstream"] not in worker.log
