"""The query language: operators, quoting, paging, ordering, counts, hidden inactive records, query faults."""

from __future__ import annotations

import pytest

from tests.emulator.conftest import Api, fault_code


@pytest.fixture(scope="module", autouse=True)
def people(api: Api) -> None:
    for name, balance in (("Alpha", 10), ("Bravo's Bar", 20), ("Charlie", 30), ("Delta", 40)):
        api.qbo.create_record("Customer", {"DisplayName": name, "Notes": f"n{balance}", "CompanyName": name})
    retired = api.qbo.create_record("Customer", {"DisplayName": "Retired"})
    api.qbo.edit_record("Customer", retired["Id"], {"Active": False})


def _names(api: Api, statement: str) -> list[str]:
    response = api.query(statement)
    assert response.status_code == 200, response.text
    return [c["DisplayName"] for c in response.json()["QueryResponse"].get("Customer", [])]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("DisplayName = 'Alpha'", ["Alpha"]),
        ("DisplayName = 'Bravo''s Bar'", ["Bravo's Bar"]),
        ("DisplayName = 'Bravo\\'s Bar'", ["Bravo's Bar"]),
        ("DisplayName IN ('Alpha', 'Delta')", ["Alpha", "Delta"]),
        ("DisplayName LIKE '%ar%'", ["Bravo's Bar", "Charlie"]),
        ("Notes > 'n20' AND Notes <= 'n40'", ["Charlie", "Delta"]),
        ("Notes >= 'n30'", ["Charlie", "Delta"]),
        ("Notes < 'n20'", ["Alpha"]),
        ("Active = false", ["Retired"]),
        ("Active IN (true, false) AND DisplayName LIKE 'R%'", ["Retired"]),
        ("displayname = 'alpha'", ["Alpha"]),
        ("MetaData.LastUpdatedTime > '2000-01-01T00:00:00-07:00' AND DisplayName = 'Alpha'", ["Alpha"]),
        ("Metadata.LastUpdatedTime < '2000-01-01'", []),
    ],
)
def test_where_clauses(api: Api, where: str, expected: list[str]) -> None:
    assert _names(api, f"SELECT * FROM Customer WHERE {where} ORDERBY DisplayName") == expected


def test_inactive_name_list_records_are_hidden_unless_asked_for(api: Api) -> None:
    assert "Retired" not in _names(api, "select * from Customer")


def test_order_by_both_spellings_and_direction(api: Api) -> None:
    names = _names(api, "SELECT * FROM Customer WHERE Notes LIKE 'n%' ORDER BY DisplayName DESC")
    assert names == ["Delta", "Charlie", "Bravo's Bar", "Alpha"]
    assert _names(api, "SELECT * FROM Customer WHERE Notes LIKE 'n%' ORDERBY DisplayName ASC") == names[::-1]


def test_paging_reports_returned_rows_and_an_empty_page_has_no_entity_key(api: Api) -> None:
    statement = (
        "SELECT * FROM Customer WHERE Notes LIKE 'n%' ORDERBY DisplayName STARTPOSITION 2 MAXRESULTS 2"
    )
    page = api.query(statement).json()["QueryResponse"]
    assert [c["DisplayName"] for c in page["Customer"]] == ["Bravo's Bar", "Charlie"]
    assert (page["startPosition"], page["maxResults"]) == (2, 2)
    past = api.query("SELECT * FROM Customer WHERE Notes LIKE 'n%' STARTPOSITION 50").json()
    assert past["QueryResponse"] == {}


def test_count(api: Api) -> None:
    body = api.query("SELECT COUNT(*) FROM Customer WHERE Active IN (true, false) AND Notes LIKE 'n%'").json()
    assert body["QueryResponse"] == {"totalCount": 4}


def test_maxresults_defaults_to_100(api: Api) -> None:
    for n in range(101):
        api.qbo.create_record("Vendor", {"DisplayName": f"Vendor {n:03d}"})
    assert len(api.query("select * from Vendor").json()["QueryResponse"]["Vendor"]) == 100
    assert len(api.query("select * from Vendor maxresults 1000").json()["QueryResponse"]["Vendor"]) == 101


def test_post_query_with_application_text(api: Api) -> None:
    response = api.client.post(
        "/query",
        content="select * from Customer where DisplayName = 'Alpha'",
        headers={"Content-Type": "application/text"},
    )
    assert [c["DisplayName"] for c in response.json()["QueryResponse"]["Customer"]] == ["Alpha"]


@pytest.mark.parametrize(
    ("statement", "code"),
    [
        ("SELECT * FROM Customer MAXRESULTS 1500", "4001"),
        ("SELEC * FROM Customer", "4000"),
        ("SELECT * FROM customer", "4001"),
        ("SELECT * FROM Customer WHERE DisplayName = 'Alpha' OR DisplayName = 'Delta'", "4000"),
        ("SELECT * FROM Customer WHERE DisplayName = 'unterminated", "4000"),
        ("SELECT * FROM Customer WHERE DisplayName ~ 'x'", "4000"),
        ("SELECT * FROM Customer WHERE", "4000"),
        ("SELECT * FROM", "4000"),
        ("SELECT * FROM Customer STARTPOSITION abc", "4000"),
        ("SELECT * FROM Customer MAXRESULTS 0", "4001"),
        ("", "4000"),
    ],
)
def test_malformed_queries_get_the_query_fault_never_a_500(api: Api, statement: str, code: str) -> None:
    response = api.query(statement)
    assert response.status_code == 400, response.text
    assert fault_code(response) == code


def test_paging_sees_a_write_made_between_its_pages(api: Api) -> None:
    """The emulator keeps a query's answer between pages; a write between them must still show."""
    marker = "pg-" + str(len(api.query("SELECT COUNT(*) FROM Customer").json()["QueryResponse"]))
    made = [api.create("Customer", {"DisplayName": f"{marker} {i}", "Notes": marker}) for i in range(3)]
    statement = f"SELECT * FROM Customer WHERE Notes = '{marker}' ORDERBY DisplayName"
    first = api.query(f"{statement} STARTPOSITION 1 MAXRESULTS 2").json()["QueryResponse"]["Customer"]
    assert [c["Id"] for c in first] == [made[0]["Id"], made[1]["Id"]]
    moved = {**made[0], "sparse": True, "DisplayName": f"{marker} 9"}  # now sorts last
    assert api.post("/customer", moved).status_code == 200
    rest = api.query(f"{statement} STARTPOSITION 2 MAXRESULTS 2").json()["QueryResponse"]["Customer"]
    assert [c["Id"] for c in rest] == [made[2]["Id"], made[0]["Id"]]
