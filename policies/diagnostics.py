"""Problems found in a policy file, and the translation of pydantic's errors into them.

A problem is a key path and what was expected there, so that each prints as one line:
`policy.yaml:7:5: entities.customer.conflict: expected one of app_wins, ...; got 'app_win'`.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from policies.schema import Strict, describe

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    path: Path
    expected: str

    @property
    def key_path(self) -> str:
        return format_path(self.path)


def format_path(path: Path) -> str:
    """`entities.customer.match_keys[1]`; the document itself is `(top level)`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top level)"


#: What each pydantic error type means in a YAML file; the value it got is appended.
_EXPECTATIONS = {
    "dict_type": "expected a mapping (key: value lines)",
    "model_type": "expected a mapping (key: value lines)",
    "model_attributes_type": "expected a mapping (key: value lines)",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "string_type": "expected a text value",
    "literal_error": "expected {expected}",
}


def problems_from(error: ValidationError, root: type[BaseModel]) -> list[Problem]:
    return [_problem(detail, root) for detail in error.errors()]


def _problem(detail: ErrorDetails, root: type[BaseModel]) -> Problem:
    kind = detail["type"]
    # A dict key that failed its own validation is reported at the key itself.
    path: Path = tuple(part for part in detail["loc"] if part != "[key]")
    if kind == "choice":
        return Problem(path, detail["msg"])
    if kind == "extra_forbidden":
        parent = _model_at(root, path[:-1])
        known = ", ".join(parent.model_fields) if parent else ""
        what = parent.key_kind if parent else "key"
        return Problem(path, f"unknown {what}; expected one of {known}")
    if kind == "missing":
        parent = _model_at(root, path[:-1])
        field = parent.model_fields.get(str(path[-1])) if parent and path else None
        hint = f"; expected {field.description}" if field and field.description else ""
        return Problem(path, f"required key is missing{hint}")
    template = _EXPECTATIONS.get(kind)
    if template is None:
        return Problem(path, f"{detail['msg'][:1].lower()}{detail['msg'][1:]}")
    text = template.format(**detail.get("ctx", {}))
    return Problem(path, f"{text}; got {describe(detail['input'])}")


def _model_at(root: type[BaseModel], path: Path) -> type[Strict] | None:
    """The model that validates the mapping at `path`, following fields, dict values and list items."""
    node: Any = root
    for part in path:
        if _is_model(node):
            field = node.model_fields.get(part) if isinstance(part, str) else None
            node = _optional_of(field.annotation) if field else None
        else:
            node = _element_of(node)
    return node if _is_model(node) and issubclass(node, Strict) else None


def _optional_of(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _element_of(container: Any) -> Any:
    """dict[K, V] -> V; list[X] and tuple[X, ...] -> X."""
    args = [a for a in typing.get_args(container) if a is not Ellipsis]
    return _optional_of(args[-1]) if typing.get_origin(container) in (dict, list, tuple) and args else None


def _is_model(node: Any) -> bool:
    return isinstance(node, type) and issubclass(node, BaseModel)
