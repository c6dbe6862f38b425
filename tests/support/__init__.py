"""Test-only helpers, kept out of the product (`streams`): fixtures (`plugin`, registered in
tests/conftest.py through `pytest_plugins`), Kafka read/write and accounting (`kafka`), running the CLI and
workers as subprocesses (`processes`), waiting for a condition (`wait`), throwaway TLS certificates (`certs`)."""
