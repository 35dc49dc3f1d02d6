"""The control API under /_emulator/: act as a human in QuickBooks, move time, inject faults, read the log,
host more companies.

Each company's controls answer under `/_emulator/companies/{realm}/...`; the same paths right under
`/_emulator/` act on the default (first) company, as they did when the emulator hosted only that one.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.quickbooks.emulator import faults, records
from connectors.quickbooks.emulator.clock import format_stamp
from connectors.quickbooks.emulator.company import Company
from connectors.quickbooks.emulator.config import COMPANY_FIELDS
from connectors.quickbooks.emulator.context import ENTITIES, NAME_LISTS, URL_NAMES
from connectors.quickbooks.emulator.emulator import Emulator
from connectors.quickbooks.emulator.responses import json_response

PREFIX = "/_emulator"
COMPANY_PREFIX = PREFIX + "/companies/{realm}"

Answer = dict[str, Any]
Handler = Callable[[Request], Awaitable[Answer]]
CompanyHandler = Callable[[Request, Company], Awaitable[Answer]]


class ControlError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise ControlError(f"body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ControlError("body must be a JSON object")
    return body


def _entity(request: Request) -> str:
    name = request.path_params["entity"]
    entity = name if name in ENTITIES else URL_NAMES.get(name.lower())
    if entity is None:
        raise ControlError(f"unknown entity {name}")
    return entity


def _guarded(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return json_response(await handler(request))
        except ControlError as exc:
            return json_response({"error": str(exc)}, exc.status)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        except faults.QboFaultError as fault:
            return json_response({"Fault": fault.fault()}, fault.status)

    return endpoint


def describe(request: Request, emulator: Emulator, company: Company) -> Answer:
    """What a client needs to reach one company: its realm, its API address and the app's credentials."""
    base_url = str(request.base_url).rstrip("/")
    cfg = emulator.config
    return {
        "base_url": base_url,
        "realm_id": company.realm_id,
        "company_name": company.config.company_name,
        "company_url": f"{base_url}/v3/company/{company.realm_id}",
        "client_id": cfg.client_id,
        "client_secret": cfg.client_secret,
        "verifier_token": cfg.verifier_token,
        "now": format_stamp(emulator.clock.now(), company.config.tz),
    }


def routes(emulator: Emulator) -> list[Route]:
    def at_company(handler: CompanyHandler) -> Handler:
        async def scoped(request: Request) -> Answer:
            realm = request.path_params.get("realm")
            company = emulator.default if realm is None else emulator.companies.get(realm)
            if company is None:
                raise ControlError(f"the emulator hosts no company {realm}", 404)
            return await handler(request, company)

        return scoped

    out = [Route(PREFIX + path, _guarded(h), methods=[m]) for path, h, m in _emulator_table(emulator)]
    for path, handler, method in _company_table(emulator):
        endpoint = _guarded(at_company(handler))
        out.append(Route(PREFIX + path, endpoint, methods=[method]))
        out.append(Route(COMPANY_PREFIX + path, endpoint, methods=[method]))
    return out


def _emulator_table(emulator: Emulator) -> list[tuple[str, Handler, str]]:
    """What belongs to the whole emulator: the clock and the list of companies."""

    async def clock(request: Request) -> Answer:
        return {"now": emulator.clock.now().isoformat(), "offset_seconds": emulator.clock.offset}

    async def advance(request: Request) -> Answer:
        body = await _json(request)
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise ControlError("seconds must be a number")
        emulator.clock.advance(float(seconds))
        emulator.changed()
        return await clock(request)

    async def companies(request: Request) -> Answer:
        listed = list(emulator.companies.values())
        return {"companies": [describe(request, emulator, c) for c in listed]}

    async def add_company(request: Request) -> Answer:
        body = await _json(request)
        unknown = set(body) - set(COMPANY_FIELDS)
        if unknown:
            raise ControlError(f"unknown company settings: {', '.join(sorted(unknown))}")
        realm_id = body.pop("realm_id", None)
        if realm_id is not None and not isinstance(realm_id, str):
            raise ControlError("realm_id must be a string")
        company = emulator.add_company(realm_id, **body)
        emulator.changed()
        return describe(request, emulator, company)

    return [
        ("/clock", clock, "GET"),
        ("/clock/advance", advance, "POST"),
        ("/companies", companies, "GET"),
        ("/companies", add_company, "POST"),
    ]


