"""pairstream: turn a Kafka stream of anchor sentences into (anchor, positive, negative) training records.

Layout: `settings` (configuration), `decode` (Kafka value -> anchor request),
`task` (the GenerateSentencePair prompts and output parsing), `validation`,
`llm` (OpenAI-compatible client), `generator` (one anchor -> triplet or dead letter,
with re-asks and retries), `agent` + `app` (the Faust worker), `publish`, `sinks`,
`broker` (embedded Kafka-compatible broker), `cli`.
"""

__version__ = "0.1.0"
