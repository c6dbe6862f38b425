"""`pairstream bench`: `cli` (the command), `config` (what to run), `runner` (processes and phases), `load`
(publishing anchors and timing deliveries), `report` (the result and its text and plot), `scale` (`--workers`),
and `fake_llm`, an OpenAI-compatible backend of known capacity (also the tests' fault-injecting LLM), served by
`loopback`; `checks_cost` times the quality gate's text check per call (`bench --checks`), and `evaluation` with
`judge_eval` measures the gate's checks against a labelled set (`bench --judge`), both in process.

May import: `streams.local`, `streams.quality` and `streams.generate` (the gate and the task specs it judges:
`checks_cost`, `evaluation`, `judge_eval`), `streams.training` (`cli`: `bench --downstream`), `streams.dataset`,
the shared top-level modules (`streams.flags` for the command).
"""