def _company_table(emulator: Emulator) -> list[tuple[str, CompanyHandler, str]]:  # noqa: PLR0915
    """What each company has of its own: records, connection, faults, request log, webhooks, limits."""

    async def info(request: Request, company: Company) -> Answer:
        return describe(request, emulator, company)

    async def read(request: Request, company: Company) -> Answer:
        entity = _entity(request)
        with company.store.lock:
            return {entity: records.read(company.ctx, entity, request.path_params["entity_id"])}

    async def create(request: Request, company: Company) -> Answer:
        entity = _entity(request)
        body = await _json(request)
        with company.store.lock:
            result = records.create(company.ctx, entity, body)
        emulator.changed()
        return {entity: result}

    async def edit(request: Request, company: Company) -> Answer:
        entity = _entity(request)
        body = await _json(request)
        with company.store.lock:
            result = records.edit_as_user(company.ctx, entity, request.path_params["entity_id"], body)
        emulator.changed()
        return {entity: result}

    async def remove(request: Request, company: Company) -> Answer:
        entity = _entity(request)
        entity_id = request.path_params["entity_id"]
        store = company.store
        with store.lock:
            if entity in NAME_LISTS:
                result = records.edit_as_user(company.ctx, entity, entity_id, {"Active": False})
            else:
                row = store.get(entity, entity_id)
                if row is None:
                    raise faults.not_found(deleted=store.is_deleted(entity, entity_id))
                result = records.remove(company.ctx, entity, row)
        emulator.changed()
        return {entity: result}

    async def list_records(request: Request, company: Company) -> Answer:
        entity = _entity(request)
        with company.store.lock:
            return {entity: [copy.deepcopy(row.data) for row in company.store.all(entity)]}

    async def disconnect(request: Request, company: Company) -> Answer:
        with emulator.authority.lock:
            count = emulator.authority.disconnect(company.realm_id)
        emulator.changed()
        return {"revoked_grants": count}

    async def arm_fault(request: Request, company: Company) -> Answer:
        body = await _json(request)
        seconds = body.get("seconds")
        company.faults.arm(
            str(body.get("kind", "")),
            int(body.get("count", 1)),
            status=int(body.get("status", 503)),
            delay=float(body.get("delay", 0.0)),
            path_contains=str(body.get("path_contains", "")),
            seconds=None if seconds is None else float(seconds),
        )
        return await list_faults(request, company)

    async def list_faults(request: Request, company: Company) -> Answer:
        plan = company.faults
        return {"armed": plan.pending(), "fired": plan.fired(), "held": plan.held()}

    async def clear_faults(request: Request, company: Company) -> Answer:
        company.faults.clear()
        return await list_faults(request, company)

    def log_scope(request: Request, company: Company) -> str | None:
        """The default company's log at /_emulator/requests is the whole emulator's, as it always was."""
        return company.realm_id if "realm" in request.path_params else None

    async def request_log(request: Request, company: Company) -> Answer:
        entries = request.query_params.get("entries") in ("1", "true")
        return emulator.requests.summary(with_entries=entries, realm=log_scope(request, company))

    async def clear_log(request: Request, company: Company) -> Answer:
        emulator.requests.clear(log_scope(request, company))
        return emulator.requests.summary(realm=log_scope(request, company))

    async def webhooks(request: Request, company: Company) -> Answer:
        queue = company.webhooks
        return {"pending": queue.pending(), "deliveries": list(queue.deliveries)}

    async def reset_throttle(request: Request, company: Company) -> Answer:
        company.throttle.reset()
        return {"reset": True}

    return [
        ("/info", info, "GET"),
        ("/records/{entity}", list_records, "GET"),
        ("/records/{entity}", create, "POST"),
        ("/records/{entity}/{entity_id}", read, "GET"),
        ("/records/{entity}/{entity_id}", edit, "POST"),
        ("/records/{entity}/{entity_id}", remove, "DELETE"),
        ("/disconnect", disconnect, "POST"),
        ("/faults", arm_fault, "POST"),
        ("/faults", list_faults, "GET"),
        ("/faults", clear_faults, "DELETE"),
        ("/requests", request_log, "GET"),
        ("/requests", clear_log, "DELETE"),
        ("/webhooks", webhooks, "GET"),
        ("/throttle/reset", reset_throttle, "POST"),
    ]
