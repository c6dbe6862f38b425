"""`pairstream bench --checks`: the near-copy text check's cost per call, rapidfuzz (now) beside difflib (before),
on its worst cases and a typical pair, in one run.

The bound asserted is not a speed target but the algorithm's complexity: the whole check on a 4,000 x
400-character pair is well under a millisecond with rapidfuzz's bit-parallel LCS (most of it the folding
regex) where difflib's matching blocks took 50 to 300 ms, so 5 ms holds on any machine that runs the suite,
and difflib fails it on both worst cases.
"""

import orjson

from support.processes import run_cli

CASES = {"anchor 4000 vs positive 400", "repeated 4000 vs 400", "STS pair"}


def test_bench_checks_prints_rapidfuzz_beside_difflib(tmp_path):
    out = run_cli("bench", "--checks", "--workdir", str(tmp_path), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert "rapidfuzz" in lines[1] and "difflib" in lines[1], out.stdout  # the header: both columns
    for case in CASES:
        rows = [line for line in lines if line.startswith(case)]
        assert len(rows) == 1, out.stdout
        rapidfuzz_us, difflib_us = (float(v) for v in rows[0][len(case):].split()[3:5])  # after "4000 / 400"
        assert rapidfuzz_us > 0 and difflib_us > 0

    out = run_cli("bench", "--checks", "--json", "--workdir", str(tmp_path), timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {r["case"]: r for r in orjson.loads(out.stdout)}
    assert set(rows) == CASES
    for r in rows.values():
        assert r["rapidfuzz_us"] > 0 and r["difflib_us"] > 0 and r["rapidfuzz_calls"] >= r["difflib_calls"] >= 1
        assert 0 < r["folding_us"]
        assert r["rapidfuzz_ratio"] >= r["difflib_ratio"] - 1e-9  # LCS >= the matching blocks' total
    for case in ("anchor 4000 vs positive 400", "repeated 4000 vs 400"):
        assert rows[case]["rapidfuzz_us"] < 5000, rows[case]
    assert rows["repeated 4000 vs 400"]["difflib_us"] > rows["repeated 4000 vs 400"]["rapidfuzz_us"]


def test_bench_judge_prints_every_checks_precision_and_recall_on_the_labelled_set():
    import orjson

    from support.processes import ROOT, clean_env, run_cli

    done = run_cli("bench", "--judge", str(ROOT / "tests" / "data" / "judge" / "labelled.jsonl"), "--json",
                   env=clean_env(), timeout=240)
    assert done.returncode == 0, done.stderr
    figures = orjson.loads(done.stdout)
    assert figures["records"] == 250 and figures["gold_pairs"] == 300
    assert {"near_copy", "invented", "entailed_negative", "repetition", "fragment"} <= set(figures["checks"])
    assert all(0 <= c["recall"] <= 1 for c in figures["checks"].values() if c["recall"] is not None)
