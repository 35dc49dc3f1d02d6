"""Business rules of the name lists: Customer, Vendor, Employee (one DisplayName namespace), Item, Account."""

from __future__ import annotations

from typing import Any

from connectors.quickbooks.emulator import currencies, faults
from connectors.quickbooks.emulator.context import PEOPLE, Context, blank, money, resolve_ref
from connectors.quickbooks.emulator.store import JsonDict

NAME_PARTS = ("Title", "GivenName", "MiddleName", "FamilyName", "Suffix")
ITEM_TYPES = ("Inventory", "Service", "NonInventory", "Group", "Category")
ACCOUNT_CLASSIFICATION = {
    "Income": "Revenue",
    "Other Income": "Revenue",
    "Expense": "Expense",
    "Other Expense": "Expense",
    "Cost of Goods Sold": "Expense",
    "Bank": "Asset",
    "Other Current Asset": "Asset",
    "Fixed Asset": "Asset",
    "Other Asset": "Asset",
    "Accounts Receivable": "Asset",
    "Accounts Payable": "Liability",
    "Credit Card": "Liability",
    "Other Current Liability": "Liability",
    "Long Term Liability": "Liability",
    "Equity": "Equity",
}
#: Fields QuickBooks computes; whatever a client sends for them is ignored.
COMPUTED = {
    "Customer": ("FullyQualifiedName", "Level", "BalanceWithJobs"),
    "Vendor": ("Balance",),
    "Employee": (),
    "Item": ("FullyQualifiedName",),
    "Account": ("FullyQualifiedName", "Classification", "CurrentBalance", "CurrentBalanceWithSubAccounts"),
}


def prepare(
    ctx: Context, entity: str, data: JsonDict, existing: JsonDict | None, own_id: str | None
) -> JsonDict:
    """Validate a name-list record and fill what QuickBooks fills; sparse updates arrive merged."""
    if entity in PEOPLE:
        return _person(ctx, entity, data, existing, own_id)
    if entity == "Item":
        return _item(ctx, data, own_id)
    return _account(ctx, data, own_id)


def _check_name_text(value: str, element: str) -> None:
    if any(ch in value for ch in ":\t\n"):
        raise faults.QboFaultError(
            "2050",
            "Invalid String",
            f"{element} cannot contain a colon (:), tab or newline",
            element=element,
        )


def _person(
    ctx: Context, entity: str, data: JsonDict, existing: JsonDict | None, own_id: str | None
) -> JsonDict:
    for part in (*NAME_PARTS, "DisplayName", "PrintOnCheckName"):
        if isinstance(data.get(part), str):
            _check_name_text(data[part], part)
    display = data.get("DisplayName")
    if blank(display):
        parts = [str(data[p]).strip() for p in NAME_PARTS if not blank(data.get(p))]
        if not parts:
            raise faults.required("DisplayName", "Required parameter DisplayName is missing in the request")
        display = " ".join(parts)
    display = str(display).strip()
    if len(display) > 500:
        raise faults.QboFaultError(
            "2050",
            "String length is either shorter or longer than supported by specification",
            f"String length specified does not match the supported length. Min:1 Max:500 supported. "
            f"Supplied length:{len(display)}",
            element="DisplayName",
        )
    holder = _display_name_holder(ctx, display, own_id=own_id, own_entity=entity)
    if holder is not None:
        raise faults.duplicate_name(holder, ctx.config.duplicate_name_detail)
    data["DisplayName"] = display
    data.setdefault("Active", True)
    if blank(data.get("PrintOnCheckName")):
        data["PrintOnCheckName"] = display
    email = (
        (data.get("PrimaryEmailAddr") or {}).get("Address")
        if isinstance(data.get("PrimaryEmailAddr"), dict)
        else None
    )
    if not blank(email) and ("@" not in str(email) or "." not in str(email)):
        raise faults.QboFaultError(
            "2050",
            "Invalid Email Address format",
            f"Email Address does not conform to the syntax rules of RFC 822. Supplied value:{email}",
            element="PrimaryEmailAddr",
        )
    if entity == "Customer":
        data["FullyQualifiedName"] = display
        data.setdefault("Job", False)
        data.setdefault("BillWithParent", False)
        data.setdefault("Taxable", True)
        data.setdefault("PreferredDeliveryMethod", "Print")
        currencies.customer_currency(ctx, data, existing)
        opening = existing.get("Balance", 0) if existing else data.get("Balance", 0) or 0
        data["Balance"] = float(money(opening, "Balance"))
        data["BalanceWithJobs"] = data["Balance"]
    elif entity == "Vendor":
        data["Balance"] = existing.get("Balance", 0) if existing else 0
        data.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
    return data


