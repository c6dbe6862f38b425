"""Settings: defaults of the contract, secrets never shown, one-line errors naming the setting (exit 2)."""

import pytest

from streams.settings import Settings, SettingsError, bootstrap_servers, load_settings
from support.processes import run_cli


def test_defaults_match_the_contract(monkeypatch):
    for k in list(__import__("os").environ):
        if k.startswith("PAIRSTREAM_"):
            monkeypatch.delenv(k)
    s = load_settings()
    assert s.broker == "kafka://127.0.0.1:9092"
    assert (s.anchors_topic, s.triplets_topic, s.dlq_topic, s.app_id) == ("anchors", "triplets", "anchors-dlq", "pairstream")
    assert (s.action, s.triplet, s.hard_negative, s.context, s.structured_output) == ("paraphrase", True, False, "", True)


def test_environment_is_read_and_flags_win(monkeypatch):
    monkeypatch.setenv("PAIRSTREAM_CONCURRENCY", "3")
    monkeypatch.setenv("PAIRSTREAM_TRIPLET", "false")
    assert load_settings().concurrency == 3
    assert load_settings().triplet is False
    assert load_settings(concurrency="5").concurrency == 5


@pytest.mark.parametrize("env,value,needle", [
    ("PAIRSTREAM_CONCURRENCY", "lots", "PAIRSTREAM_CONCURRENCY"),
    ("PAIRSTREAM_ACTION", "summarise", "PAIRSTREAM_ACTION"),
    ("PAIRSTREAM_LLM_BASE_URL", "localhost:8000", "PAIRSTREAM_LLM_BASE_URL"),
    ("PAIRSTREAM_LLM_TIMEOUT_S", "-1", "PAIRSTREAM_LLM_TIMEOUT_S"),
])
def test_bad_value_names_the_setting(monkeypatch, env, value, needle):
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_api_key_is_secret_everywhere(monkeypatch):
    canary = "sk-canary-0123456789"
    monkeypatch.setenv("PAIRSTREAM_LLM_API_KEY", canary)
    s = load_settings()
    assert s.llm_api_key.get_secret_value() == canary
    assert canary not in repr(s) and canary not in str(s) and canary not in s.model_dump_json()


def test_bootstrap_servers_forms():
    assert bootstrap_servers("kafka://a:9092;b:9093") == ["a:9092", "b:9093"]
    assert bootstrap_servers("a:1,b:2") == ["a:1", "b:2"]


def test_cli_exits_2_with_one_line_naming_the_setting():
    proc = run_cli("worker", env={"PAIRSTREAM_CONCURRENCY": "zero", "PATH": ""})
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "PAIRSTREAM_CONCURRENCY" in lines[0]


def test_cli_exits_2_on_bad_flag_and_hides_secret_values():
    proc = run_cli("worker", "--llm-api-key", "sk-hidden-abc", "--llm-timeout-s", "nope", env={"PATH": ""})
    assert proc.returncode == 2 and "PAIRSTREAM_LLM_TIMEOUT_S" in proc.stderr
    assert "sk-hidden-abc" not in proc.stderr + proc.stdout


def test_every_setting_has_a_description():
    assert all(f.description for f in Settings.model_fields.values())


def test_whether_a_bad_value_is_echoed_follows_the_secret_type_not_the_name(monkeypatch):
    """Review item: secrecy was decided by "key"/"password" in the field name. A secret named otherwise must
    stay hidden, and a plain field whose name contains "key" is echoed like any other."""
    from pydantic import Field, SecretStr

    import streams.settings

    class More(Settings):
        webhook_token: SecretStr | None = Field(None, min_length=20, description="a secret named neither way")
        sort_key: int = Field(0, description="not a secret despite its name")

    monkeypatch.setattr(streams.settings, "Settings", More)
    with pytest.raises(SettingsError) as hidden:
        load_settings(webhook_token="tok-short-secret")
    assert "PAIRSTREAM_WEBHOOK_TOKEN" in str(hidden.value) and "tok-short-secret" not in str(hidden.value)
    with pytest.raises(SettingsError) as shown:
        load_settings(sort_key="first")
    assert "(got 'first')" in str(shown.value)
