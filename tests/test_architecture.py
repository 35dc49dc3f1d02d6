"""House rules that code review alone would let slip: imports point inward, each library in one place."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PURE = [
    "model",
    "plan",
    "reconcile",
    "diff",
    "normalize",
    "refs",
    "ports",
    "state",
    "errors",
    "compare",
    "timeline",
]
FORBIDDEN_IN_PURE = (
    "connectors",
    "policies",
    "httpx",
    "sqlalchemy",
    "dramatiq",
    "redis",
    "alembic",
    "starlette",
)
#: library -> the only places allowed to import it
ONE_PLACE = {
    "deepdiff": ("engine/diff.py",),
    "sqlalchemy": ("engine/store/", "connectors/app/"),
    "alembic": ("engine/store/",),
    "dramatiq": ("engine/broker", "engine/workers"),
    # The composition module wires everything, so it may hold the HTTP client it builds.
    "httpx": ("connectors/", "ledgersync/bootstrap.py"),
    "pythonjsonlogger": ("engine/observe/logs.py",),
    "prometheus_client": ("engine/web/metrics.py",),
    # The console's password hashes.
    "argon2": ("engine/passwords.py",),
    "orjson": ("engine/jsontext.py",),
    # The console's single sign-on (OpenID Connect).
    "authlib": ("connectors/oidc/",),
    "joserfc": ("connectors/oidc/",),
}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def package_files() -> list[Path]:
    return [
        p for pkg in ("engine", "connectors", "policies", "ledgersync") for p in (ROOT / pkg).rglob("*.py")
    ]


#: package -> the packages it may import. Every import points down: ``ledgersync`` (the composition
#: layer: CLI, wiring, demo) above ``connectors`` and ``policies`` above ``engine``. Imports inside
#: functions count too, which is why this walks the whole tree rather than the module's top.
LAYERS = {
    "engine": {"engine"},
    "connectors": {"engine", "connectors"},
    "policies": {"engine", "policies"},
    "examples": {"engine", "connectors", "policies", "examples"},
    "ledgersync": {"engine", "connectors", "policies", "examples", "ledgersync"},
}


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_every_import_points_down(package: str):
    ours = set(LAYERS)
    offenders = sorted(
        f"{path.relative_to(ROOT).as_posix()} imports {name}"
        for path in (ROOT / package).rglob("*.py")
        for name in imports(path)
        if name.split(".")[0] in ours - LAYERS[package]
    )
    assert offenders == []


def test_the_layer_rule_catches_an_upward_import(tmp_path: Path):
    upward = tmp_path / "upward.py"
    upward.write_text("def wire():\n    from ledgersync.bootstrap import Runtime\n")
    assert "ledgersync.bootstrap" in imports(upward)


@pytest.mark.parametrize("module", PURE)
def test_pure_engine_modules_import_nothing_from_the_outside(module: str):
    found = imports(ROOT / "engine" / f"{module}.py")
    bad = sorted(name for name in found if name.split(".")[0] in FORBIDDEN_IN_PURE)
    assert bad == [], f"engine/{module}.py imports {bad}"


@pytest.mark.parametrize("library", sorted(ONE_PLACE))
def test_each_third_party_library_lives_in_one_place(library: str):
    offenders = []
    for path in package_files():
        rel = path.relative_to(ROOT).as_posix()
        if any(name.split(".")[0] == library for name in imports(path)) and not rel.startswith(
            ONE_PLACE[library]
        ):
            offenders.append(rel)
    assert offenders == []


def test_modules_stay_small():
    big = {
        p.relative_to(ROOT).as_posix(): n
        for p in package_files()
        if (n := len(p.read_text().splitlines())) > 600
    }
    assert big == {}


def audit_writers(source: str) -> list[str]:
    """The function (or `<module>`) of each insert, update or delete aimed at the audit table."""
    found: list[str] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else where
            if isinstance(child, ast.Call) and child.args:
                func = child.func
                verb = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if verb in {"insert", "update", "delete"} and getattr(child.args[0], "attr", "") == "audit":
                    found.append(where)
            visit(child, inner)

    visit(ast.parse(source), "<module>")
    return found + [f"raw SQL: {sql}" for sql in ("into audit", "update audit") if sql in source.lower()]


def test_one_function_writes_audit_rows():
    # The trail is append-only, and every line of it goes through StoreSession.audit_many.
    writers = [
        f"{p.relative_to(ROOT).as_posix()}:{where}"
        for p in package_files()
        for where in audit_writers(p.read_text())
    ]
    assert writers == ["engine/store/meta.py:audit_many"]


def test_the_audit_rule_catches_a_second_writer():
    source = "def note(conn):\n    conn.execute(sa.insert(t.audit).values(action='x'))\n"
    assert audit_writers(source) == ["note"]
    assert audit_writers("conn.exec_driver_sql('INSERT INTO audit VALUES (1)')") == ["raw SQL: into audit"]
