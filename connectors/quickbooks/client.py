"""`QboClient`: the QuickBooks Accounting API over an injected `httpx.Client`, with token custody,
the shared rate budget, `requestid` on every write, and faults mapped through `faults.py`.

Retries inside one call: once after a 401 (a refreshed token), a bounded number of times after a 429
(the budget holds the whole realm meanwhile) and after 5xx or timeouts (`engine.backoff`: exponential,
capped, jittered; the same requestid, so QuickBooks replays a write it already committed instead of
doing it twice).

Calls made inside `spare()` are spare for the rate budget: they leave the minute's batches their room.
"""

from __future__ import annotations

import functools
import logging
import random
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.quickbooks import faults
from connectors.quickbooks.budget import MeteredRead, RateBudget, Room
from connectors.quickbooks.settings import QboSettings
from connectors.quickbooks.telemetry import request_counts, request_labels
from connectors.quickbooks.tokens import TokenCustodian
from engine import jsontext
from engine.backoff import backoff_delay
from engine.errors import (
    LedgersyncError,
    NeedsReauthorizationError,
    RateLimitedError,
    UpstreamUnavailableError,
)
from engine.observe.counters import Counters

log = logging.getLogger(__name__)

#: QuickBooks' own limits on `requestid` (a batch's is shorter: its bIds are appended).
REQUEST_ID_MAX = 50
BATCH_REQUEST_ID_MAX = 36
#: Entities voided with `operation=update&include=void` rather than `operation=void`.
_VOID_BY_UPDATE = frozenset({"Payment", "SalesReceipt", "BillPayment"})
#: Whether this thread's calls are spare (see `QboClient.spare`).
_SPARE: ContextVar[bool] = ContextVar("qbo_spare_calls", default=False)


