"""`pairstream evaluate`: a model on labelled pairs, with sentence-transformers' own evaluators.

- similarity (`EmbeddingSimilarityEvaluator`): Spearman and Pearson of the pairs' cosine against the gold scores;
- retrieval (`InformationRetrievalEvaluator`): each pair scoring >= `threshold` is a query (its `sentence1`)
  whose one relevant document is its `sentence2`; the corpus is every sentence of the file except the
  queries' own texts (a query would find itself first); MRR@10, Recall@1 and Recall@10 by cosine.
"""

from dataclasses import asdict, dataclass

from streams.training.stsb import Pair


@dataclass(frozen=True)
class Scores:
    spearman: float
    pearson: float
    mrr_at_10: float | None  # None: no pair reaches the threshold
    recall_at_1: float | None
    recall_at_10: float | None
    pairs: int
    queries: int
    corpus: int

    def as_dict(self) -> dict:
        return asdict(self)


def retrieval_task(pairs: list[Pair], threshold: float):
    """(queries, corpus, relevant_docs) as InformationRetrievalEvaluator takes them; ids are positions."""
    texts = sorted({s for p in pairs for s in (p.sentence1, p.sentence2)})
    ids = {t: f"s{i}" for i, t in enumerate(texts)}
    queries, relevant = {}, {}
    for p in pairs:
        if p.score >= threshold and p.sentence1 != p.sentence2:
            qid = ids[p.sentence1]
            queries[qid] = p.sentence1
            relevant.setdefault(qid, set()).add(ids[p.sentence2])
    needed = {d for docs in relevant.values() for d in docs}
    corpus = {ids[t]: t for t in texts if ids[t] not in queries or ids[t] in needed}
    return queries, corpus, relevant


def evaluate(model, pairs: list[Pair], threshold: float = 4.0, batch_size: int = 64) -> Scores:
    from sentence_transformers.sentence_transformer.evaluation import (
        EmbeddingSimilarityEvaluator, InformationRetrievalEvaluator)

    sts = EmbeddingSimilarityEvaluator([p.sentence1 for p in pairs], [p.sentence2 for p in pairs],
                                       [p.score for p in pairs], batch_size=batch_size, main_similarity="cosine",
                                       similarity_fn_names=["cosine"], name="sts", write_csv=False)(model)
    queries, corpus, relevant = retrieval_task(pairs, threshold)
    ir = {}
    if queries:
        ir = InformationRetrievalEvaluator(queries, corpus, relevant, mrr_at_k=[10], ndcg_at_k=[10],
                                           accuracy_at_k=[1, 10], precision_recall_at_k=[1, 10], map_at_k=[10],
                                           batch_size=batch_size, name="ir", write_csv=False,
                                           score_functions=None)(model)

    def ir_score(key: str) -> float | None:
        return round(float(ir[f"ir_cosine_{key}"]), 4) if ir else None
    return Scores(spearman=round(float(sts["sts_spearman_cosine"]), 4),
                  pearson=round(float(sts["sts_pearson_cosine"]), 4),
                  mrr_at_10=ir_score("mrr@10"), recall_at_1=ir_score("recall@1"), recall_at_10=ir_score("recall@10"),
                  pairs=len(pairs), queries=len(queries), corpus=len(corpus))


def table(rows: list[tuple[str, Scores]]) -> list[str]:
    """A text table, one model per row."""
    def cell(v):
        return "-" if v is None else f"{v:.4f}"
    lines = [f"{'model':<28} {'spearman':>8} {'pearson':>8} {'MRR@10':>7} {'R@1':>7} {'R@10':>7}"]
    for name, s in rows:
        lines.append(f"{name:<28} {cell(s.spearman):>8} {cell(s.pearson):>8} {cell(s.mrr_at_10):>7} "
                     f"{cell(s.recall_at_1):>7} {cell(s.recall_at_10):>7}")
    return lines
