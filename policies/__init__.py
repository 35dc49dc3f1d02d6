"""Conflict policies and direction rules, configured in YAML."""
