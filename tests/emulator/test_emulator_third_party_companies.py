"""python-quickbooks and intuit-oauth, unmodified, and ledgersync's own OAuth client, against two
companies of one emulator.

Intuit's consent page asks the user which company to connect; on the emulator the consent URL's `realm`
parameter answers for them, so the test appends it to the URL intuit-oauth builds and changes nothing else.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from quickbooks import QuickBooks
from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.company_info import CompanyInfo
from quickbooks.objects.customer import Customer

from connectors.quickbooks.emulator import CompanyHandle, EmulatorHandle
from connectors.quickbooks.oauth import OAuthClient
from connectors.quickbooks.settings import QboSettings
from engine.clock import SystemClock
from tests.emulator.test_emulator_third_party import REDIRECT


def _client(company: CompanyHandle, patch: pytest.MonkeyPatch) -> QuickBooks:
    auth = AuthClient(company.client_id, company.client_secret, REDIRECT, company.discovery_url)
    url = auth.get_authorization_url([Scopes.ACCOUNTING]) + f"&realm={company.realm_id}"
    with requests.Session() as browser:
        answer = browser.get(url, allow_redirects=False)
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["realmId"] == [company.realm_id]
    auth.get_bearer_token(query["code"][0], realm_id=company.realm_id)
    emulated = type("EmulatedQuickBooks", (QuickBooks,), {"api_url_v3": company.api_base})
    patch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
    return emulated(
        auth_client=auth, refresh_token=auth.refresh_token, company_id=company.realm_id, minorversion=75
    )


@pytest.fixture(scope="module")
def clients(qbo: EmulatorHandle) -> Iterator[tuple[QuickBooks, QuickBooks]]:
    second = qbo.add_company(company_name="Second Books")
    with pytest.MonkeyPatch.context() as patch:
        first_client, second_client = _client(qbo, patch), _client(second, patch)
        try:
            yield first_client, second_client
        finally:
            for client in (first_client, second_client):
                client.session.close()
                client.auth_client.close()


def _customer(client: QuickBooks, name: str) -> Customer:
    customer = Customer()
    customer.DisplayName = name
    saved: Customer = customer.save(qb=client)
    return saved


def test_each_company_reads_back_only_its_own_customer(clients: tuple[QuickBooks, QuickBooks]) -> None:
    first, second = clients
    alpha = _customer(first, "Alpha Only")
    beta = _customer(second, "Beta Only")
    assert Customer.get(alpha.Id, qb=first).DisplayName == "Alpha Only"
    assert Customer.get(beta.Id, qb=second).DisplayName == "Beta Only"
    assert [c.Id for c in Customer.filter(DisplayName="Alpha Only", qb=first)] == [alpha.Id]
    assert Customer.filter(DisplayName="Alpha Only", qb=second) == []
    assert Customer.filter(DisplayName="Beta Only", qb=first) == []
    assert CompanyInfo.get(second.company_id, qb=second).CompanyName == "Second Books"


def test_a_client_cannot_reach_the_other_company(clients: tuple[QuickBooks, QuickBooks]) -> None:
    first, second = clients
    trespasser = type(first)(
        auth_client=first.auth_client,
        refresh_token=first.auth_client.refresh_token,
        company_id=second.company_id,
        minorversion=75,
    )
    try:
        with pytest.raises(QuickbooksException) as refused:
            Customer.all(qb=trespasser)
        assert "3100" in str(refused.value.message) + str(refused.value.detail) + str(
            refused.value.error_code
        )
    finally:
        trespasser.session.close()


def test_ledgersync_connects_a_second_company_the_same_way(qbo: EmulatorHandle) -> None:
    """ledgersync's OAuth client, pointed at the emulator as for one company: the consent request's
    `realm` stands in for the company the user picks; the callback names it and the tokens work on it
    alone."""
    second = qbo.add_company()
    settings = QboSettings(environment=qbo.base_url, client_id=qbo.client_id, client_secret=qbo.client_secret)
    with httpx.Client() as http:
        oauth = OAuthClient(http, settings, SystemClock())
        picked = oauth.authorization_request(realm=second.realm_id)
        tokens = oauth.exchange_code(oauth.consent_automatically(picked))
        assert tokens.realm_id == second.realm_id
        headers = {"Authorization": f"Bearer {tokens.access_token.get_secret_value()}"}
        assert http.get(f"{second.company_url}/companyinfo/1", headers=headers).status_code == 200
        assert http.get(f"{qbo.company_url}/companyinfo/1", headers=headers).status_code == 403
        default = oauth.exchange_code(oauth.consent_automatically(oauth.authorization_request()))
        assert default.realm_id == qbo.realm_id  # no pick: the first company, as before
