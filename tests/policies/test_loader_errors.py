"""A bad policy file is rejected with the file, the key path and what was expected, one line each."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ConfigurationError
from policies import PolicyFileError, load_policy, parse_policy

CONFLICTS = "expected one of app_wins, quickbooks_wins, newest_wins, manual"

# (case, YAML text, key path, expectation) — every line of each file is `version: 1` plus the case.
CASES = [
    (
        "unknown conflict policy",
        "entities:\n  customer:\n    conflict: app_win\n",
        "entities.customer.conflict",
        f"{CONFLICTS}; got 'app_win'",
    ),
    (
        "unknown per-field conflict policy",
        "entities:\n  customer:\n    fields:\n      email: {conflict: app_win}\n",
        "entities.customer.fields.email.conflict",
        f"{CONFLICTS}; got 'app_win'",
    ),
    (
        "unknown direction",
        "entities:\n  item:\n    direction: one_way\n",
        "entities.item.direction",
        "expected one of both, app_to_quickbooks, quickbooks_to_app; got 'one_way'",
    ),
    (
        "`none` is a field direction, not an entity's",
        "entities:\n  item:\n    direction: none\n",
        "entities.item.direction",
        "expected one of both, app_to_quickbooks, quickbooks_to_app; got 'none'",
    ),
    (
        "wrong type: a list where a mapping belongs",
        "entities:\n  item:\n    fields: [name]\n",
        "entities.item.fields",
        "expected a mapping (key: value lines); got a list",
    ),
    (
        "wrong type: a scalar where a list belongs",
        "entities:\n  item:\n    match_keys: name\n",
        "entities.item.match_keys",
        "expected a list; got 'name'",
    ),
    (
        "wrong type: a number where a policy name belongs",
        "entities:\n  payment:\n    conflict: 3\n",
        "entities.payment.conflict",
        f"{CONFLICTS}; got 3",
    ),
    (
        "unknown field",
        "entities:\n  customer:\n    fields:\n      emial: {conflict: manual}\n",
        "entities.customer.fields.emial",
        "unknown customer field; expected one of display_name, given_name",
    ),
    (
        "unknown match key",
        "entities:\n  invoice:\n    match_keys: [doc_number, number]\n",
        "entities.invoice.match_keys[1]",
        "unknown invoice field; expected one of customer, doc_number",
    ),
    (
        "unknown entity",
        "entities:\n  customers: {}\n",
        "entities.customers",
        "unknown entity; expected one of customer, item, invoice, payment",
    ),
    (
        "unknown key in an entity",
        "entities:\n  invoice:\n    duplicate_names: link\n",
        "entities.invoice.duplicate_names",
        "unknown key; expected one of direction, conflict, fields, match_keys, fill_empty_on_match,"
        " on_delete",
    ),
    (
        "unknown key in a field override",
        "entities:\n  customer:\n    fields:\n      email: {conflcit: manual}\n",
        "entities.customer.fields.email.conflcit",
        "unknown key; expected one of direction, conflict",
    ),
    (
        "unknown top-level key",
        "entity:\n  customer: {}\n",
        "entity",
        "unknown key; expected one of version, entities",
    ),
    (
        "computed field written to QuickBooks",
        "entities:\n  invoice:\n    fields:\n      total: {direction: both}\n",
        "entities.invoice.fields.total.direction",
        "QuickBooks computes invoice total, so it cannot be written to QuickBooks; "
        "expected one of quickbooks_to_app, none; got 'both'",
    ),
    (
        "computed field written to QuickBooks by a one-way override",
        "entities:\n  invoice:\n    fields:\n      balance: {direction: app_to_quickbooks}\n",
        "entities.invoice.fields.balance.direction",
        "QuickBooks computes invoice balance",
    ),
    (
        "customers are never deleted in QuickBooks",
        "entities:\n  customer:\n    on_delete: delete\n",
        "entities.customer.on_delete",
        "QuickBooks never deletes a customer, it makes it inactive; "
        "expected one of inactivate, ignore; got 'delete'",
    ),
    (
        "items are never voided",
        "entities:\n  item:\n    on_delete: void\n",
        "entities.item.on_delete",
        "expected one of inactivate, ignore; got 'void'",
    ),
    (
        "invoices cannot be made inactive",
        "entities:\n  invoice:\n    on_delete: inactivate\n",
        "entities.invoice.on_delete",
        "expected one of delete, void, ignore; got 'inactivate'",
    ),
    (
        "unknown duplicate-name rule",
        "entities:\n  customer:\n    duplicate_names: rename\n",
        "entities.customer.duplicate_names",
        "expected one of suffix, link, manual; got 'rename'",
    ),
]


@pytest.mark.parametrize(("case", "body", "key_path", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_file_names_file_key_path_and_expectation(
    case: str, body: str, key_path: str, expected: str
) -> None:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy("version: 1\n" + body, "mine.yaml")
    [problem] = caught.value.problems
    assert problem.startswith("mine.yaml:")
    assert f": {key_path}: " in problem
    assert expected in problem


def test_problem_line_points_at_the_offending_key() -> None:
    text = "version: 1\nentities:\n  customer:\n    direction: both\n    conflict: app_win\n"
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text, "mine.yaml")
    assert caught.value.problems == (
        f"mine.yaml:5:5: entities.customer.conflict: {CONFLICTS}; got 'app_win'",
    )


def test_every_problem_is_reported_in_file_order() -> None:
    text = (
        "version: 1\n"
        "entities:\n"
        "  invoice:\n"
        "    fields:\n"
        "      total: {direction: both}\n"
        "  customer:\n"
        "    conflict: app_win\n"
        "  customers: {}\n"
    )
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text, "mine.yaml")
    paths = [line.split(": ")[1] for line in caught.value.problems]
    assert paths == [
        "entities.invoice.fields.total.direction",
        "entities.customer.conflict",
        "entities.customers",
    ]
    assert "(3 problems)" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "where", "expected"),
    [
        (
            "version: 1\nentities:\n  customer:\n    match_keys: [email\n",
            "mine.yaml:5:1",
            "expected ',' or ']'",
        ),
        ("version: 1\nentities: {customer: {conflict: manual}\n", "mine.yaml:3:1", "expected ',' or '}'"),
        ("version: 1\n  entities: {}\n", "mine.yaml:2:11", "mapping values are not allowed"),
        ("version: 1\nversion: 1\n", "mine.yaml:2:1", "duplicate key 'version'"),
    ],
    ids=["unclosed list", "unclosed mapping", "bad indentation", "duplicate key"],
)
def test_yaml_syntax_error_gives_line_and_column(text: str, where: str, expected: str) -> None:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text, "mine.yaml")
    [problem] = caught.value.problems
    assert problem.startswith(f"{where}: invalid YAML: ")
    assert expected in problem


@pytest.mark.parametrize(
    ("text", "key_path", "expected"),
    [
        ("", "(top level)", "expected a mapping (key: value lines); got nothing (null)"),
        ("- customer\n", "(top level)", "expected a mapping (key: value lines); got a list"),
        ("entities: {}\n", "version", "required key is missing; expected `version: 1`"),
        ("version: 2\n", "version", "expected 1; got 2"),
        (
            "version: 1\nentities: [customer]\n",
            "entities",
            "expected a mapping (key: value lines); got a list",
        ),
        ("version: 1\nentities:\n  customer:\n", "entities.customer", "got nothing (null)"),
    ],
    ids=["empty file", "not a mapping", "no version", "future version", "entities a list", "empty entity"],
)
def test_document_shape_errors(text: str, key_path: str, expected: str) -> None:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text, "mine.yaml")
    [problem] = caught.value.problems
    assert f": {key_path}: " in problem
    assert expected in problem


def test_missing_file_is_a_configuration_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigurationError) as caught:
        load_policy(missing)
    assert str(caught.value).endswith(f"{missing}: file not found; expected a policy YAML file")


def test_a_directory_is_not_a_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError) as caught:
        load_policy(tmp_path)
    assert caught.value.problems == (f"{tmp_path}: is a directory; expected a policy YAML file",)


def test_load_policy_names_the_file_in_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\nentities:\n  item:\n    conflict: newest\n    direction: sideways\n")
    with pytest.raises(PolicyFileError) as caught:
        load_policy(path)
    assert [p.split(": ")[0] for p in caught.value.problems] == [f"{path}:4:5", f"{path}:5:5"]


def test_a_file_that_is_not_utf8_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("version: 1\n# caf\u00e9\n".encode("latin-1"))
    with pytest.raises(PolicyFileError) as caught:
        load_policy(path)
    [problem] = caught.value.problems
    assert problem.startswith(f"{path}: expected UTF-8 text")


def test_a_yaml_boolean_is_named_as_yaml_writes_it() -> None:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy("version: 1\nentities:\n  customer:\n    conflict: yes\n", "mine.yaml")
    assert caught.value.problems[0].endswith(f"{CONFLICTS}; got true")
