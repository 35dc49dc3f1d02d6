"""Plans and ops: what the reconciler decided to write where, and why."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field

from engine.model import EntityType, Frozen, Ref, Side


class OpKind(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    #: Customers and items are never deleted in QuickBooks, only made inactive.
    INACTIVATE = "inactivate"
    DELETE = "delete"
    VOID = "void"


class ConflictPolicy(StrEnum):
    APP_WINS = "app_wins"
    QUICKBOOKS_WINS = "quickbooks_wins"
    NEWEST_WINS = "newest_wins"
    MANUAL = "manual"


class Direction(StrEnum):
    BOTH = "both"
    APP_TO_QUICKBOOKS = "app_to_quickbooks"
    QUICKBOOKS_TO_APP = "quickbooks_to_app"
    #: Per-field only: the field is not synced at all.
    NONE = "none"

    def writes_to(self, side: Side) -> bool:
        """Whether a value may flow *into* `side` for a field with this direction."""
        if self is Direction.BOTH:
            return True
        if self is Direction.APP_TO_QUICKBOOKS:
            return side is Side.QUICKBOOKS
        if self is Direction.QUICKBOOKS_TO_APP:
            return side is Side.APP
        return False


class DeleteAction(StrEnum):
    """What a delete on one side becomes on the other."""

    INACTIVATE = "inactivate"
    DELETE = "delete"
    VOID = "void"
    IGNORE = "ignore"


class Write(Frozen):
    """One planned write to one side, as the pure reconciler emits it (no ids assigned yet)."""

    side: Side
    kind: OpKind
    #: The target's external id; None for a create.
    external_id: str | None = None
    #: For creates, every field that flows to `side`; for updates, only the changed ones.
    fields: dict[str, Any] = Field(default_factory=dict)
    #: The version the write was planned against (optimistic lock); None for a create.
    expected_seq: int | None = None
    reason: str


class FieldConflict(Frozen):
    """A field changed on both sides to different values, which the policy hands to a human."""

    field: str
    base: Any = None
    app: Any = None
    quickbooks: Any = None
    policy: ConflictPolicy = ConflictPolicy.MANUAL


class Wait(Frozen):
    """A write held back until the record it references is linked."""

    side: Side
    depends_on: Ref
    reason: str


class Plan(Frozen):
    """The reconciler's decision for one record.

    `settled` are field values both sides already agree on now (base may take them at once);
    each write's fields join the base only when that write succeeds.
    """

    entity: EntityType
    writes: tuple[Write, ...] = ()
    conflicts: tuple[FieldConflict, ...] = ()
    waits: tuple[Wait, ...] = ()
    settled: dict[str, Any] = Field(default_factory=dict)
    #: The record is gone on both sides now (a propagated delete): the link becomes a tombstone.
    tombstone: bool = False
    reasons: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.writes or self.conflicts or self.waits)


class OpStatus(StrEnum):
    PENDING = "pending"
    APPLIED = "applied"
    #: The other side rejected it; a human must look (shown in status and the web page).
    PARKED = "parked"
    #: Blocked by the connection (needs re-authorization); resumes on reconnect.
    WAITING = "waiting"
    #: A newer plan for the same record replaced it before it ran.
    SUPERSEDED = "superseded"


class Op(Frozen):
    """A persisted write: `op_id` is stable and is QuickBooks' `requestid` for it."""

    op_id: str
    connection: str
    link_id: str
    entity: EntityType
    side: Side
    kind: OpKind
    external_id: str | None = None
    fields: dict[str, Any] = Field(default_factory=dict)
    expected_seq: int | None = None
    reason: str