def _display_name_holder(ctx: Context, display: str, *, own_id: str | None, own_entity: str) -> str | None:
    """The id of the customer, vendor or employee (inactive ones too) already using this name."""
    for entity in PEOPLE:
        for row in ctx.store.named(entity, "DisplayName", display):
            if entity == own_entity and str(row.data["Id"]) == own_id:
                continue
            return str(row.data["Id"])
    return None


def _unique_among(ctx: Context, entity: str, name: str, own_id: str | None) -> None:
    for row in ctx.store.named(entity, "Name", name):
        if str(row.data["Id"]) != own_id:
            raise faults.duplicate_name(str(row.data["Id"]), ctx.config.duplicate_name_detail)


def _item(ctx: Context, data: JsonDict, own_id: str | None) -> JsonDict:
    name = data.get("Name")
    if blank(name):
        raise faults.required("Name")
    name = str(name).strip()
    _check_name_text(name, "Name")
    if len(name) > 100:
        raise faults.QboFaultError(
            "2050",
            "String length is either shorter or longer than supported by specification",
            f"String length specified does not match the supported length. Min:1 Max:100 supported. "
            f"Supplied length:{len(name)}",
            element="Name",
        )
    item_type = data.get("Type")
    if blank(item_type):
        raise faults.required("Type")
    if item_type not in ITEM_TYPES:
        raise faults.invalid_enum(str(item_type))
    if item_type == "Group" and own_id is None:
        raise faults.business("Group items (bundles) cannot be created through the API.")
    for element in ("IncomeAccountRef", "ExpenseAccountRef", "AssetAccountRef"):
        resolved = resolve_ref(ctx, "Account", data.get(element), element)
        if resolved is None:
            data.pop(element, None)
        else:
            data[element] = resolved
    if item_type in ("Service", "Inventory") and "IncomeAccountRef" not in data:
        raise faults.required("IncomeAccountRef")
    if item_type == "Inventory":
        if "AssetAccountRef" not in data:
            raise faults.required(
                "AssetAccountRef",
                "An inventory asset account is required if you are tracking inventory quantities"
                " for this product.",
            )
        if "ExpenseAccountRef" not in data:
            raise faults.required("ExpenseAccountRef")
    _unique_among(ctx, "Item", name, own_id)
    data["Name"] = name
    data["FullyQualifiedName"] = name
    data.setdefault("Active", True)
    data.setdefault("Taxable", False)
    data.setdefault("TrackQtyOnHand", item_type == "Inventory")
    for element in ("UnitPrice", "PurchaseCost"):
        data[element] = float(money(data.get(element) or 0, element))
    return data


def _account(ctx: Context, data: JsonDict, own_id: str | None) -> JsonDict:
    name = data.get("Name")
    if blank(name):
        raise faults.required("Name")
    name = str(name).strip()
    _check_name_text(name, "Name")
    account_type: Any = data.get("AccountType")
    if blank(account_type):
        raise faults.required("AccountType")
    if account_type not in ACCOUNT_CLASSIFICATION:
        raise faults.invalid_enum(str(account_type))
    _unique_among(ctx, "Account", name, own_id)
    data["Name"] = name
    data["FullyQualifiedName"] = name
    data["Classification"] = ACCOUNT_CLASSIFICATION[account_type]
    data.setdefault("Active", True)
    data.setdefault("SubAccount", False)
    data.setdefault("CurrentBalance", 0)
    data.setdefault("CurrentBalanceWithSubAccounts", 0)
    data.setdefault("CurrencyRef", {"value": "USD", "name": "United States Dollar"})
    return data
