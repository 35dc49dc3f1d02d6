"""Observability: log output, metric families, and alerts on incidents that need a person."""
