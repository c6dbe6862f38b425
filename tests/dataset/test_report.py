"""`pairstream report` and `pairstream export --to llamaindex` on a dataset directory written by the sink's store:
the figures add up to what was written, the plots are drawn, and the LlamaIndex file maps queries to their
relevant documents the way each action means."""

import orjson
import pytest

from streams.dataset.export import doc_id, llamaindex
from streams.dataset.report import build_report, summary_lines
from streams.dataset.store import Dataset
from support.processes import run_cli
from dataset.test_store import record


def write(tmp_path, n=30, **kwargs):
    ds = Dataset(tmp_path, dead_letters=True, **kwargs)
    for i in range(n):
        ds.add(record(i, pair=i % 10 == 9))
    ds.add({"id": "dl-1", "error": {"type": "off_topic", "message": "x"}, "stage": "quality"}, dead_letter=True)
    ds.close()


def test_the_report_counts_what_was_written_and_draws_the_plots(tmp_path):
    write(tmp_path)
    report = build_report(tmp_path)
    t = report.tally
    assert (t.triplets, t.dead_letters) == (30, 1)
    assert {k: v for k, v in t.mined.items()} == {"0": 8, "1": 8, "2": 7, "3": 7}  # i % 4 mined negatives
    assert len(report.scores["mined"]) == sum(i % 4 for i in range(30))
    assert t.rejections == {"quality: off_topic": 1}
    lines = "\n".join(summary_lines(report))
    assert "yield        96.8%" in lines and "records      30" in lines and "quality: off_topic: 1" in lines

    done = run_cli("report", str(tmp_path))
    assert done.returncode == 0, done.stderr
    for png in ("scores.png", "margins.png", "rows_over_time.png", "negatives_per_record.png"):
        assert (tmp_path / "report" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_and_export_refuse_a_directory_without_full_records(tmp_path):
    write(tmp_path / "cols", columns=("anchor", "positive", "negative"))
    (tmp_path / "empty").mkdir()
    for args in (["report", str(tmp_path / "cols")], ["report", str(tmp_path / "empty")],
                 ["export", str(tmp_path / "cols"), "--out", str(tmp_path / "x.json")]):
        done = run_cli(*args)
        assert done.returncode == 2 and "error:" in done.stderr, (args, done.stderr)


def test_llamaindex_export_maps_queries_to_their_documents(tmp_path):
    ds = Dataset(tmp_path)
    answer = {**record(1), "action": "answer"}
    query = {**record(2), "id": "id-q", "action": "query"}
    shared = {**record(5), "id": "id-5b", "positive": "Positive 1."}  # the same document as record 1's positive
    for r in (answer, query, shared):
        ds.add(r)
    ds.close()
    data = llamaindex(tmp_path)
    assert set(data) == {"queries", "corpus", "relevant_docs", "mode"} and data["mode"] == "text"
    assert data["queries"]["id-1"] == "Anchor 1." and data["relevant_docs"]["id-1"] == [doc_id("Positive 1.")]
    assert data["queries"]["id-q"] == "Positive 2." and data["corpus"][data["relevant_docs"]["id-q"][0]] == "Anchor 2."
    assert data["relevant_docs"]["id-5b"] == data["relevant_docs"]["id-1"]  # one document, named twice
    assert "Negative 1." in data["corpus"].values() and "Mined 1.0" in data["corpus"].values()  # distractors
    assert "Negative 2." not in data["corpus"].values()  # action query: its negative is a query, not a document
    assert all(d in data["corpus"] for docs in data["relevant_docs"].values() for d in docs)

    done = run_cli("export", str(tmp_path), "--to", "llamaindex", "--out", str(tmp_path / "li.json"))
    assert done.returncode == 0 and "exported 3 queries" in done.stdout
    assert orjson.loads((tmp_path / "li.json").read_bytes()) == data


def scored(i: int, ap: float, an: float | None, mined: list[float]) -> dict:
    row = record(i, pair=an is None)
    row["quality"] = {"anchor_positive": ap, "anchor_negative": an, "margin": None if an is None else ap - an,
                      "model": "e", "verdict": "pass", "problems": []}
    row["mined_negatives"] = [{"text": f"m{i}.{k}", "score": s, "source_id": "x"} for k, s in enumerate(mined)]
    return row


def test_report_and_card_agree_and_use_the_recorded_mining_rule(tmp_path):
    """Issue 23 item 12: the report divided inverted triplets by every record, the card by records with a margin;
    both hard-coded the 0.95 rule whatever PAIRSTREAM_MINING_NEGATIVE_RATIO said; margins in [-2, 2] were
    squeezed into bins for [-1, 1] (a margin of -1.6 was reported as -1.0)."""
    ds = Dataset(tmp_path, mining_ratio=0.8)
    rows = [scored(0, 0.9, -0.7, [0.75]),  # margin 1.6; mined 0.75 >= 0.72: not under the 0.8 rule
            scored(1, -0.6, 0.95, [0.1]),  # inverted by -1.55; mined 0.1 >= -0.72: not under
            scored(2, 0.5, 0.9, []),       # inverted
            scored(3, 0.8, 0.1, [0.5]),    # mined 0.5 < 0.64: under the 0.8 rule
            scored(4, 0.7, None, [])]      # no LLM negative, no margin
    for row in rows:
        ds.add(row)
    ds.close()
    manifest = orjson.loads((tmp_path / "manifest.json").read_bytes())
    assert manifest["mining_negative_ratio"] == 0.8
    lines = "\n".join(summary_lines(build_report(tmp_path)))
    card = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "inverted (LLM negative closer than the positive): 2 of 4 (50.0%)" in lines
    assert "Inverted triplets (margin below 0, of the 4 records with an LLM negative): 50.0%." in card
    assert "under the positive-aware 0.8 rule: 1 of 3" in lines
    assert "cos(anchor, positive) - 20% of it" in card
    reopened = Dataset(tmp_path)
    t = reopened.tally
    reopened.close()
    assert t.quantile("margin", 0.0) == pytest.approx(-1.55, abs=0.011)
    assert t.quantile("margin", 1.0) == pytest.approx(1.6, abs=0.011)


def test_a_tally_from_before_the_margin_bins_is_moved_to_them():
    from streams.dataset.tally import Tally

    old = Tally()
    for m in (-0.5, 0.25, 0.9):  # version 1 binned margins on [-1, 1] in 0.01 bins
        old.histograms["margin"][int((m + 1) / 2 * 200)] += 1
    data = old.to_json()
    data.pop("bins_version")
    moved = Tally.from_json(data)
    assert [moved.quantile("margin", q) for q in (0, 0.5, 1)] == pytest.approx([-0.5, 0.25, 0.9], abs=0.011)
