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
