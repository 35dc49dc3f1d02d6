"""Done-when: python-quickbooks, unmodified, creates and reads taxed, discounted, foreign-currency invoices
and a payment over three invoices against the emulator (only its base URL changed, as in
test_emulator_third_party.py)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from intuitlib.client import AuthClient
from intuitlib.enums import Scopes
from quickbooks import QuickBooks
from quickbooks.objects.base import LinkedTxn, Ref
from quickbooks.objects.customer import Customer
from quickbooks.objects.detailline import DiscountLine, DiscountLineDetail, SalesItemLine, SalesItemLineDetail
from quickbooks.objects.invoice import Invoice
from quickbooks.objects.item import Item
from quickbooks.objects.payment import Payment, PaymentLine
from quickbooks.objects.taxcode import TaxCode
from quickbooks.objects.term import Term

from connectors.quickbooks.emulator import EmulatorConfig, running_emulator
from connectors.quickbooks.emulator.profile import CompanyProfile

REDIRECT = "http://localhost:8000/callback"


@contextmanager
def quickbooks_on(company: CompanyProfile) -> Iterator[QuickBooks]:
    with running_emulator(EmulatorConfig(profile=company)) as qbo:
        auth = AuthClient(qbo.client_id, qbo.client_secret, REDIRECT, qbo.discovery_url)
        with requests.Session() as browser:
            answer = browser.get(auth.get_authorization_url([Scopes.ACCOUNTING]), allow_redirects=False)
        query = parse_qs(urlsplit(answer.headers["Location"]).query)
        auth.get_bearer_token(query["code"][0], realm_id=query["realmId"][0])
        emulated = type("EmulatedQuickBooks", (QuickBooks,), {"api_url_v3": qbo.api_base})
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")
            qb = emulated(
                auth_client=auth, refresh_token=auth.refresh_token, company_id=qbo.realm_id, minorversion=75
            )
            try:
                yield qb
            finally:
                qb.session.close()
                auth.close()


def _ref(value: str) -> Ref:
    ref = Ref()
    ref.value = value
    return ref


def _stock(qb: QuickBooks, currency: str | None = None) -> tuple[Customer, Item]:
    customer = Customer()
    customer.DisplayName = f"Customer {currency or 'home'}"
    if currency:
        customer.CurrencyRef = _ref(currency)
    item = Item()
    item.Name = f"Service {currency or 'home'}"
    item.Type = "Service"
    item.IncomeAccountRef = _ref("1")
    return customer.save(qb=qb), item.save(qb=qb)


def _line(item: Item, amount: float, code: str) -> SalesItemLine:
    line = SalesItemLine()
    line.Amount = amount
    line.SalesItemLineDetail = SalesItemLineDetail()
    line.SalesItemLineDetail.ItemRef = item.to_ref()
    line.SalesItemLineDetail.TaxCodeRef = _ref(code)
    return line


def _invoice(customer: Customer, *lines: SalesItemLine | DiscountLine) -> Invoice:
    invoice = Invoice()
    invoice.CustomerRef = customer.to_ref()
    invoice.Line.extend(lines)
    return invoice


def test_us_automated_sales_tax_discount_terms_and_a_payment_over_three_invoices() -> None:
    with quickbooks_on(CompanyProfile.us_automated_sales_tax()) as qb:
        assert {code.Id for code in TaxCode.all(qb=qb)} == {"TAX", "NON", "2"}
        net_15 = next(term for term in Term.all(qb=qb) if term.Name == "Net 15")
        customer, item = _stock(qb)
        taxed = _invoice(customer, _line(item, 275.0, "TAX"), _line(item, 60.25, "NON"))
        taxed.SalesTermRef = net_15.to_ref()
        taxed.TxnDate = "2026-11-02"
        taxed = taxed.save(qb=qb)
        assert taxed.TxnTaxDetail.TotalTax == 22.0 and taxed.TotalAmt == 357.25
        assert taxed.DueDate == "2026-11-17"
        discount = DiscountLine()
        discount.Amount = 0
        discount.DiscountLineDetail = DiscountLineDetail()
        discount.DiscountLineDetail.PercentBased = True
        discount.DiscountLineDetail.DiscountPercent = 10
        discounted = _invoice(customer, _line(item, 200.0, "TAX"), discount)
        discounted.ApplyTaxAfterDiscount = True
        discounted = discounted.save(qb=qb)
        read = Invoice.get(discounted.Id, qb=qb)
        assert read.TxnTaxDetail.TotalTax == 14.4 and read.TotalAmt == 194.4  # 200 - 20 + 8% of 180
        third = _invoice(customer, _line(item, 50.0, "NON")).save(qb=qb)

        payment = Payment()
        payment.CustomerRef = customer.to_ref()
        payment.TotalAmt = 500.0
        for invoice, amount in ((taxed, 357.25), (discounted, 94.4), (third, 40.0)):
            applied = PaymentLine()
            applied.Amount = amount
            link = LinkedTxn()
            link.TxnId = invoice.Id
            link.TxnType = "Invoice"
            applied.LinkedTxn.append(link)
            payment.Line.append(applied)
        payment = payment.save(qb=qb)
        assert payment.UnappliedAmt == 8.35
        balances = [Decimal(str(Invoice.get(i.Id, qb=qb).Balance)) for i in (taxed, discounted, third)]
        assert balances == [Decimal("0"), Decimal("100.0"), Decimal("10.0")]


def test_uk_vat_per_line() -> None:
    with quickbooks_on(CompanyProfile.uk()) as qb:
        customer, item = _stock(qb)
        invoice = _invoice(customer, _line(item, 100.0, "2"), _line(item, 40.0, "3"), _line(item, 10.0, "5"))
        invoice = invoice.save(qb=qb)  # python-quickbooks sends GlobalTaxCalculation TaxExcluded itself
        read = Invoice.get(invoice.Id, qb=qb)
        assert read.GlobalTaxCalculation == "TaxExcluded"
        assert read.TxnTaxDetail.TotalTax == 22.0 and read.TotalAmt == 172.0
        assert sorted(line.Amount for line in read.TxnTaxDetail.TaxLine) == [0.0, 2.0, 20.0]
        assert read.CurrencyRef.value == "GBP"


def test_a_eur_invoice_in_a_usd_company() -> None:
    with quickbooks_on(CompanyProfile.us_automated_sales_tax(multicurrency=True)) as qb:
        customer, item = _stock(qb, "EUR")
        invoice = _invoice(customer, _line(item, 100.0, "NON"))
        invoice.ExchangeRate = 1.1  # python-quickbooks sends 1 unless told
        invoice = invoice.save(qb=qb)
        read = Invoice.get(invoice.Id, qb=qb)
        assert read.CurrencyRef.value == "EUR" and read.ExchangeRate == 1.1
        assert read.TotalAmt == 100.0 and read.HomeTotalAmt == 110.0
        assert Customer.get(customer.Id, qb=qb).CurrencyRef.value == "EUR"
