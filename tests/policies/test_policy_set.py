"""PolicySet answers the engine's questions: a field's own setting wins, then its entity's."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.model import EntityType, Side, field_names
from engine.plan import ConflictPolicy, DeleteAction, Direction
from engine.ports import DuplicateNames, Policy
from policies import PolicySet, load_policy, parse_policy

C, IT, INV, P = EntityType.CUSTOMER, EntityType.ITEM, EntityType.INVOICE, EntityType.PAYMENT
EXAMPLES = Path(__file__).parents[2] / "examples" / "policies"


def policy(body: str) -> PolicySet:
    return parse_policy("version: 1\n" + body, "test.yaml")


OVERRIDES = policy(
    "entities:\n"
    "  customer:\n"
    "    direction: app_to_quickbooks\n"
    "    conflict: quickbooks_wins\n"
    "    fields:\n"
    "      email: {conflict: manual}\n"
    "      notes: {direction: none}\n"
    "      phone: {direction: both, conflict: app_wins}\n"
    "  invoice:\n"
    "    direction: both\n"
    "    conflict: newest_wins\n"
    "    fields: {}\n"
)


@pytest.mark.parametrize(
    ("entity", "field", "direction", "conflict"),
    [
        (C, "display_name", Direction.APP_TO_QUICKBOOKS, ConflictPolicy.QUICKBOOKS_WINS),
        (C, "email", Direction.APP_TO_QUICKBOOKS, ConflictPolicy.MANUAL),
        (C, "notes", Direction.NONE, ConflictPolicy.QUICKBOOKS_WINS),
        (C, "phone", Direction.BOTH, ConflictPolicy.APP_WINS),
        (INV, "doc_number", Direction.BOTH, ConflictPolicy.NEWEST_WINS),
        # Computed by QuickBooks: to the app, whatever the entity says, when the file is silent.
        (INV, "total", Direction.QUICKBOOKS_TO_APP, ConflictPolicy.NEWEST_WINS),
        (INV, "balance", Direction.QUICKBOOKS_TO_APP, ConflictPolicy.NEWEST_WINS),
    ],
)
def test_field_setting_overrides_entity_setting(
    entity: EntityType, field: str, direction: Direction, conflict: ConflictPolicy
) -> None:
    assert OVERRIDES.direction(entity, field) is direction
    assert OVERRIDES.conflict_policy(entity, field) is conflict


def test_computed_field_may_be_left_unsynced() -> None:
    set_ = policy("entities:\n  invoice:\n    fields:\n      balance: {direction: none}\n")
    assert set_.direction(INV, "balance") is Direction.NONE
    assert set_.direction(INV, "total") is Direction.QUICKBOOKS_TO_APP


def test_asking_about_an_unknown_field_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="customer has no field 'emial'"):
        OVERRIDES.direction(C, "emial")


def test_omitted_entities_and_keys_come_from_the_default() -> None:
    default = PolicySet.default()
    assert policy("").effective()["entities"] == default.effective()["entities"]
    set_ = policy("entities:\n  customer:\n    conflict: app_wins\n")
    # The default's per-field overrides stay, since the file did not set `fields`.
    assert set_.conflict_policy(C, "email") is ConflictPolicy.MANUAL
    assert set_.conflict_policy(C, "notes") is ConflictPolicy.APP_WINS
    assert set_.match_keys(C) == ("email", "display_name")
    assert set_.direction(IT, "name") is default.direction(IT, "name")


def test_fields_set_in_a_file_replace_the_defaults_fields_whole() -> None:
    set_ = policy("entities:\n  customer:\n    fields:\n      notes: {conflict: manual}\n")
    assert set_.conflict_policy(C, "notes") is ConflictPolicy.MANUAL
    assert set_.conflict_policy(C, "email") is ConflictPolicy.NEWEST_WINS


@pytest.mark.parametrize(
    ("body", "entity", "quickbooks", "app"),
    [
        ("", C, DeleteAction.INACTIVATE, DeleteAction.DELETE),
        ("", IT, DeleteAction.INACTIVATE, DeleteAction.IGNORE),  # items never flow to the app
        ("", INV, DeleteAction.VOID, DeleteAction.IGNORE),
        ("", P, DeleteAction.VOID, DeleteAction.DELETE),
        ("entities:\n  payment:\n    on_delete: delete\n", P, DeleteAction.DELETE, DeleteAction.DELETE),
        ("entities:\n  payment:\n    on_delete: ignore\n", P, DeleteAction.IGNORE, DeleteAction.IGNORE),
        ("entities:\n  customer:\n    on_delete: ignore\n", C, DeleteAction.IGNORE, DeleteAction.IGNORE),
        (
            "entities:\n  customer:\n    direction: quickbooks_to_app\n",
            C,
            DeleteAction.IGNORE,
            DeleteAction.DELETE,
        ),
    ],
)
def test_delete_action_per_target_side(
    body: str, entity: EntityType, quickbooks: DeleteAction, app: DeleteAction
) -> None:
    set_ = policy(body)
    assert set_.delete_action(entity, Side.QUICKBOOKS) is quickbooks
    assert set_.delete_action(entity, Side.APP) is app


def test_duplicate_names_apply_to_customers_and_items_only() -> None:
    set_ = policy("entities:\n  item:\n    duplicate_names: link\n")
    assert set_.duplicate_names(IT) is DuplicateNames.LINK
    assert set_.duplicate_names(C) is DuplicateNames.SUFFIX
    assert set_.duplicate_names(INV) is DuplicateNames.MANUAL
    assert set_.effective()["entities"]["invoice"]["duplicate_names"] is None


def test_default_policy_has_the_documented_choices() -> None:
    default: Policy = PolicySet.default()
    for field in field_names(C):
        assert default.direction(C, field) is Direction.BOTH
        expected = ConflictPolicy.MANUAL if field in {"email", "phone"} else ConflictPolicy.NEWEST_WINS
        assert default.conflict_policy(C, field) is expected
    assert default.direction(IT, "income_account") is Direction.NONE  # QuickBooks' bookkeeping
    assert {default.direction(IT, f) for f in field_names(IT) if f != "income_account"} == {
        Direction.APP_TO_QUICKBOOKS
    }
    # when the app leaves them empty
    filled_by_quickbooks = {"doc_number", "due_date", "currency", "exchange_rate", "discount"}
    for field in field_names(INV):
        computed = field in {"tax_total", "total", "balance", "home_total"}
        expected_direction = Direction.QUICKBOOKS_TO_APP if computed else Direction.APP_TO_QUICKBOOKS
        if field in filled_by_quickbooks:
            expected_direction = Direction.BOTH
        assert default.direction(INV, field) is expected_direction
    assert {default.direction(P, f) for f in field_names(P)} == {Direction.BOTH}
    assert default.match_keys(C) == ("email", "display_name")
    assert default.match_keys(IT) == ("name",)
    assert default.match_keys(INV) == ("doc_number",)
    assert default.duplicate_names(C) is DuplicateNames.SUFFIX
    assert default.delete_action(C, Side.QUICKBOOKS) is DeleteAction.INACTIVATE
    assert default.delete_action(IT, Side.QUICKBOOKS) is DeleteAction.INACTIVATE
    assert default.delete_action(INV, Side.QUICKBOOKS) is DeleteAction.VOID
    assert default.delete_action(P, Side.QUICKBOOKS) is DeleteAction.VOID


def test_effective_resolves_every_field_and_shows_conflicts_only_where_they_can_arise() -> None:
    entities = PolicySet.default().effective()["entities"]
    assert list(entities) == ["customer", "item", "invoice", "payment"]
    for entity in EntityType:
        assert list(entities[entity.value]["fields"]) == list(field_names(entity))
    assert entities["customer"]["fields"]["email"] == {
        "direction": "both",
        "conflict": "manual",
        "fill_empty_on_match": True,
    }
    assert entities["invoice"]["fields"]["total"] == {
        "direction": "quickbooks_to_app",
        "conflict": None,
        "fill_empty_on_match": None,
    }
    assert entities["customer"]["on_delete"] == {"app": "delete", "quickbooks": "inactivate"}


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_policies_load(path: Path) -> None:
    assert load_policy(path).source == str(path)


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES.glob("*.yaml")} >= {"app-is-master.yaml", "accountant-wins.yaml"}


def test_fill_empty_on_match_is_on_by_default_and_can_be_turned_off_per_entity_or_field() -> None:
    assert PolicySet.default().fill_empty(C, "email") is True
    mine = parse_policy(
        "version: 1\nentities:\n  customer:\n    fill_empty_on_match: false\n"
        "    fields:\n      phone: {fill_empty_on_match: true}\n",
        "mine.yaml",
    )
    assert mine.fill_empty(C, "email") is False
    assert mine.fill_empty(C, "phone") is True
    assert mine.effective()["entities"]["customer"]["fill_empty_on_match"] is False
