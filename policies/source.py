"""Reading a policy file's YAML: the data, plus where each key sits, so errors can give a line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from policies.diagnostics import Path


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


def read_yaml(text: str) -> YamlDocument:
    loader = yaml.SafeLoader(text)
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
