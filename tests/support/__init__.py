"""Helpers shared by test packages (fresh stores, ...)."""
