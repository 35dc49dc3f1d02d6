"""The error a bad policy file raises: a configuration error that lists every problem, one per line."""

from __future__ import annotations

from engine.errors import ConfigurationError


class PolicyFileError(ConfigurationError):
    """The policy file is missing, not YAML, or not a valid policy; `problems` are printable lines."""

    def __init__(self, source: str, problems: list[str]) -> None:
        count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
        super().__init__(f"invalid policy file {source} ({count}):\n" + "\n".join(problems))
        self.source = source
        self.problems = tuple(problems)