def new_http_client(settings: QboSettings, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """An httpx client fit for QuickBooks (timeouts from settings); close it when done."""
    return httpx.Client(timeout=settings.timeout_seconds, transport=transport, verify=_tls_context())


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context per process, as httpx makes it (the CA bundle it trusts): loading the bundle
    costs 30 ms of CPU, once per client otherwise, which is a fifth of a sync with nothing to do."""
    return httpx.create_ssl_context()


class QboClient:
    """One company (realm) of one connection. Methods return QuickBooks JSON (entity objects)."""

    def __init__(
        self,
        http: httpx.Client,
        settings: QboSettings,
        realm_id: str,
        connection_id: str,
        tokens: TokenCustodian,
        budget: RateBudget,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        counters: Counters | None = None,
    ) -> None:
        self.http = http
        self.settings = settings
        self.realm_id = realm_id
        self.connection_id = connection_id
        self.tokens = tokens
        self.budget = budget
        self._sleep = sleep
        self._rand = rand
        #: Requests by entity, operation and status, 429s and time waited for the budget (/metrics).
        self.counters = counters
        #: QuickBooks' `time` from the last response (company-local, with offset), for CDC cursors.
        self.last_server_time: str | None = None

    @property
    def company_url(self) -> str:
        return f"{self.settings.api_base}/company/{self.realm_id}"

    # pacing

    def room(self) -> Room:
        """What the realm's budget would let start now (batches, spare calls); takes nothing."""
        return self.budget.room(self.realm_id)

    @contextmanager
    def spare(self) -> Iterator[None]:
        """Within the block, this thread's calls are spare: single writes that fill the minute once
        its batches are spent, never taking the requests the minute's remaining batches need."""
        token = _SPARE.set(True)
        try:
            yield
        finally:
            _SPARE.reset(token)

    # reads (metered)

    def read(self, entity_name: str, entity_id: str) -> dict[str, Any]:
        body = self._call("GET", f"/{entity_name.lower()}/{entity_id}", metered=MeteredRead.READ)
        return _entity(body, entity_name)

    def query(self, statement: str) -> list[dict[str, Any]]:
        """The rows of one query page (an empty list when QuickBooks answers `{}`)."""
        response = self._query(statement)
        for value in response.values():
            if isinstance(value, list):
                return [dict(row) for row in value]
        return []

    def count(self, statement: str) -> int:
        """`SELECT COUNT(*) FROM ...`'s answer."""
        return int(self._query(statement).get("totalCount", 0))

    def cdc(self, entity_names: Sequence[str], changed_since: datetime) -> dict[str, list[dict[str, Any]]]:
        """Changed (and deleted) objects per entity since `changed_since`; every asked entity is a key.

        QuickBooks answers at most 1000 objects in all and has no paging: a caller that gets 1000 back
        must split the window.
        """
        if changed_since.tzinfo is None:
            raise ValueError("changed_since must be timezone-aware")
        params = {
            "entities": ",".join(entity_names),
            "changedSince": changed_since.astimezone(UTC)
            .isoformat(timespec="seconds")
            .replace("+00:00", "Z"),
        }
        body = self._call("GET", "/cdc", params=params, metered=MeteredRead.CDC)
        found: dict[str, list[dict[str, Any]]] = {name: [] for name in entity_names}
        for cdc_response in body.get("CDCResponse", []):
            for query_response in cdc_response.get("QueryResponse", []):
                for key, value in query_response.items():
                    if isinstance(value, list):
                        found.setdefault(key, []).extend(value)
        return found

    # writes (not metered; `request_id` is the op id, reused by every retry)

    def create(self, entity_name: str, body: Mapping[str, Any], request_id: str) -> dict[str, Any]:
        answer = self._call("POST", f"/{entity_name.lower()}", json=dict(body), request_id=request_id)
        return _entity(answer, entity_name)

    def update(self, entity_name: str, body: Mapping[str, Any], request_id: str) -> dict[str, Any]:
        """A full or sparse update (`"sparse": true` in `body`); `Id` and `SyncToken` are required."""
        if "Id" not in body or "SyncToken" not in body:
            raise ValueError("an update needs Id and SyncToken")
        answer = self._call(
            "POST",
            f"/{entity_name.lower()}",
            params={"operation": "update"},
            json=dict(body),
            request_id=request_id,
        )
        return _entity(answer, entity_name)

    def delete(self, entity_name: str, entity_id: str, sync_token: str, request_id: str) -> dict[str, Any]:
        """Delete a transaction (name-list records are inactivated with a sparse update instead)."""
        answer = self._call(
            "POST",
            f"/{entity_name.lower()}",
            params={"operation": "delete"},
            json={"Id": entity_id, "SyncToken": sync_token},
            request_id=request_id,
        )
        return _entity(answer, entity_name)

    def void(self, entity_name: str, entity_id: str, sync_token: str, request_id: str) -> dict[str, Any]:
        body: dict[str, Any] = {"Id": entity_id, "SyncToken": sync_token}
        if entity_name in _VOID_BY_UPDATE:
            params = {"operation": "update", "include": "void"}
            body["sparse"] = True
        else:
            params = {"operation": "void"}
        answer = self._call(
            "POST", f"/{entity_name.lower()}", params=params, json=body, request_id=request_id
        )
        return _entity(answer, entity_name)

    def batch(self, items: Sequence[Mapping[str, Any]], request_id: str) -> dict[str, dict[str, Any]]:
        """Run up to 30 BatchItemRequest items (each with a `bId` of at most 10 characters); answers
        by bId, as QuickBooks returns them (an entity, a `Fault`, or a `QueryResponse`).

        Map an item's Fault with `faults.error_from_fault`. A batch is metered, even of writes.
        """
        if not 0 < len(items) <= self.settings.batch_max_items:
            raise ValueError(f"a batch holds 1 to {self.settings.batch_max_items} items, not {len(items)}")
        if len(request_id) > BATCH_REQUEST_ID_MAX:
            raise ValueError(f"a batch requestid has at most {BATCH_REQUEST_ID_MAX} characters")
        bids = [str(item["bId"]) for item in items]
        if len(set(bids)) != len(bids):
            raise ValueError("bIds must be unique within a batch")
        answer = self._call(
            "POST",
            "/batch",
            json={"BatchItemRequest": [dict(item) for item in items]},
            request_id=request_id,
            metered=MeteredRead.BATCH,
            is_batch=True,
        )
        return {str(item["bId"]): dict(item) for item in answer.get("BatchItemResponse", [])}

    # the one request loop

    def _query(self, statement: str) -> dict[str, Any]:
        body = self._call("POST", "/query", content=statement.encode(), metered=MeteredRead.QUERY)
        response: dict[str, Any] = body.get("QueryResponse", {})
        return response

    def _call(  # noqa: PLR0915 - one loop, every retry rule in one place
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        content: bytes | None = None,
        request_id: str | None = None,
        metered: MeteredRead | None = None,
        is_batch: bool = False,
    ) -> dict[str, Any]:
        if request_id is not None and not is_batch and len(request_id) > REQUEST_ID_MAX:
            raise ValueError(f"a requestid has at most {REQUEST_ID_MAX} characters")
        query: dict[str, str] = {**(params or {}), "minorversion": str(self.settings.minorversion)}
        if request_id is not None:
            query["requestid"] = request_id
        headers = {"Accept": "application/json"}
        entity, operation = request_labels(method, path, params, content)
        if json is not None:
            # Encoded once, whatever the retries, and through orjson (httpx's json= uses the stdlib's).
            content = jsontext.dumps(json)
            headers["Content-Type"] = "application/json"
        elif content is not None:
            headers["Content-Type"] = "application/text"
        context = {
            "connection": self.connection_id,
            "realm": self.realm_id,
            "entity": entity,
            "path": path,
            "op_id": request_id,
        }
        token = self.tokens.access_token(self.connection_id)
        refreshed = False
        throttled = 0
        failures = 0
        spare = _SPARE.get() and not is_batch
        while True:
            asked, waited = time.monotonic(), 0.0
            try:
                with self.budget.acquire(self.realm_id, batch=is_batch, spare=spare):
                    waited = time.monotonic() - asked
                    response = self.http.request(
                        method,
                        self.company_url + path,
                        params=query,
                        content=content,
                        headers={**headers, "Authorization": f"Bearer {token}"},
                    )
            except httpx.TransportError as transport_error:
                self._count(entity, operation, "transport_error", waited)
                failures += 1
                log.warning(
                    "QuickBooks call failed in transit (%s), attempt %d",
                    type(transport_error).__name__,
                    failures,
                    extra=context,
                )
                if failures > self.settings.server_error_retries:
                    raise UpstreamUnavailableError(
                        "QuickBooks did not answer",
                        detail=f"{method} {path}: {type(transport_error).__name__}",
                    ) from transport_error
                self._back_off(failures)
                continue
            tid = response.headers.get("intuit_tid")
            status = response.status_code
            self._count(entity, operation, str(status), waited)
            if status < 300:
                body = _json(response)
                if "Fault" in body:  # QuickBooks may put a Fault in a 200
                    raise self._error(response, context)
                if metered is not None:
                    self.budget.record_metered(self.realm_id, metered)
                if isinstance(body.get("time"), str):
                    self.last_server_time = body["time"]
                log.debug(
                    "QuickBooks %s %s -> %d", method, path, status, extra={**context, "intuit_tid": tid}
                )
                return body
            error = self._error(response, context)
            if status == 401 and not refreshed:
                refreshed = True
                token = self.tokens.after_unauthorized(self.connection_id, token)
                continue
            if isinstance(error, RateLimitedError):
                throttled += 1
                wait = error.retry_after if "retry-after" in response.headers else None
                wait = self.settings.throttle_penalty if wait is None else wait
                self.budget.penalize(self.realm_id, wait)
                if throttled > self.settings.throttle_retries:
                    raise RateLimitedError(
                        error.message, retry_after=wait, detail=error.detail, tid=error.tid
                    )
                continue
            if isinstance(error, NeedsReauthorizationError):
                # 403 (3100 / 120: the admin lost rights, the app lost the company) or a fresh token
                # refused again: Intuit says treat the connection as disconnected.
                self.tokens.mark_needs_reauth(self.connection_id, error.message)
                raise error
            if isinstance(error, UpstreamUnavailableError):
                failures += 1
                if failures > self.settings.server_error_retries:
                    raise error
                self._back_off(failures)
                continue
            raise error

    def _count(self, entity: str, operation: str, status: str, waited: float) -> None:
        if self.counters is not None:
            self.counters.add(request_counts(self.connection_id, entity, operation, status, waited))

    def _back_off(self, attempt: int) -> None:
        s = self.settings
        self._sleep(backoff_delay(attempt - 1, s.backoff_base_seconds, s.backoff_max_seconds, self._rand))

    def _error(self, response: httpx.Response, context: Mapping[str, Any]) -> LedgersyncError:
        error = faults.error_from_response(response.status_code, response.content, response.headers)
        log.warning(
            "QuickBooks answered %d: %s",
            response.status_code,
            type(error).__name__,
            extra={**context, "intuit_tid": error.tid, "status": response.status_code},
        )
        return error


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = jsontext.loads(response.content)
    except ValueError as error:
        raise UpstreamUnavailableError(
            "QuickBooks answered something other than JSON",
            detail=response.text[:200],
            tid=response.headers.get("intuit_tid"),
        ) from error
    return body if isinstance(body, dict) else {}


def _entity(body: Mapping[str, Any], entity_name: str) -> dict[str, Any]:
    found = body.get(entity_name)
    if not isinstance(found, dict):
        raise UpstreamUnavailableError(f"QuickBooks' answer carries no {entity_name}")
    return found
