"""Done-when: intuit-oauth and python-quickbooks work against the emulator with only the base URL changed.

intuit-oauth takes a discovery URL as its `environment`; python-quickbooks hard-codes its API host, so the
test subclass overrides `api_url_v3` (its base URL) and nothing else. requests-oauthlib refuses plain http
unless OAUTHLIB_INSECURE_TRANSPORT is set, which the test does because the emulator speaks http.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError
from quickbooks import QuickBooks
from quickbooks.batch import batch_create
from quickbooks.cdc import change_data_capture
from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.account import Account
from quickbooks.objects.base import LinkedTxn
from quickbooks.objects.company_info import CompanyInfo
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.payment import Payment, PaymentLine

from connectors.quickbooks.emulator import EmulatorHandle

REDIRECT = "http://localhost:8000/callback"


def _auth_client(qbo: EmulatorHandle) -> AuthClient:
    return AuthClient(qbo.client_id, qbo.client_secret, REDIRECT, qbo.discovery_url)


def _consent(auth: AuthClient) -> tuple[str, str]:
    url = auth.get_authorization_url([Scopes.ACCOUNTING])
    with requests.Session() as browser:
        answer = browser.get(url, allow_redirects=False)
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["state"] == [auth.state_token]
    return query["code"][0], query["realmId"][0]


def test_intuit_oauth_discovers_exchanges_refreshes_and_revokes(qbo: EmulatorHandle) -> None:
    auth = _auth_client(qbo)
    try:
        assert auth.token_endpoint == qbo.token_url
        code, realm = _consent(auth)
        assert realm == qbo.realm_id
        auth.get_bearer_token(code, realm_id=realm)
        assert auth.access_token and auth.refresh_token
        assert auth.expires_in == 3600
        assert auth.x_refresh_token_expires_in == 8726400
        first_access = auth.access_token
        auth.refresh()
        assert auth.access_token != first_access
        with pytest.raises(AuthClientError) as reused:
            auth.get_bearer_token(code, realm_id=realm)  # codes are single-use
        assert reused.value.status_code == 400
        assert auth.revoke() is True
        with pytest.raises(AuthClientError) as dead:
            auth.refresh()
        assert dead.value.status_code == 400
        assert b"invalid_grant" in dead.value.content
    finally:
        auth.close()


@pytest.fixture(scope="module")
def client(qbo: EmulatorHandle) -> Iterator[QuickBooks]:
    auth = _auth_client(qbo)
    code, realm = _consent(auth)
    auth.get_bearer_token(code, realm_id=realm)
    emulated = type("EmulatedQuickBooks", (QuickBooks,), {"api_url_v3": qbo.api_base})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
        qb = emulated(auth_client=auth, refresh_token=auth.refresh_token, company_id=realm, minorversion=75)
        try:
            yield qb
        finally:
            qb.session.close()
            auth.close()


def test_company_info(client: QuickBooks, qbo: EmulatorHandle) -> None:
    info = CompanyInfo.get(qbo.realm_id, qb=client)
    assert info.CompanyName == qbo.config.company_name


def test_customer_create_read_query_and_sparse_update(client: QuickBooks) -> None:
    customer = Customer()
    customer.DisplayName = "Amy's Bird Sanctuary"
    customer.GivenName = "Amy"
    saved = customer.save(qb=client)
    assert saved.Id and saved.SyncToken == "0"
    read = Customer.get(saved.Id, qb=client)
    assert read.DisplayName == "Amy's Bird Sanctuary"
    found = Customer.filter(DisplayName="Amy's Bird Sanctuary", qb=client)
    assert [c.Id for c in found] == [saved.Id]
    assert Customer.count("DisplayName LIKE 'Amy%'", qb=client) == 1
    read.sparse = True
    read.Notes = "Prefers email"
    updated = read.save(qb=client)
    assert updated.SyncToken == "1"
    assert Customer.get(saved.Id, qb=client).Notes == "Prefers email"


def _customer(client: QuickBooks, name: str) -> Customer:
    customer = Customer()
    customer.DisplayName = name
    return customer.save(qb=client)


def test_item_invoice_and_payment_leave_a_zero_balance(client: QuickBooks) -> None:
    income = Account.where("AccountType = 'Income'", qb=client)[0]
    item = Item()
    item.Name = "Bird Seed Delivery"
    item.Type = "Service"
    item.IncomeAccountRef = income.to_ref()
    item = item.save(qb=client)
    customer = _customer(client, "Seed Buyer")

    line = SalesItemLine()
    line.Amount = 150.0
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = item.to_ref()
    invoice = Invoice()
    invoice.CustomerRef = customer.to_ref()
    invoice.Line.append(line)
    invoice = invoice.save(qb=client)
    assert invoice.TotalAmt == 150.0 and invoice.Balance == 150.0

    payment = Payment()
    payment.TotalAmt = 150.0
    payment.CustomerRef = customer.to_ref()
    applied = PaymentLine()
    applied.Amount = 150.0
    linked = LinkedTxn()
    linked.TxnId = invoice.Id
    linked.TxnType = "Invoice"
    applied.LinkedTxn.append(linked)
    payment.Line.append(applied)
    payment = payment.save(qb=client)

    paid = Invoice.get(invoice.Id, qb=client)
    assert paid.Balance == 0
    assert [(t.TxnId, t.TxnType) for t in paid.LinkedTxn] == [(payment.Id, "Payment")]


def test_change_data_capture(client: QuickBooks, qbo: EmulatorHandle) -> None:
    since = datetime.fromisoformat(qbo.advance_clock(5)["now"])  # everything earlier is older
    _customer(client, "CDC Customer")
    response: Any = change_data_capture([Customer, Invoice], since.isoformat(), qb=client)
    assert [c.DisplayName for c in response.Customer] == ["CDC Customer"]
    assert not hasattr(response, "Invoice")


def test_batch_of_three(client: QuickBooks) -> None:
    customers = []
    for n in range(3):
        customer = Customer()
        customer.DisplayName = f"Batch Customer {n}"
        customers.append(customer)
    result = batch_create(customers, qb=client)
    assert len(result.successes) == 3 and not result.faults
    assert sorted(c.DisplayName for c in result.successes) == [f"Batch Customer {n}" for n in range(3)]


def test_stale_object_and_duplicate_name_errors(client: QuickBooks) -> None:
    customer = _customer(client, "Twice Edited")
    stale_copy = Customer.get(customer.Id, qb=client)
    customer.sparse = True
    customer.Notes = "first edit"
    customer.save(qb=client)
    stale_copy.sparse = True
    stale_copy.Notes = "second edit"
    with pytest.raises(QuickbooksException) as stale:
        stale_copy.save(qb=client)
    assert stale.value.error_code == 5010
    with pytest.raises(QuickbooksException) as duplicate:
        _customer(client, "twice edited")
    assert duplicate.value.error_code == 6240
    assert f"Id={customer.Id}" in duplicate.value.detail
