"""Create, read, update (full and sparse), delete and void, with SyncToken checks, for every entity."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from connectors.quickbooks.emulator import faults, names, profile, transactions
from connectors.quickbooks.emulator.clock import format_stamp
from connectors.quickbooks.emulator.context import (
    NAME_LISTS,
    READ_ONLY,
    TRANSACTIONS,
    Context,
    blank,
)
from connectors.quickbooks.emulator.store import JsonDict, Row

READ_ONLY_FIELDS = ("Id", "SyncToken", "MetaData", "domain", "sparse", "status")


def _computed(entity: str) -> tuple[str, ...]:
    return READ_ONLY_FIELDS + names.COMPUTED.get(entity, ()) + transactions.COMPUTED.get(entity, ())


def _prepare(
    ctx: Context, entity: str, data: JsonDict, existing: JsonDict | None, own_id: str | None
) -> JsonDict:
    if entity in NAME_LISTS:
        return names.prepare(ctx, entity, data, existing, own_id)
    if entity in TRANSACTIONS:
        return transactions.prepare(ctx, entity, data, existing, own_id)
    return data  # CompanyInfo: stored as sent


def read(ctx: Context, entity: str, entity_id: str) -> JsonDict:
    if entity == "CompanyInfo" and entity_id == ctx.config.realm_id:
        entity_id = "1"
    row = ctx.store.get(entity, entity_id)
    if row is None:
        raise faults.not_found(deleted=ctx.store.is_deleted(entity, entity_id))
    return copy.deepcopy(row.data)


def save(ctx: Context, entity: str, body: Any) -> JsonDict:
    """A POST to the entity endpoint: a create without an Id, an update with one."""
    if not isinstance(body, dict):
        raise faults.invalid_property(f"Property Name:{entity} specified is unsupported or invalid")
    if blank(body.get("Id")):
        return create(ctx, entity, body)
    return update(ctx, entity, body)


def create(ctx: Context, entity: str, body: JsonDict) -> JsonDict:
    if entity in READ_ONLY:
        raise faults.unsupported(f"Operation Create is not supported for {entity}.")
    data = {k: copy.deepcopy(v) for k, v in body.items() if k not in _computed(entity)}
    entity_id = ctx.store.next_id(entity)
    prepared = _prepare(ctx, entity, data, None, None)
    now = ctx.clock.now()
    stamp = ctx.stamp()
    prepared.update(
        Id=entity_id,
        SyncToken="0",
        MetaData={"CreateTime": stamp, "LastUpdatedTime": stamp},
        domain="QBO",
        sparse=False,
    )
    ctx.store.put(entity, Row(prepared, now, now), "Create")
    if entity == "Payment":
        transactions.settle_invoices(ctx, set(transactions.applied_amounts(prepared)))
    return copy.deepcopy(prepared)


def _current(ctx: Context, entity: str, body: JsonDict) -> Row:
    entity_id = str(body.get("Id", "")).strip()
    if entity == "CompanyInfo" and entity_id == ctx.config.realm_id:
        entity_id = "1"
    row = ctx.store.get(entity, entity_id)
    if row is None:
        raise faults.not_found(deleted=ctx.store.is_deleted(entity, entity_id))
    sent = body.get("SyncToken")
    if blank(sent):
        raise faults.required("SyncToken")
    if str(sent).strip() != str(row.data.get("SyncToken")):
        raise faults.stale_object()
    return row


def _write(ctx: Context, entity: str, row: Row, prepared: JsonDict, operation: str) -> JsonDict:
    previous = row.data
    now = ctx.clock.now()
    prepared.update(
        Id=previous["Id"],
        SyncToken=str(int(previous.get("SyncToken", "0")) + 1),
        MetaData={**previous.get("MetaData", {}), "LastUpdatedTime": ctx.stamp()},
        domain="QBO",
        sparse=False,
    )
    row.data = prepared
    row.updated_at = now
    ctx.store.put(entity, row, operation)
    if entity == "Payment":
        touched = set(transactions.applied_amounts(previous)) | set(transactions.applied_amounts(prepared))
        transactions.settle_invoices(ctx, touched)
    return copy.deepcopy(prepared)


def update(ctx: Context, entity: str, body: JsonDict) -> JsonDict:
    if entity in READ_ONLY and entity != "CompanyInfo":
        raise faults.unsupported(f"Operation Update is not supported for {entity}.")
    row = _current(ctx, entity, body)
    return _apply_update(ctx, entity, row, body, sparse=body.get("sparse") in (True, "true"))


def _apply_update(ctx: Context, entity: str, row: Row, body: JsonDict, *, sparse: bool) -> JsonDict:
    computed = _computed(entity)
    incoming = {k: copy.deepcopy(v) for k, v in body.items() if k not in computed}
    if sparse:
        base = {k: copy.deepcopy(v) for k, v in row.data.items() if k not in computed}
        incoming = {**base, **incoming}
    prepared = _prepare(ctx, entity, incoming, row.data, str(row.data["Id"]))
    return _write(ctx, entity, row, prepared, "Update")


def edit_as_user(ctx: Context, entity: str, entity_id: str, changes: JsonDict) -> JsonDict:
    """What an accountant does in the QuickBooks UI: change fields with no SyncToken in hand."""
    row = ctx.store.get(entity, entity_id)
    if row is None:
        raise faults.not_found(deleted=ctx.store.is_deleted(entity, entity_id))
    return _apply_update(ctx, entity, row, changes, sparse=True)


def delete(ctx: Context, entity: str, body: Any) -> JsonDict:
    if entity not in TRANSACTIONS:
        raise faults.unsupported("Operation Delete is not supported.")
    if not isinstance(body, dict) or blank(body.get("Id")):
        raise faults.required("Id")
    row = _current(ctx, entity, body)
    return remove(ctx, entity, row)


def remove(ctx: Context, entity: str, row: Row) -> JsonDict:
    entity_id = str(row.data["Id"])
    ctx.store.delete(entity, entity_id, ctx.clock.now())
    if entity == "Payment":
        transactions.settle_invoices(ctx, set(transactions.applied_amounts(row.data)))
    return {"status": "Deleted", "domain": "QBO", "Id": entity_id}


def void(ctx: Context, entity: str, body: Any) -> JsonDict:
    if entity not in TRANSACTIONS:
        raise faults.unsupported("Operation Void is not supported.")
    if not isinstance(body, dict) or blank(body.get("Id")):
        raise faults.required("Id")
    row = _current(ctx, entity, body)
    voided = copy.deepcopy(row.data)
    voided["PrivateNote"] = "Voided"
    voided["TotalAmt"] = 0
    if entity == "Invoice":
        for line in voided.get("Line", []):
            if "Amount" in line:
                line["Amount"] = 0
            detail = line.get("SalesItemLineDetail")
            if isinstance(detail, dict) and "Qty" in detail:
                detail["Qty"] = 0
        voided["Balance"] = 0
    else:
        voided["UnappliedAmt"] = 0
        voided["Line"] = []
    for key in ("Id", "SyncToken", "MetaData"):
        voided.pop(key, None)
    return _write(ctx, entity, row, voided, "Void")


def seed(ctx: Context, at: datetime | None = None) -> None:
    """A fresh company, made at `at` (default: now): CompanyInfo, income accounts, Undeposited Funds,
    A/R, and the profile's preferences, tax codes and rates, terms and currencies (see `profile.py`)."""
    now = at or ctx.clock.now()
    stamp = format_stamp(now, ctx.config.tz)
    meta = {"CreateTime": stamp, "LastUpdatedTime": stamp}

    def put(entity: str, data: JsonDict) -> None:
        data.update(MetaData=dict(meta))
        if entity != "TaxCode" or data["Id"] not in profile.US_PSEUDO_CODES:
            data.update(SyncToken="0", domain="QBO", sparse=False)
        ctx.store.rows.setdefault(entity, {})[str(data["Id"])] = Row(data, now, now)

    put(
        "CompanyInfo",
        {
            "Id": "1",
            "CompanyName": ctx.config.company_name,
            "LegalName": ctx.config.company_name,
            "CompanyAddr": {
                "Line1": "1 Main St",
                "City": "Mountain View",
                "Country": "USA",
                "PostalCode": "94043",
            },
            "Country": "US",
            "FiscalYearStartMonth": "January",
            "SupportedLanguages": "en",
            "NameValue": [],
        },
    )
    accounts = [
        ("1", "Sales of Product Income", "Income", "SalesOfProductIncome"),
        ("2", "Services", "Income", "ServiceFeeIncome"),
        ("3", "Cost of Goods Sold", "Cost of Goods Sold", "SuppliesMaterialsCogs"),
        ("4", "Undeposited Funds", "Other Current Asset", "UndepositedFunds"),
        ("5", "Inventory Asset", "Other Current Asset", "Inventory"),
        ("6", "Accounts Receivable (A/R)", "Accounts Receivable", "AccountsReceivable"),
    ]
    for account_id, name, account_type, subtype in accounts:
        put(
            "Account",
            {
                "Id": account_id,
                "Name": name,
                "FullyQualifiedName": name,
                "AccountType": account_type,
                "AccountSubType": subtype,
                "Classification": names.ACCOUNT_CLASSIFICATION[account_type],
                "Active": True,
                "SubAccount": False,
                "CurrentBalance": 0.0,
                "CurrentBalanceWithSubAccounts": 0.0,
                "CurrencyRef": {"value": "USD", "name": "United States Dollar"},
            },
        )
    ctx.store.counters["Account"] = len(accounts)
    profile.seed(ctx, put)
