"""Shared pytest fixtures for the loopback fakes (registered from tests/conftest.py)."""
