"""Field values to and from their stored JSON form: the shortcut for plain values (a str, bool or
null a field takes as it is) gives exactly what the field's validation gives, and refuses what it
refuses, for every field of every entity and any value."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from engine.model import MODELS, EntityType, _dump_nested, _field_adapter, fields_from_json, fields_to_json

FIELDS = [(entity, name) for entity, model in MODELS.items() for name in model.model_fields]

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.text(max_size=8),
    st.integers(-3, 3),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.dates(),
    st.just({"entity": "customer", "id": "7", "side": "app"}),
)


def _to_json(entity: EntityType, name: str, value: Any) -> Any:
    adapter = _field_adapter(entity, name)
    return adapter.dump_python(adapter.validate_python(value), mode="json")


def _from_json(entity: EntityType, name: str, value: Any) -> Any:
    parsed = _field_adapter(entity, name).validate_python(value)
    return parsed.model_dump() if isinstance(parsed, BaseModel) else _dump_nested(parsed)


def _outcome(convert: Any, *args: Any) -> tuple[str, Any]:
    try:
        return "value", convert(*args)
    except ValidationError:
        return "refused", None


@pytest.mark.parametrize(("entity", "name"), FIELDS, ids=[f"{e.value}.{n}" for e, n in FIELDS])
@given(value=VALUES)
def test_each_field_converts_as_its_validation_does(entity: EntityType, name: str, value: Any) -> None:
    want = _outcome(_to_json, entity, name, value)
    got = _outcome(lambda: fields_to_json(entity, {name: value})[name])
    assert got == want and type(got[1]) is type(want[1])
    want = _outcome(_from_json, entity, name, value)
    got = _outcome(lambda: fields_from_json(entity, {name: value})[name])
    assert got == want and type(got[1]) is type(want[1])


def test_a_record_round_trips_through_its_json_form() -> None:
    fields = {
        "display_name": "Ada",
        "notes": None,
        "active": True,
        "billing_address": {"lines": ["1 Main St"], "city": "Springfield"},
    }
    stored = fields_to_json(EntityType.CUSTOMER, fields)
    assert fields_from_json(EntityType.CUSTOMER, stored)["billing_address"]["city"] == "Springfield"
    assert fields_from_json(EntityType.CUSTOMER, stored)["active"] is True
    money = fields_to_json(EntityType.ITEM, {"unit_price": Decimal("2.5"), "description": "x"})
    assert money == {"unit_price": "2.50", "description": "x"}
    assert fields_from_json(EntityType.INVOICE, {"txn_date": "2026-12-06"}) == {"txn_date": date(2026, 12, 6)}
