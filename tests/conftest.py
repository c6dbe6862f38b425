"""Test-suite set-up: the fixtures and helpers live in tests/support (test-only code, not shipped)."""

pytest_plugins = ["support.plugin"]
