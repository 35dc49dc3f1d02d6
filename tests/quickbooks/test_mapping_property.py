"""Round-trip properties: canonical -> QBO body -> as QuickBooks would echo it -> canonical, unchanged.

The echo adds what QuickBooks adds (Id, SyncToken, MetaData, computed totals, subtotal lines, line ids,
ref names, fields we do not know) and drops what it drops ("" values). Fields QuickBooks fills in when
absent (TxnDate, DocNumber, UnitPrice, the income account) are generated present: their defaulting is a
documented one-way step, not a round trip.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.quickbooks.mapping import MappingContext, to_canonical, to_qbo_create, to_qbo_sparse_update
from engine.model import QUICKBOOKS_COMPUTED, EntityType, Side, parse_record, record_fields

CTX = MappingContext()
EXAMPLES = settings(max_examples=250, deadline=None)

_word = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Z"), exclude_characters=":"),
    min_size=1,
    max_size=8,
)
names = st.lists(_word, min_size=1, max_size=4).map(" ".join)
texts = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=30
).filter(str.strip)
maybe_text = st.none() | texts
money = st.decimals(
    min_value=0, max_value=Decimal("9999999.99"), places=2, allow_nan=False, allow_infinity=False
)
quantities = st.decimals(
    min_value=0, max_value=Decimal(99999), places=3, allow_nan=False, allow_infinity=False
)
qbo_ids = st.integers(1, 10**6).map(str)
dates = st.dates()


def refs(entity: EntityType) -> st.SearchStrategy[dict[str, Any]]:
    return qbo_ids.map(lambda i: {"entity": entity, "id": i, "side": Side.QUICKBOOKS})


addresses = st.fixed_dictionaries(
    {
        "lines": st.lists(texts, max_size=5).map(tuple),
        "city": maybe_text,
        "region": maybe_text,
        "postal_code": maybe_text,
        "country": maybe_text,
    }
).filter(lambda a: a["lines"] or any(a[k] for k in ("city", "region", "postal_code", "country")))

customers = st.fixed_dictionaries(
    {
        "display_name": names,
        "given_name": st.none() | names,
        "family_name": st.none() | names,
        "company_name": maybe_text,
        "email": st.none() | st.emails().filter(lambda e: len(e) <= 100),
        "phone": st.none() | st.from_regex(r"\A\+?[0-9 ()-]{3,25}\Z").filter(str.strip),
        "billing_address": st.none() | addresses,
        "notes": maybe_text,
        "active": st.booleans(),
    }
)
items = st.fixed_dictionaries(
    {
        "name": names.filter(lambda n: len(n) <= 100),
        "type": st.sampled_from(["service", "non_inventory"]),
        "description": maybe_text,
        "unit_price": money,
        "income_account": qbo_ids,
        "taxable": st.booleans(),
        "active": st.booleans(),
    }
)
lines = st.fixed_dictionaries(
    {
        "item": refs(EntityType.ITEM),
        "description": maybe_text,
        "quantity": quantities,
        "unit_price": st.none() | money,
        "amount": money,
        "taxable": st.booleans(),
    }
)
invoices = st.fixed_dictionaries(
    {
        "customer": refs(EntityType.CUSTOMER),
        "doc_number": st.text(alphabet="0123456789-ABC", min_size=1, max_size=21),
        "txn_date": dates,
        "due_date": dates,
        "lines": st.lists(lines, min_size=1, max_size=5).map(tuple),
        "private_note": maybe_text,
    }
)
payments = st.fixed_dictionaries(
    {
        "customer": refs(EntityType.CUSTOMER),
        "txn_date": dates,
        "total": money,
        "reference_number": maybe_text,
        "applications": st.lists(
            st.fixed_dictionaries({"invoice": refs(EntityType.INVOICE), "amount": money}), max_size=4
        ).map(tuple),
    }
)
#: The QBO keys each canonical field is written to (the test's own statement of the mapping).
QBO_KEYS: dict[EntityType, dict[str, set[str]]] = {
    EntityType.CUSTOMER: {
        "display_name": {"DisplayName"},
        "given_name": {"GivenName"},
        "family_name": {"FamilyName"},
        "company_name": {"CompanyName"},
        "email": {"PrimaryEmailAddr"},
        "phone": {"PrimaryPhone"},
        "billing_address": {"BillAddr"},
        "notes": {"Notes"},
        "active": {"Active"},
    },
    EntityType.ITEM: {
        "name": {"Name"},
        "type": {"Type"},
        "description": {"Description"},
        "unit_price": {"UnitPrice"},
        "income_account": {"IncomeAccountRef"},
        "taxable": {"Taxable"},
        "active": {"Active"},
    },
    EntityType.INVOICE: {
        "customer": {"CustomerRef"},
        "doc_number": {"DocNumber"},
        "txn_date": {"TxnDate"},
        "due_date": {"DueDate"},
        "lines": {"Line"},
        "private_note": {"PrivateNote"},
    },
    EntityType.PAYMENT: {
        "customer": {"CustomerRef"},
        "txn_date": {"TxnDate"},
        "total": {"TotalAmt"},
        "reference_number": {"PaymentRefNum"},
        "applications": {"Line"},
    },
}
RECORDS = {
    EntityType.CUSTOMER: customers,
    EntityType.ITEM: items,
    EntityType.INVOICE: invoices,
    EntityType.PAYMENT: payments,
}


def _drop_blanks(value: Any) -> Any:
    """QuickBooks returns only properties that have values: a "" sent in a sparse update clears the field."""
    if isinstance(value, dict):
        kept = {k: _drop_blanks(v) for k, v in value.items() if v != ""}
        return {k: v for k, v in kept.items() if v != {} or k.endswith("Detail")}
    if isinstance(value, list):
        return [_drop_blanks(v) for v in value]
    return value


def echo(entity: EntityType, body: dict[str, Any], seq: int = 0) -> dict[str, Any]:
    """The object QuickBooks would answer with after storing `body`."""
    stored = _drop_blanks(json.loads(json.dumps(body)))  # the body must be plain JSON
    stored.pop("sparse", None)
    stored.update(
        Id="42",
        SyncToken=str(seq),
        domain="QBO",
        sparse=False,
        MetaData={"CreateTime": "2026-01-05T09:00:00-08:00", "LastUpdatedTime": "2026-01-05T10:00:00-08:00"},
        CustomField=[],
        FieldFromTheFuture={"any": [1, "two"]},
    )
    for key in ("CustomerRef", "IncomeAccountRef"):
        if key in stored:
            stored[key]["name"] = "Shown name"
    if entity is EntityType.CUSTOMER:
        stored.update(FullyQualifiedName=stored["DisplayName"], Balance=0, Job=False, Taxable=True)
        stored.setdefault("Active", True)
        if "BillAddr" in stored:
            stored["BillAddr"].update(Id="7", Lat="INVALID", Long="INVALID")
    elif entity is EntityType.ITEM:
        stored.update(FullyQualifiedName=stored["Name"], TrackQtyOnHand=False, PurchaseCost=0)
    elif entity is EntityType.INVOICE:
        total = Decimal(0)
        stored["Line"] = [line for line in stored["Line"] if line["DetailType"] != "SubTotalLineDetail"]
        for n, line in enumerate(stored["Line"], 1):
            line.update(Id=str(n), LineNum=n, CustomExtensions=[])
            detail = line["SalesItemLineDetail"]
            detail["ItemRef"]["name"] = "Item name"
            detail.update(ItemAccountRef={"value": "79"}, TaxClassificationRef={})
            total += Decimal(str(line["Amount"]))
        stored["Line"].append(
            {"DetailType": "SubTotalLineDetail", "Amount": float(total), "SubTotalLineDetail": {}}
        )
        stored.update(TotalAmt=float(total), Balance=float(total), TxnTaxDetail={"TotalTax": 0}, LinkedTxn=[])
    elif entity is EntityType.PAYMENT:
        applied = sum((Decimal(str(line["Amount"])) for line in stored["Line"]), Decimal(0))
        stored.update(UnappliedAmt=float(Decimal(str(stored["TotalAmt"])) - applied), ProcessPayment=False)
        for line in stored["Line"]:
            line["LineEx"] = {"any": [{"name": "NameValue", "value": {"Name": "txnId", "Value": "70"}}]}
    return json.loads(json.dumps(stored))


def mapped(entity: EntityType, fields: dict[str, Any]) -> dict[str, Any]:
    complete = record_fields(parse_record(entity, fields))
    return {k: v for k, v in complete.items() if k not in QUICKBOOKS_COMPUTED[entity]}


def assert_round_trip(entity: EntityType, fields: dict[str, Any]) -> None:
    body = to_qbo_create(entity, fields, CTX)
    back, version = to_canonical(entity, echo(entity, body), CTX)
    assert mapped(entity, back) == mapped(entity, fields)
    assert version.seq == 0


@EXAMPLES
@given(customers)
def test_customer_round_trips_through_a_quickbooks_create(fields):
    assert_round_trip(EntityType.CUSTOMER, fields)


@EXAMPLES
@given(items)
def test_item_round_trips_through_a_quickbooks_create(fields):
    assert_round_trip(EntityType.ITEM, fields)


@EXAMPLES
@given(invoices)
def test_invoice_round_trips_through_a_quickbooks_create(fields):
    assert_round_trip(EntityType.INVOICE, fields)


@EXAMPLES
@given(payments)
def test_payment_round_trips_through_a_quickbooks_create(fields):
    assert_round_trip(EntityType.PAYMENT, fields)


@st.composite
def edits(draw: st.DrawFn) -> tuple[EntityType, dict[str, Any], dict[str, Any]]:
    entity = draw(st.sampled_from(list(RECORDS)))
    before = draw(RECORDS[entity])
    after = draw(RECORDS[entity])
    keys = draw(st.sets(st.sampled_from(sorted(before)), min_size=1))
    return entity, before, {**before, **{k: after[k] for k in keys}}


@EXAMPLES
@given(edits())
def test_a_sparse_update_applied_as_quickbooks_merges_it_yields_the_edited_record(edit):
    entity, before, after = edit
    changed = {k: v for k, v in after.items() if v != before[k]}
    body = to_qbo_sparse_update(entity, changed, "42", 3, CTX)

    assert {"Id": "42", "SyncToken": "3", "sparse": True}.items() <= body.items()
    sent = body.keys() - {"Id", "SyncToken", "sparse"}
    assert sent == set().union(*(QBO_KEYS[entity][k] for k in changed))

    stored = echo(entity, to_qbo_create(entity, before, CTX))
    merged = {
        **copy.deepcopy(stored),
        **{k: v for k, v in body.items() if k not in ("Id", "SyncToken", "sparse")},
    }
    back, _ = to_canonical(entity, echo(entity, merged, seq=4), CTX)
    assert mapped(entity, back) == mapped(entity, after)
