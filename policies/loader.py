"""Loading a policy file: read, lay it over the shipped default, validate, and report every problem."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.configfile import (
    ConfigFileError,
    YamlSyntaxError,
    problem_line,
    problems_from,
    read_text,
    read_yaml,
)
from policies.errors import PolicyFileError
from policies.policy_set import PolicySet
from policies.rules import check_rules
from policies.schema import PolicyDocument


def load_policy(path: str | os.PathLike[str]) -> PolicySet:
    """Load and validate the policy file at `path`; PolicyFileError (a ConfigurationError) if it is bad."""
    source = os.fspath(path)
    try:
        text = read_text(source, "policy")
    except ConfigFileError as error:
        raise PolicyFileError(source, list(error.problems)) from None
    return parse_policy(text, source)


def parse_policy(text: str, source_name: str) -> PolicySet:
    """Validate policy YAML; `source_name` names it in errors. Omitted entities and keys take the default."""
    try:
        document = read_yaml(text)
    except YamlSyntaxError as error:
        where = f"{source_name}:{error.line}:{error.column}" if error.line else source_name
        raise PolicyFileError(source_name, [f"{where}: invalid YAML: {error.problem}"]) from None
    data = overlay(document.data, _default_data())
    problems = check_rules(data)
    try:
        policy: PolicyDocument | None = PolicyDocument.model_validate(data)
    except ValidationError as error:
        policy = None
        problems += problems_from(error, PolicyDocument)
    if policy is None or problems:
        # In file order, so the list reads top to bottom next to the file.
        problems.sort(key=lambda problem: document.position(problem.path) or (0, 0))
        raise PolicyFileError(source_name, [problem_line(source_name, document, p) for p in problems])
    return PolicySet(policy, source_name)


def overlay(data: Any, default: dict[str, Any]) -> Any:
    """The user's data over the default: omitted entities, and keys of an entity, come from `default`.

    A key the user sets replaces the default's value whole; so `fields` in a file are all its overrides.
    Anything that is not a mapping is passed through for validation to reject.
    """
    if not isinstance(data, dict):
        return data
    entities = data.get("entities", {})
    if not isinstance(entities, dict):
        return data
    merged = dict(default["entities"])
    for name, settings in entities.items():
        base = merged.get(name)
        merged[name] = (
            {**base, **settings} if isinstance(base, dict) and isinstance(settings, dict) else settings
        )
    return {**data, "entities": merged}


#: Next to this module, found by path rather than importlib.resources, which fails when an editable
#: install registers `policies` as a namespace package.
DEFAULT_FILE = Path(__file__).with_name("default.yaml")


def default_text() -> str:
    return DEFAULT_FILE.read_text(encoding="utf-8")


def default_source() -> str:
    return str(DEFAULT_FILE)


@functools.cache
def _default_data() -> dict[str, Any]:
    data = read_yaml(default_text()).data
    if not isinstance(data, dict):
        raise PolicyFileError(default_source(), [f"{default_source()}: expected a mapping"])
    return data
