"""Reading anchors from txt / jsonl / csv, and rejecting bad lines with their line number."""

import io

import orjson

from streams.dataset.publish import BadLine, detect_format, encode_anchor, read_anchors


def encoded(text, fmt):
    return [encode_anchor(fields, line) for line, fields in read_anchors(io.StringIO(text), fmt)]


def test_format_from_extension():
    assert [detect_format(p, None) for p in ("a.txt", "a.jsonl", "a.csv", "-", "a.ndjson")] == [
        "txt", "jsonl", "csv", "txt", "jsonl"]
    assert detect_format("a.txt", "csv") == "csv"


def test_txt_lines_become_anchor_objects_and_blank_lines_are_skipped():
    out = encoded("First one.\n\n{starts with a brace}\n", "txt")
    assert [orjson.loads(v) for _, v in out] == [{"anchor": "First one."}, {"anchor": "{starts with a brace}"}]


def test_jsonl_keeps_per_record_fields_and_uses_id_as_key():
    out = encoded('{"anchor": "Q?", "id": "q1", "action": "answer", "metadata": {"s": 1}}\n', "jsonl")
    key, value = out[0]
    assert key == b"q1" and orjson.loads(value) == {"anchor": "Q?", "id": "q1", "action": "answer", "metadata": {"s": 1}}


def test_jsonl_bad_lines_are_reported_with_line_numbers():
    out = encoded('{"anchor": "ok"}\nnot json\n[1]\n{"anchor": "x", "action": "nope"}\n', "jsonl")
    assert not isinstance(out[0], BadLine)
    assert [(b.line, b.message.split(":")[0]) for b in out[1:]] == [(2, "not JSON"), (3, "expected a JSON object, got list"), (4, "action")]


def test_csv_columns_map_to_fields_and_extra_columns_to_metadata():
    text = "anchor,triplet,hard_negative,source\nHello there.,false,true,web\n"
    (key, value), = encoded(text, "csv")
    assert orjson.loads(value) == {"anchor": "Hello there.", "triplet": False, "hard_negative": True,
                                   "metadata": {"source": "web"}}


def test_tsv_is_read_with_a_tab_delimiter():
    """Review item: .tsv went to the CSV reader with a comma delimiter (one column, the commas inside it)."""
    assert detect_format("a.tsv", None) == "tsv"
    text = "anchor\tsource\tid\nHello, world.\tweb\tt-1\nA second, comma-rich line.\tbook\tt-2\n"
    out = encoded(text, "tsv")
    assert [orjson.loads(v) for _, v in out] == [
        {"anchor": "Hello, world.", "id": "t-1", "metadata": {"source": "web"}},
        {"anchor": "A second, comma-rich line.", "id": "t-2", "metadata": {"source": "book"}}]


def test_csv_metadata_that_is_not_an_object_with_extra_columns_is_a_line_numbered_error():
    """Review item: a JSON list in `metadata` plus an extra column raised an uncaught TypeError."""
    text = 'anchor,metadata,source\nFine.,"{""a"": 1}",web\nNot fine.,"[1, 2]",web\n'
    out = encoded(text, "csv")
    assert orjson.loads(out[0][1])["metadata"] == {"a": 1, "source": "web"}
    assert isinstance(out[1], BadLine) and out[1].line == 3 and "metadata" in out[1].message
