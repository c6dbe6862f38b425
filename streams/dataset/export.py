"""`pairstream export DIR --to llamaindex`: a dataset directory as LlamaIndex's embedding fine-tuning file.

LlamaIndex's `EmbeddingQAFinetuneDataset` (`from_json`, used by `SentenceTransformersFinetuneEngine` and
its embedding-adapter engines) is `{"queries": {id: text}, "corpus": {id: text}, "relevant_docs": {query
id: [doc ids]}, "mode": "text"}`. Each record is one query with one relevant document: the anchor asks and
the positive answers, except for action `query`, where the positive is the query for the anchor. The
negatives (the LLM's and the mined ones) join the corpus as documents that are not relevant, so a
retrieval evaluation on the file has distractors; with action `query` they are queries, so they are left out.
"""

import hashlib
from pathlib import Path
from typing import Any

import orjson

from streams.dataset.layouts import MAIN
from streams.dataset.report import ReportError, read_dataset

FORMATS = ("llamaindex",)


def doc_id(text: str) -> str:
    """The same text is one document, whichever records name it."""
    return "doc-" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def llamaindex(out_dir: Path) -> dict[str, Any]:
    queries: dict[str, str] = {}
    corpus: dict[str, str] = {}
    relevant: dict[str, list[str]] = {}
    _, rows = read_dataset(out_dir, "export")
    for record in (row for family, row in rows if family == MAIN):
        query, doc = (record["positive"], record["anchor"]) if record.get("action") == "query" else (
            record["anchor"], record["positive"])
        queries[record["id"]] = query
        corpus[doc_id(doc)] = doc
        relevant[record["id"]] = [doc_id(doc)]
        if record.get("action") != "query":
            negatives = [record.get("negative")] + [m["text"] for m in record.get("mined_negatives") or []]
            for text in filter(None, negatives):
                corpus.setdefault(doc_id(text), text)
    return {"queries": queries, "corpus": corpus, "relevant_docs": relevant, "mode": "text"}


def export(out_dir: Path, to: str, dest: Path) -> int:
    """Write `dest`; returns the number of queries."""
    if to not in FORMATS:
        raise ReportError(f"cannot export to {to!r}: choose from {', '.join(FORMATS)}")
    data = llamaindex(out_dir)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    tmp.replace(dest)
    return len(data["queries"])
