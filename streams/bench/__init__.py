"""`pairstream bench`: `config` (what to run), `runner` (processes and phases), `load` (publishing anchors and
timing deliveries), `report` (the result and its text and plot), and `fake_llm`, an OpenAI-compatible backend
of known capacity (also the tests' fault-injecting LLM).

May import: `streams.local`, `streams.kafka`, `streams.settings`.
"""
