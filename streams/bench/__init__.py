"""`pairstream bench`: `config` (what to run), `runner` (processes and phases), `load` (publishing anchors and
timing deliveries), `report` (the result and its text and plot), and `fake_llm`, an OpenAI-compatible backend
of known capacity (also the tests' fault-injecting LLM), served by `loopback`; `checks_cost` times the quality gate's text check
per call (`bench --checks`), in process.

May import: `streams.local`, `streams.quality` (`checks_cost` only), `streams.kafka`, `streams.settings`.
"""
