"""`pairstream report` and `pairstream export --to llamaindex` on a dataset directory written by the sink's store:
the figures add up to what was written, the plots are drawn, and the LlamaIndex file maps queries to their
relevant documents the way each action means."""

import orjson

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
