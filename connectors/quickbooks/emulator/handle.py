"""Handles on a running emulator: its addresses, the OAuth flow, and the control API as methods.

`EmulatorHandle` is the emulator and its default company; `add_company()` and `company(realm_id)` give a
`CompanyHandle` on any other company, with the same per-company methods (connect, records, faults,
disconnect, request log, webhooks, throttle). Both talk HTTP only, so they work on an emulator running
in another process too; `company` is the in-process `Company` (its `store`) when there is one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx

from connectors.quickbooks.emulator.config import EmulatorConfig

if TYPE_CHECKING:
    from connectors.quickbooks.emulator.company import Company
    from connectors.quickbooks.emulator.emulator import Emulator


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str
    realm_id: str
    expires_in: int
    x_refresh_token_expires_in: int


class CompanyHandle:
    """One company of a running emulator. `config` is the emulator's (the app's credentials and defaults);
    the company's own name and limits are in `info()`, or `company.config` in-process."""

    def __init__(
        self,
        base_url: str,
        realm_id: str,
        config: EmulatorConfig,
        http: httpx.Client,
        company: Company | None = None,
        control_prefix: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.config = config
        self.company = company
        self._realm_id = realm_id
        self._http = http
        self._prefix = control_prefix or f"/_emulator/companies/{realm_id}"

    @property
    def realm_id(self) -> str:
        return self._realm_id

    @property
    def client_id(self) -> str:
        return self.config.client_id

    @property
    def client_secret(self) -> str:
        return self.config.client_secret

    @property
    def api_base(self) -> str:
        """Where `/company/{realmId}/...` hangs: replaces https://quickbooks.api.intuit.com/v3."""
        return self.base_url + "/v3"

    @property
    def company_url(self) -> str:
        return f"{self.api_base}/company/{self.realm_id}"

    @property
    def discovery_url(self) -> str:
        return self.base_url + "/.well-known/openid_configuration"

    @property
    def token_url(self) -> str:
        return self.base_url + "/oauth2/v1/tokens/bearer"

    @property
    def authorize_hint(self) -> dict[str, str]:
        """What to add to the consent URL to connect this company (the emulator's company picker)."""
        return {"realm": self.realm_id}

    def connect(
        self,
        redirect_uri: str = "http://localhost:8000/callback",
        scope: str = "com.intuit.quickbooks.accounting",
    ) -> Tokens:
        """Run the authorization-code flow for this company (consent is automatic); fresh tokens."""
        params = {
            "client_id": self.client_id,
            "response_type": "code",
            "scope": scope,
            "redirect_uri": redirect_uri,
            "state": "emulator",
            **self.authorize_hint,
        }
        consent = self._http.get("/connect/oauth2", params=params)
        query = parse_qs(urlsplit(consent.headers["location"]).query)
        if "code" not in query:
            raise RuntimeError(f"consent refused: {query.get('error')}")
        answer = self._http.post(
            "/oauth2/v1/tokens/bearer",
            data={"grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": redirect_uri},
            auth=(self.client_id, self.client_secret),
        )
        answer.raise_for_status()
        body = answer.json()
        return Tokens(
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            realm_id=query["realmId"][0],
            expires_in=body["expires_in"],
            x_refresh_token_expires_in=body["x_refresh_token_expires_in"],
        )

    def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self._http.request(method, self._prefix + path, json=body)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def info(self) -> dict[str, Any]:
        """realm_id, company_name, company_url, base_url and the app's credentials."""
        return self._control("GET", "/info")

    def disconnect(self) -> dict[str, Any]:
        """As if the user clicked Disconnect in QuickBooks: every token of this company stops working
        (other companies' tokens keep working)."""
        return self._control("POST", "/disconnect")

    def inject_fault(
        self,
        kind: str,
        count: int = 1,
        *,
        status: int = 503,
        delay: float = 0.0,
        path_contains: str = "",
        seconds: float | None = None,
    ) -> dict[str, Any]:
        """Arm a fault (rate_limit, server_error, timeout_after_commit, latency, webhook_drop, _duplicate,
        _reorder) on this company for its next `count` matches, or for every match during `seconds`."""
        body = {
            "kind": kind,
            "count": count,
            "status": status,
            "delay": delay,
            "path_contains": path_contains,
            "seconds": seconds,
        }
        return self._control("POST", "/faults", body)

    def storm(self, seconds: float) -> dict[str, Any]:
        """A 429 storm: every API call to this company answers ThrottleExceeded for `seconds`."""
        return self.inject_fault("rate_limit", seconds=seconds)

    def faults(self) -> dict[str, Any]:
        """Armed faults, how often each kind fired, and the requests held back right now."""
        return self._control("GET", "/faults")

    def clear_faults(self) -> None:
        self._control("DELETE", "/faults")

    def request_log(self, entries: bool = False) -> dict[str, Any]:
        return self._control("GET", "/requests?entries=1" if entries else "/requests")

    def clear_request_log(self) -> None:
        self._control("DELETE", "/requests")

    def reset_throttle(self) -> None:
        self._control("POST", "/throttle/reset")

    def webhook_deliveries(self) -> dict[str, Any]:
        return self._control("GET", "/webhooks")

    def read_record(self, entity: str, entity_id: str) -> dict[str, Any]:
        """Read without going through (or being counted by) the API."""
        return dict(self._control("GET", f"/records/{entity}/{entity_id}")[entity])

    def list_records(self, entity: str) -> list[dict[str, Any]]:
        """Every record of an entity, inactive ones included, without going through the API."""
        return list(self._control("GET", f"/records/{entity}")[entity])

    def create_record(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._control("POST", f"/records/{entity}", body)[entity])

    def edit_record(self, entity: str, entity_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """Change fields as an accountant in the QuickBooks UI would: no SyncToken needed, version bumps."""
        return dict(self._control("POST", f"/records/{entity}/{entity_id}", changes)[entity])

    def delete_record(self, entity: str, entity_id: str) -> dict[str, Any]:
        """Delete a transaction, or make a name-list record inactive, as a user would."""
        return dict(self._control("DELETE", f"/records/{entity}/{entity_id}")[entity])


class EmulatorHandle(CompanyHandle):
    """A running emulator, as its default company, plus what belongs to the whole emulator: the clock,
    and the companies it hosts. `request_log()` here counts every company's calls and OAuth's."""

    def __init__(
        self, base_url: str, emulator: Emulator | None = None, config: EmulatorConfig | None = None
    ) -> None:
        config = config or (emulator.config if emulator is not None else None)
        if config is None:
            raise ValueError("an EmulatorHandle needs the emulator or its config")
        http = httpx.Client(base_url=base_url, timeout=60.0)
        company = emulator.default if emulator is not None else None
        super().__init__(base_url, config.realm_id, config, http, company, control_prefix="/_emulator")
        self.emulator = emulator

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        """Every company's clock: the emulator has one."""
        return self._control("POST", "/clock/advance", {"seconds": seconds})

    def add_company(self, realm_id: str | None = None, **settings: Any) -> CompanyHandle:
        """Host one more company (`realm_id`, or the next free one) with `settings` (company_name,
        webhook_url, timezone_offset_hours, requests_per_minute, batch_requests_per_minute,
        max_in_flight, requests_per_second); its handle."""
        body = {"realm_id": realm_id, **settings} if realm_id else dict(settings)
        added = self._control("POST", "/companies", body)
        return self.company_handle(str(added["realm_id"]))

    def company_handle(self, realm_id: str) -> CompanyHandle:
        """A handle on a company the emulator hosts (no request made)."""
        company = self.emulator.companies.get(realm_id) if self.emulator is not None else None
        return CompanyHandle(self.base_url, realm_id, self.config, self._http, company)

    def companies(self) -> list[dict[str, Any]]:
        """Every hosted company, the default one first: realm_id, company_name, company_url, ..."""
        return list(self._control("GET", "/companies")["companies"])

    def close(self) -> None:
        self._http.close()
