"""Applying one op to QuickBooks: create, sparse update, inactivate, delete, void; names taken per policy.

The result is built from QuickBooks' answer to the write, never from a read-back. `requestid` is the op
id, so a retried op is replayed by QuickBooks; a write retried under another name (the `suffix` policy)
gets its own requestid per attempt, derived from the op id, so replays stay exact.

A name taken (6240) follows the entity's `duplicate_names` policy on a create and on a rename alike:
`suffix` writes the next free "Name (2)" (on a rename, the suffixed name then flows back to the app);
`link` adopts the holder on a create; `manual`, and `link` on a rename (a linked record cannot be merged
into another), refuse the name only: FieldRefusedError naming the holder, which the engine turns into
a conflict on the name while the op's other fields are written.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from connectors.quickbooks.client import QboClient
from connectors.quickbooks.faults import error_from_fault
from connectors.quickbooks.mapping import (
    DISPLAY_NAME_MAX,
    ITEM_NAME_MAX,
    NAME_LISTS,
    TRANSACTIONS,
    MappingContext,
    suffixed_name,
    to_canonical,
    to_qbo_create,
    to_qbo_inactivate,
    to_qbo_sparse_update,
)
from engine.errors import (
    ConfigurationError,
    DuplicateNameError,
    FieldRefusedError,
    LedgersyncError,
    NotFoundError,
    RecordRejectedError,
    UpstreamUnavailableError,
)
from engine.model import EntityType, Side, Version
from engine.plan import Op, OpKind
from engine.ports import DuplicateNames, Policy, WriteResult

log = logging.getLogger(__name__)

QBO_NAMES: Mapping[EntityType, str] = {
    EntityType.CUSTOMER: "Customer",
    EntityType.ITEM: "Item",
    EntityType.INVOICE: "Invoice",
    EntityType.PAYMENT: "Payment",
}
#: The version of a deleted record: QuickBooks reports no SyncToken for it, and nothing comes after.
DELETED_SEQ = 2**31 - 1
#: Names that must be unique: canonical field, QuickBooks key, maximum length.
NAME_FIELDS: Mapping[EntityType, tuple[str, str, int]] = {
    EntityType.CUSTOMER: ("display_name", "DisplayName", DISPLAY_NAME_MAX),
    EntityType.ITEM: ("name", "Name", ITEM_NAME_MAX),
}
#: The records whose DisplayName a customer's must differ from (one namespace in QuickBooks).
PEOPLE = ("Customer", "Vendor", "Employee")
#: Give up suffixing after "Name (50)": something else is wrong.
MAX_SUFFIX = 50
REQUEST_ID_MAX = 50
#: Voided with a sparse update singly (operation=update&include=void), so sparse in a batch too.
_SPARSE_VOID = frozenset({"Payment", "SalesReceipt", "BillPayment"})


class WriteHandler:
    """The write half of `QboConnector`."""

    def __init__(
        self,
        client: QboClient,
        mapping: MappingContext,
        policy: Policy,
        server_now: Callable[[], datetime],
    ) -> None:
        self.client = client
        self.mapping = mapping
        self.policy = policy
        self._server_now = server_now

    def write(self, op: Op) -> WriteResult:
        if op.side is not Side.QUICKBOOKS:
            raise ConfigurationError(f"op {op.op_id} is for the {op.side} side, this connector is QuickBooks")
        if op.kind is OpKind.CREATE:
            return self._create(op)
        if op.external_id is None:
            raise RecordRejectedError(f"op {op.op_id}: a {op.kind} needs a QuickBooks Id", code="invalid")
        self._check_kind(op)
        try:
            return self._change(op, op.external_id)
        except RecordRejectedError as exc:
            if exc.code == "610":
                self._raise_if_gone(op.entity, op.external_id)
            raise

    # the same writes as /batch items (sync.batch sends them)

    def batch_item(self, op: Op) -> dict[str, Any]:
        """The /batch item (without its bId) that makes the same write as `write(op)`; raises what
        `write` would raise before sending (another side, a kind QuickBooks cannot do, unmappable
        fields, a planned-without-version target that is gone)."""
        if op.side is not Side.QUICKBOOKS:
            raise ConfigurationError(f"op {op.op_id} is for the {op.side} side, this connector is QuickBooks")
        name = QBO_NAMES[op.entity]
        if op.kind is OpKind.CREATE:
            return {"operation": "create", name: self.create_body(op)}
        if op.external_id is None:
            raise RecordRejectedError(f"op {op.op_id}: a {op.kind} needs a QuickBooks Id", code="invalid")
        self._check_kind(op)
        external_id, entity = op.external_id, op.entity
        token = op.expected_seq if op.expected_seq is not None else self._current_token(entity, external_id)
        if op.kind is OpKind.UPDATE:
            body = _mapped(
                lambda: to_qbo_sparse_update(entity, op.fields, external_id, token, self.mapping), op
            )
            return {"operation": "update", name: body}
        if op.kind is OpKind.INACTIVATE:
            return {"operation": "update", name: to_qbo_inactivate(entity, external_id, token)}
        target = {"Id": external_id, "SyncToken": str(token)}
        if op.kind is OpKind.VOID:
            # A batch voids any transaction by `optionsData`; a payment's body stays sparse, as singly.
            sparse = {"sparse": True} if name in _SPARSE_VOID else {}
            return {"operation": "update", "optionsData": "void", name: {**target, **sparse}}
        return {"operation": "delete", name: target}

    def batch_answer(self, op: Op, answer: Mapping[str, Any]) -> WriteResult:
        """What one /batch item's answer means for `op`, as `write` reads the same answer: a name
        taken goes the single way (its policy: suffix, link, review), a 610 on a change tells a gone
        target from a gone reference, and any other fault is raised as its engine error."""
        name = QBO_NAMES[op.entity]
        if "Fault" in answer:
            error = error_from_fault(answer["Fault"])
            if isinstance(error, DuplicateNameError) and op.entity in NAME_FIELDS:
                return self.write(op)
            changed = op.kind is not OpKind.CREATE and op.external_id is not None
            if changed and isinstance(error, RecordRejectedError) and error.code == "610":
                assert op.external_id is not None
                self._raise_if_gone(op.entity, op.external_id)
            raise error
        written = answer.get(name)
        if not isinstance(written, dict):
            raise UpstreamUnavailableError(f"QuickBooks' batch answer for op {op.op_id} holds no {name}")
        if op.kind is OpKind.DELETE:
            return WriteResult(
                external_id=str(written.get("Id", op.external_id)),
                version=Version(seq=DELETED_SEQ, at=self._server_now()),
                deleted=True,
            )
        return self.result(op.entity, written)

    # create, and names already taken

    def create_body(self, op: Op) -> dict[str, Any]:
        """The QuickBooks body that creates `op`'s record; RecordRejectedError when it cannot be sent."""
        return _mapped(lambda: to_qbo_create(op.entity, op.fields, self.mapping), op)

    def _create(self, op: Op) -> WriteResult:
        body = self.create_body(op)
        return self._write_named(
            op,
            body,
            lambda sent, rid: self.client.create(QBO_NAMES[op.entity], sent, rid),
            self._on_taken_name,
        )

    def _write_named(
        self,
        op: Op,
        body: dict[str, Any],
        send: Callable[[dict[str, Any], str], dict[str, Any]],
        on_taken: Callable[[Op, Mapping[str, Any], DuplicateNameError], WriteResult | None],
    ) -> WriteResult:
        """Send `body`; while its name is taken, `on_taken` links, refuses, or (None) asks for the next
        suffix, each suffixed try under its own requestid so that a replay stays exact."""
        entity = op.entity
        attempt = 1
        while True:
            try:
                return self.result(entity, send(body, request_id(op.op_id, attempt)))
            except DuplicateNameError as exc:
                if entity not in NAME_FIELDS or NAME_FIELDS[entity][1] not in body:
                    raise
                linked = on_taken(op, body, exc)
                if linked is not None:
                    return linked
            attempt += 1
            if attempt > MAX_SUFFIX:
                raise RecordRejectedError(
                    f"{entity} {_name(op, body)!r}: QuickBooks refused {MAX_SUFFIX} suffixed names",
                    code="6240",
                )
            field, key, limit = NAME_FIELDS[entity]
            body = {**body, key: suffixed_name(str(op.fields[field]), attempt, max_length=limit)}
            log.info("%s name taken in QuickBooks: trying %r", entity, body[key], extra={"op_id": op.op_id})

    def _on_taken_name(self, op: Op, body: Mapping[str, Any], exc: DuplicateNameError) -> WriteResult | None:
        """The existing record to link to (policy `link`), None to try a suffix, or a rejection."""
        rule = self.policy.duplicate_names(op.entity)
        name = _name(op, body)
        if rule is DuplicateNames.MANUAL:
            raise RecordRejectedError(
                f"{op.entity} name {name!r} is already taken in QuickBooks"
                f"{f' (Id={exc.existing_id})' if exc.existing_id else ''}; the policy says manual: "
                "rename one of the two, or link them by hand",
                code="6240",
                tid=exc.tid,
            )
        if rule is DuplicateNames.LINK:
            existing = self._holder(op.entity, name, exc.existing_id)
            if existing is not None:
                log.info("%s name %r taken: linking to QuickBooks Id %s", op.entity, name, existing["Id"])
                return self.result(op.entity, existing).model_copy(update={"adopted": True})
            # The name belongs to a vendor or employee: no customer to link to, so keep both apart.
            log.info("%s name %r is held by another kind of record: adding a suffix", op.entity, name)
        return None

    def _holder(self, entity: EntityType, name: str, existing_id: str | None) -> dict[str, Any] | None:
        """The record of `entity` holding `name`, if it is one (6240 may name a Vendor or Employee)."""
        return self._find_holder(QBO_NAMES[entity], NAME_FIELDS[entity][1], name, existing_id)

    def _on_renamed_into_taken(
        self, op: Op, body: Mapping[str, Any], exc: DuplicateNameError
    ) -> WriteResult | None:
        """A rename into a taken name: `suffix` tries the next one (None); otherwise the name goes to
        review. `link` cannot merge this record, linked already, into the holder: review too."""
        rule = self.policy.duplicate_names(op.entity)
        if rule is DuplicateNames.SUFFIX:
            return None
        name = _name(op, body)
        holder = self._describe_holder(op.entity, name, exc.existing_id)
        why = (
            "the policy says manual" if rule is DuplicateNames.MANUAL else "link applies to new records only"
        )
        raise FieldRefusedError(
            f"QuickBooks refused the name {name!r}: {holder} already has it ({why}); type another name, "
            "or free this one in QuickBooks and take the app's",
            field=NAME_FIELDS[op.entity][0],
            code="6240",
            tid=exc.tid,
        )

    def _describe_holder(self, entity: EntityType, name: str, existing_id: str | None) -> str:
        """Which record holds `name`, for a person: "Vendor 58 'Harbor Supplies'". A customer's name is
        unique across customers, vendors and employees, and 6240's Id does not say which of them it is."""
        key = NAME_FIELDS[entity][1]
        kinds = PEOPLE if entity is EntityType.CUSTOMER else (QBO_NAMES[entity],)
        for kind in kinds:
            try:
                found = self._find_holder(kind, key, name, existing_id)
            except LedgersyncError as lookup:
                log.info("could not tell which %s holds %r: %s", kind, name, lookup)
                continue
            if found is not None:
                return f"{kind} {found['Id']} {str(found.get(key, name))!r}"
        unknown = " or ".join(kinds).lower()
        return f"another {unknown}{f' (Id={existing_id})' if existing_id else ''}"

    def _find_holder(self, kind: str, key: str, name: str, existing_id: str | None) -> dict[str, Any] | None:
        """The `kind` record whose `key` is `name`: the one 6240 named by Id if it is of that kind, else
        found by a query (the documented 6240 names no Id)."""
        if existing_id is not None:
            try:
                found = self.client.read(kind, existing_id)
            except RecordRejectedError as exc:
                if exc.code != "610":
                    raise
                return None
            return found if str(found.get(key, "")).casefold() == name.casefold() else None
        quoted = name.replace("'", "''")
        rows = self.client.query(f"SELECT * FROM {kind} WHERE Active IN (true,false) AND {key} = '{quoted}'")  # noqa: S608
        return rows[0] if rows else None

    # update, inactivate, delete, void

    def _check_kind(self, op: Op) -> None:
        allowed = {
            OpKind.UPDATE: set(EntityType),
            OpKind.INACTIVATE: NAME_LISTS,
            OpKind.DELETE: TRANSACTIONS,
            OpKind.VOID: TRANSACTIONS,
        }[op.kind]
        if op.entity not in allowed:
            hint = "inactivate it" if op.entity in NAME_LISTS else "delete or void it"
            raise RecordRejectedError(
                f"QuickBooks cannot {op.kind} a {op.entity}; {hint}", code="ledgersync.unsupported"
            )

    def _change(self, op: Op, external_id: str) -> WriteResult:
        entity, name = op.entity, QBO_NAMES[op.entity]
        token = op.expected_seq if op.expected_seq is not None else self._current_token(entity, external_id)
        rid = request_id(op.op_id)
        if op.kind is OpKind.UPDATE:
            body = _mapped(
                lambda: to_qbo_sparse_update(entity, op.fields, external_id, token, self.mapping), op
            )
            return self._write_named(
                op, body, lambda sent, rid: self.client.update(name, sent, rid), self._on_renamed_into_taken
            )
        if op.kind is OpKind.INACTIVATE:
            return self.result(
                entity, self.client.update(name, to_qbo_inactivate(entity, external_id, token), rid)
            )
        if op.kind is OpKind.VOID:
            return self.result(entity, self.client.void(name, external_id, str(token), rid))
        self.client.delete(name, external_id, str(token), rid)
        return WriteResult(
            external_id=external_id, version=Version(seq=DELETED_SEQ, at=self._server_now()), deleted=True
        )

    def _current_token(self, entity: EntityType, external_id: str) -> int:
        """The SyncToken now, for an op planned without one (a read: the only way to learn it)."""
        try:
            found = self.client.read(QBO_NAMES[entity], external_id)
        except RecordRejectedError as exc:
            if exc.code == "610":
                raise NotFoundError(f"QuickBooks has no {entity} {external_id}", detail=str(exc)) from exc
            raise
        return int(found["SyncToken"])

    def _raise_if_gone(self, entity: EntityType, external_id: str) -> None:
        """A 610 on a write names either the target or something it references: tell them apart."""
        self._current_token(entity, external_id)  # NotFoundError when the target itself is gone

    def result(self, entity: EntityType, answer: Mapping[str, Any]) -> WriteResult:
        """What a write produced, from QuickBooks' answer to it (no read-back)."""
        fields, version = to_canonical(entity, answer, self.mapping)
        return WriteResult(external_id=str(answer["Id"]), version=version, fields=fields)


def request_id(op_id: str, attempt: int = 1) -> str:
    """The `requestid` of an op's write (attempt > 1: a create retried under a suffixed name)."""
    if attempt == 1:
        return op_id[:REQUEST_ID_MAX]
    suffix = f"-{attempt}"
    return op_id[: REQUEST_ID_MAX - len(suffix)] + suffix


def _mapped(build: Callable[[], dict[str, Any]], op: Op) -> dict[str, Any]:
    try:
        return build()
    except (ValueError, ValidationError) as exc:
        raise RecordRejectedError(
            f"op {op.op_id}: {op.entity} fields cannot be sent to QuickBooks: {exc}",
            code="ledgersync.invalid",
        ) from exc


def _name(op: Op, body: Mapping[str, Any]) -> str:
    _, key, _ = NAME_FIELDS[op.entity]
    return str(body.get(key, ""))
