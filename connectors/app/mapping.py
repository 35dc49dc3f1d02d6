"""The YAML table mapping: which table and column hold each canonical field, validated by pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from connectors.app.fields import CHILD_FIELDS, ENTITY_FIELDS, REQUIRED, REQUIRED_CHILD
from engine.configfile import YamlDocument, YamlSyntaxError, read_yaml
from engine.errors import ConfigurationError
from engine.model import EntityType


class Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Column(Spec):
    """A field held in `column`, or read (never written) through a SQL `expression`."""

    column: str | None = None
    expression: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Column:
        if (self.column is None) == (self.expression is None):
            raise ValueError("give exactly one of column, expression")
        return self

    @property
    def writable(self) -> bool:
        return self.column is not None


FieldSpec = str | Column


class Address(Spec):
    """`billing_address` spread over columns: one per address line, then city, region, postcode, country."""

    lines: tuple[str, ...] = ()
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = None


class Child(Spec):
    """Invoice lines or payment applications: a child table pointing at its parent."""

    table: str
    parent_key: str = Field(description="the column holding the parent's primary key")
    order_by: str | None = Field(None, description="the column keeping the children in order")
    fields: dict[str, FieldSpec]


class Tombstone(Spec):
    """A table the app fills when it hard-deletes a row: the deleted key, and when or at what version."""

    table: str
    key_column: str
    version_column: str | None = None
    deleted_at_column: str | None = None
    #: When one tombstone table serves several entities: the column naming the entity, and its value.
    entity_column: str | None = None
    entity_value: str | None = None
    #: With a tenant-scoped entity: the column holding the tenant of the deleted row.
    tenant_column: str | None = None


class Delete(Spec):
    """How a delete shows: a soft-delete column (boolean, or a timestamp set when deleted), or tombstones."""

    soft_delete_column: str | None = None
    tombstone: Tombstone | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Delete:
        if (self.soft_delete_column is None) == (self.tombstone is None):
            raise ValueError("give exactly one of soft_delete_column, tombstone")
        return self


class Capture(Spec):
    """How changes are found: polling the table by version or updated_at, or an outbox filled by triggers."""

    mode: Literal["poll", "outbox"] = "poll"
    #: The column polled; by default updated_at when the entity maps one, else the version column.
    poll_by: Literal["version", "updated_at"] | None = None
    #: How far back each new read starts again, to catch rows committed late (updated_at polling).
    overlap_seconds: float = Field(2.0, ge=0)
    #: The same for version polling, in versions.
    overlap_versions: int = Field(0, ge=0)


class Entity(Spec):
    table: str
    primary_key: str
    version_column: str | None = None
    updated_at_column: str | None = None
    #: Set to the mapping's `origin_value` by every ledgersync write, so the app can tell them apart.
    origin_column: str | None = None
    #: The column naming the row's tenant (the app's account): each connection reads and writes only
    #: the rows of its own tenant, and creates rows with it. Child tables inherit through their parent.
    tenant_column: str | None = None
    fields: dict[str, FieldSpec]
    billing_address: Address | None = None
    lines: Child | None = None
    applications: Child | None = None
    delete: Delete | None = None
    capture: Capture = Capture()

    def column(self, name: str) -> Column | None:
        spec = self.fields.get(name)
        return Column(column=spec) if isinstance(spec, str) else spec

    def child(self, entity: EntityType) -> Child | None:
        return self.lines if entity is EntityType.INVOICE else self.applications

    @property
    def poll_by(self) -> Literal["version", "updated_at"]:
        if self.capture.poll_by is not None:
            return self.capture.poll_by
        return "updated_at" if self.updated_at_column else "version"


class Source:
    """A mapping file and where each of its keys sits (`prefix`: the keys above the mapping itself)."""

    def __init__(self, name: str, document: YamlDocument | None = None, prefix: tuple[str, ...] = ()) -> None:
        self.name = name
        self.document = document
        self.prefix = prefix

    def where(self, key_path: str) -> str:
        parts = tuple(int(p) if p.isdigit() else p for p in key_path.split(".") if p)
        found = self.document.position((*self.prefix, *parts)) if self.document else None
        return f"{self.name}:{found[0]}:{found[1]}" if found else self.name


class Mapping(Spec):
    version: Literal[1] = 1
    origin_value: str = "ledgersync"
    #: The table trigger-based capture fills (see `ledgersync app install-triggers`).
    outbox_table: str = "ledgersync_changes"
    page_size: int = Field(200, ge=1)
    entities: dict[EntityType, Entity]
    #: Where the mapping came from, so a problem found later (against the database) names file:line:col.
    _source: Source | None = PrivateAttr(None)

    def where(self, key_path: str) -> str | None:
        """`file:line:col` of a dotted key path (or of its nearest key the file has); None without a file."""
        return None if self._source is None else self._source.where(key_path)


def located(problems: list[str], source: Source | None) -> list[str]:
    """`key.path: what` problems, each led by the file:line:col of its key when the mapping has a file."""
    if source is None:
        return problems
    return [f"{source.where(p.partition(': ')[0])}: {p}" for p in problems]


def child_column(child: Child, name: str) -> Column | None:
    spec = child.fields.get(name)
    return Column(column=spec) if isinstance(spec, str) else spec


def key_path(loc: tuple[int | str, ...]) -> str:
    # Union branches show up in pydantic locations as type names: they are not keys of the file.
    return ".".join(str(part) for part in loc if not _is_branch(part))


def _is_branch(part: int | str) -> bool:
    return isinstance(part, str) and (part in ("str", "Column") or part.startswith("function-"))


def parse_mapping(data: Any, source: str | Source = "<mapping>") -> Mapping:
    """Validate mapping data (parsed YAML); ConfigurationError naming each bad key path (and, read from a
    file, the file:line:col of each)."""
    located_in = source if isinstance(source, Source) else None
    name = source.name if isinstance(source, Source) else source
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as error:
        raise _invalid(name, located(_problems(error), located_in)) from None
    problems = list(_semantic_problems(mapping))
    if problems:
        raise _invalid(name, located(problems, located_in))
    mapping._source = located_in
    return mapping


def _invalid(name: str, problems: list[str]) -> ConfigurationError:
    return ConfigurationError(f"{name}: invalid mapping: " + "; ".join(problems))


def _problems(error: ValidationError) -> list[str]:
    found: dict[str, list[tuple[bool, str]]] = {}
    for e in error.errors():
        branch = any(_is_branch(part) for part in e["loc"])
        found.setdefault(key_path(e["loc"]), []).append((branch and e["loc"][-1] == "str", e["msg"]))
    problems = []
    for path, messages in sorted(found.items()):
        # A field given as a mapping failed as a Column: the "not a string" branch only adds noise.
        useful = [m for is_str, m in messages if not is_str] or [m for _, m in messages]
        problems += [f"{path}: {m}" for m in dict.fromkeys(useful)]
    return problems


def load_mapping(path: str | Path) -> Mapping:
    """Read and validate a mapping file (YAML)."""
    path = Path(path)
    try:
        document = read_yaml(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(f"{path}: cannot read the mapping", detail=str(error)) from None
    except YamlSyntaxError as error:
        where = f"line {error.line}, column {error.column}: " if error.line else ""
        raise ConfigurationError(f"{path}: cannot read the mapping", detail=where + error.problem) from None
    data = document.data
    prefix: tuple[str, ...] = ()
    if isinstance(data, dict) and "app" in data and "entities" not in data:
        data, prefix = data["app"], ("app",)  # the `app:` section of a ledgersync.yaml
    return parse_mapping(data, Source(str(path), document, prefix))


def _semantic_problems(mapping: Mapping) -> list[str]:
    problems: list[str] = _tenant_problems(mapping)
    for entity, spec in mapping.entities.items():
        at = f"entities.{entity}"
        known = ENTITY_FIELDS[entity]
        problems += [
            f"{at}.fields.{name}: not a field of {entity}" for name in spec.fields if name not in known
        ]
        problems += [
            f"{at}.fields.{name}: required" for name in sorted(REQUIRED[entity] - spec.fields.keys())
        ]
        if spec.billing_address is not None and entity is not EntityType.CUSTOMER:
            problems.append(f"{at}.billing_address: only a customer has one")
        problems += _child_problems(entity, spec, at)
        if spec.version_column is None and spec.updated_at_column is None:
            problems.append(f"{at}: give a version_column or an updated_at_column (change capture needs one)")
        if spec.capture.poll_by == "version" and spec.version_column is None:
            problems.append(f"{at}.capture.poll_by: polling by version needs a version_column")
        if spec.capture.poll_by == "updated_at" and spec.updated_at_column is None:
            problems.append(f"{at}.capture.poll_by: polling by updated_at needs an updated_at_column")
        tomb = spec.delete.tombstone if spec.delete else None
        if tomb is not None and spec.poll_by == "version" and tomb.version_column is None:
            problems.append(f"{at}.delete.tombstone.version_column: required when polling by version")
        if tomb is not None and spec.poll_by == "updated_at" and tomb.deleted_at_column is None:
            problems.append(f"{at}.delete.tombstone.deleted_at_column: required when polling by updated_at")
    return problems


def _child_problems(entity: EntityType, spec: Entity, at: str) -> list[str]:
    problems: list[str] = []
    expected = CHILD_FIELDS.get(entity)
    for name in ("lines", "applications"):
        child: Child | None = getattr(spec, name)
        if child is None:
            continue
        if expected is None or expected[0] != name:
            problems.append(f"{at}.{name}: {entity} has no {name}")
            continue
        known = expected[1]
        problems += [f"{at}.{name}.fields.{f}: not a field of {name}" for f in child.fields if f not in known]
        missing = sorted(REQUIRED_CHILD[entity] - child.fields.keys())
        problems += [f"{at}.{name}.fields.{f}: required" for f in missing]
    if entity is EntityType.INVOICE and spec.lines is None:
        problems.append(f"{at}.lines: required (the table holding invoice lines)")
    return problems


def _tenant_problems(mapping: Mapping) -> list[str]:
    """A tenant column on every entity or on none (a shared table would carry one company's records
    into every other's), never with trigger capture (the outbox does not know the tenant: a schema
    or a database per tenant serves that case), and on the tombstones of a scoped entity."""
    scoped = [entity for entity, spec in mapping.entities.items() if spec.tenant_column]
    if not scoped:
        return []
    problems: list[str] = []
    for entity, spec in mapping.entities.items():
        at = f"entities.{entity}"
        if spec.tenant_column is None:
            problems.append(
                f"{at}.tenant_column: required, since {scoped[0]} has one"
                " (every entity is per tenant or none is)"
            )
            continue
        if spec.capture.mode == "outbox":
            problems.append(
                f"{at}.capture.mode: outbox capture does not carry the tenant; poll instead, or give each"
                " tenant its own schema (app.schema_name) and drop tenant_column"
            )
        tomb = spec.delete.tombstone if spec.delete else None
        if tomb is not None and tomb.tenant_column is None:
            problems.append(f"{at}.delete.tombstone.tenant_column: required with the entity's tenant_column")
    return problems
