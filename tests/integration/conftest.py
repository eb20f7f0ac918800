"""Fixtures shared by the integration tests (the rest are in tests/conftest.py)."""

from atlog import at_log

__all__ = ["at_log"]
