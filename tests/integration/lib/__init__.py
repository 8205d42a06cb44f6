"""Shared helpers for cordon's integration tests (proxy, sandbox, execd suites).

Every module here is plain Python (no pytest dependency) so the helpers can be
used from scripts too; tests/integration/conftest.py wraps them in fixtures.
"""
