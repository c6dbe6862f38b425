"""Quality: judge generated pairs with a sentence-embedding model, in the stream.

`local_minilm` runs all-MiniLM-L6-v2 (int8 ONNX) in-process on ONNX Runtime, no torch;
`remote` calls any OpenAI-compatible `/v1/embeddings`; both are `Embedder`s
(`embedder`). `batcher` gathers the texts of the anchors in flight into micro-batches
with a bounded wait, so scoring never serialises the worker. `checks` turns vectors
into scores (anchor-positive, anchor-negative, margin) and names what is wrong
(near-copy, off topic, false negative, too-easy hard negative). `judge` puts them
together as the generator's `Judge` (`streams.generate.judging`); the worker builds
it from the settings (`build_judge`). Checks of meaning and form read the text: `alignment`
(words invented or dropped), `form` (fragments, loops), `round_trip` (the anchor found
again among the stream's sentences), and the optional reviewers `rerank` and `llm_review`
(a cross-encoder or an LLM judge). `mining` keeps the window of the stream's recent
sentences and mines hard negatives from it.

May import: `streams.settings`, `streams.metrics`, `streams.generate` (the LLM client and its
error classes, retry policy and outage gate, the `Problem` and `Judgement` types, and
`task`'s example words), numpy, onnxruntime, tokenizers. No Faust or Kafka.
"""
