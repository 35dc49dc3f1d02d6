"""Fixtures for the state store tests: every test taking `store` runs on SQLite and on PostgreSQL."""

from tests.support.stores import store, store_backend

__all__ = ["store", "store_backend"]
