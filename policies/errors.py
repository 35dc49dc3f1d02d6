"""The error a bad policy file raises: a configuration error that lists every problem, one per line."""

from __future__ import annotations

from engine.configfile import ConfigFileError


class PolicyFileError(ConfigFileError):
    """The policy file is missing, not YAML, or not a valid policy; `problems` are printable lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__("policy", source, problems)
