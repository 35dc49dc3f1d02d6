"""Reading YAML configuration files and reporting every problem as `file:line:col: key.path: expected ...`.

Shared by the policy file, the settings file and the app mapping: the data plus where each key sits,
and the translation of pydantic's validation errors into one printable line per problem.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from engine.errors import ConfigurationError

Path = tuple[str | int, ...]


def describe(value: Any) -> str:
    """How a YAML value is named in an error message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


class ConfigFileError(ConfigurationError):
    """A configuration file is missing, not YAML, or invalid; `problems` are printable lines."""

    def __init__(self, kind: str, source: str, problems: list[str]) -> None:
        count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
        super().__init__(f"invalid {kind} file {source} ({count}):\n" + "\n".join(problems))
        self.source = source
        self.problems = tuple(problems)


class YamlSyntaxError(Exception):
    """The text is not YAML (or repeats a key); `line` and `column` are 1-based."""

    def __init__(self, problem: str, line: int | None, column: int | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line
        self.column = column


@dataclass(frozen=True)
class YamlDocument:
    data: Any
    #: 1-based (line, column) of each key (mapping entries) or item (list entries) by its path.
    positions: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def position(self, path: Path) -> tuple[int, int] | None:
        """Where `path` is, or the nearest enclosing key that the file has (None: nowhere)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.positions:
                return self.positions[path[:end]]
        return None


#: libyaml's parser where PyYAML was built with it (its wheels are): the same nodes, marks and errors as
#: the pure-Python one, read about ten times faster (every command reads the config, policy and mapping).
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(text: str) -> YamlDocument:
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return YamlDocument(None)
        positions: dict[Path, tuple[int, int]] = {}
        _index(node, (), positions)
        return YamlDocument(loader.construct_document(node), positions)
    except yaml.MarkedYAMLError as error:
        raise _syntax_error(error) from error
    except yaml.YAMLError as error:
        raise YamlSyntaxError(str(error), None, None) from error
    finally:
        loader.dispose()


def _syntax_error(error: yaml.MarkedYAMLError) -> YamlSyntaxError:
    problem = error.problem or "not valid YAML"
    if error.context:
        started = error.context_mark
        where = f" (from line {started.line + 1}, column {started.column + 1})" if started else ""
        problem = f"{error.context}{where}: {problem}"
    mark = error.problem_mark or error.context_mark
    if mark is None:
        return YamlSyntaxError(problem, None, None)
    return YamlSyntaxError(problem, mark.line + 1, mark.column + 1)


def _index(node: Node, path: Path, positions: dict[Path, tuple[int, int]]) -> None:
    children: list[tuple[str | int, Node, Node]] = []
    if isinstance(node, MappingNode):
        children = [(_key(k), k, v) for k, v in node.value]
    elif isinstance(node, SequenceNode):
        children = [(i, item, item) for i, item in enumerate(node.value)]
    for key, marked, child in children:
        mark = marked.start_mark
        if (*path, key) in positions:
            raise YamlSyntaxError(f"duplicate key {key!r}", mark.line + 1, mark.column + 1)
        positions[(*path, key)] = (mark.line + 1, mark.column + 1)
        _index(child, (*path, key), positions)


def _key(node: Node) -> str:
    return (
        str(node.value)
        if isinstance(node, ScalarNode)
        else f"<complex key at line {node.start_mark.line + 1}>"
    )


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
        what = getattr(parent, "key_kind", "key") if parent else "key"
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


def _model_at(root: type[BaseModel], path: Path) -> type[BaseModel] | None:
    """The model that validates the mapping at `path`, following fields, dict values and list items."""
    node: Any = root
    for part in path:
        if _is_model(node):
            field = node.model_fields.get(part) if isinstance(part, str) else None
            node = _optional_of(field.annotation) if field else None
        else:
            node = _element_of(node)
    return node if _is_model(node) else None


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


def read_text(source: str, kind: str) -> str:
    """A configuration file's text; ConfigFileError naming the file when it cannot be read."""
    expected = f"expected a {kind} YAML file"
    try:
        with open(source, encoding="utf-8") as file:
            return file.read()
    except FileNotFoundError:
        raise ConfigFileError(kind, source, [f"{source}: file not found; {expected}"]) from None
    except IsADirectoryError:
        raise ConfigFileError(kind, source, [f"{source}: is a directory; {expected}"]) from None
    except UnicodeDecodeError as error:
        raise ConfigFileError(kind, source, [f"{source}: expected UTF-8 text ({error.reason})"]) from None
    except OSError as error:
        raise ConfigFileError(kind, source, [f"{source}: cannot read the file: {error.strerror}"]) from None


def problem_line(source: str, document: YamlDocument, problem: Problem) -> str:
    where = document.position(problem.path)
    prefix = f"{source}:{where[0]}:{where[1]}" if where else source
    return f"{prefix}: {problem.key_path}: {problem.expected}"
