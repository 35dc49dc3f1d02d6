"""The control API under /_emulator/: act as a human in QuickBooks, move time, inject faults, read the log."""

from __future__ import annotations

import copy
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.quickbooks.emulator import faults, records
from connectors.quickbooks.emulator.context import ENTITIES, NAME_LISTS, URL_NAMES
from connectors.quickbooks.emulator.emulator import Emulator
from connectors.quickbooks.emulator.responses import json_response

PREFIX = "/_emulator"


class ControlError(Exception):
    pass


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


def routes(emulator: Emulator) -> list[Route]:  # noqa: PLR0915 - one closure per endpoint
    ctx = emulator.ctx

    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                return json_response(await handler(request))
            except ControlError as exc:
                return json_response({"error": str(exc)}, 400)
            except ValueError as exc:
                return json_response({"error": str(exc)}, 400)
            except faults.QboFaultError as fault:
                return json_response({"Fault": fault.fault()}, fault.status)

        return endpoint

    async def info(request: Request) -> dict[str, Any]:
        cfg = emulator.config
        return {
            "base_url": str(request.base_url).rstrip("/"),
            "realm_id": cfg.realm_id,
            "client_id": cfg.client_id,
            "client_secret": cfg.client_secret,
            "verifier_token": cfg.verifier_token,
            "now": ctx.stamp(),
        }

    async def clock(request: Request) -> dict[str, Any]:
        return {"now": emulator.clock.now().isoformat(), "offset_seconds": emulator.clock.offset}

    async def advance(request: Request) -> dict[str, Any]:
        body = await _json(request)
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise ControlError("seconds must be a number")
        emulator.clock.advance(float(seconds))
        emulator.changed()
        return await clock(request)

    async def read(request: Request) -> dict[str, Any]:
        entity = _entity(request)
        with emulator.store.lock:
            return {entity: records.read(ctx, entity, request.path_params["entity_id"])}

    async def create(request: Request) -> dict[str, Any]:
        entity = _entity(request)
        body = await _json(request)
        with emulator.store.lock:
            result = records.create(ctx, entity, body)
        emulator.changed()
        return {entity: result}

    async def edit(request: Request) -> dict[str, Any]:
        entity = _entity(request)
        body = await _json(request)
        with emulator.store.lock:
            result = records.edit_as_user(ctx, entity, request.path_params["entity_id"], body)
        emulator.changed()
        return {entity: result}

    async def remove(request: Request) -> dict[str, Any]:
        entity = _entity(request)
        entity_id = request.path_params["entity_id"]
        with emulator.store.lock:
            if entity in NAME_LISTS:
                result = records.edit_as_user(ctx, entity, entity_id, {"Active": False})
            else:
                row = emulator.store.get(entity, entity_id)
                if row is None:
                    raise faults.not_found(deleted=emulator.store.is_deleted(entity, entity_id))
                result = records.remove(ctx, entity, row)
        emulator.changed()
        return {entity: result}

    async def disconnect(request: Request) -> dict[str, Any]:
        with emulator.store.lock:
            count = emulator.authority.disconnect(emulator.config.realm_id)
        emulator.changed()
        return {"revoked_grants": count}

    async def arm_fault(request: Request) -> dict[str, Any]:
        body = await _json(request)
        seconds = body.get("seconds")
        emulator.faults.arm(
            str(body.get("kind", "")),
            int(body.get("count", 1)),
            status=int(body.get("status", 503)),
            delay=float(body.get("delay", 0.0)),
            path_contains=str(body.get("path_contains", "")),
            seconds=None if seconds is None else float(seconds),
        )
        return await list_faults(request)

    async def list_faults(request: Request) -> dict[str, Any]:
        plan = emulator.faults
        return {"armed": plan.pending(), "fired": plan.fired(), "held": plan.held()}

    async def clear_faults(request: Request) -> dict[str, Any]:
        emulator.faults.clear()
        return await list_faults(request)

    async def list_records(request: Request) -> dict[str, Any]:
        entity = _entity(request)
        with emulator.store.lock:
            return {entity: [copy.deepcopy(row.data) for row in emulator.store.all(entity)]}

    async def request_log(request: Request) -> dict[str, Any]:
        return emulator.requests.summary(with_entries=request.query_params.get("entries") in ("1", "true"))

    async def clear_log(request: Request) -> dict[str, Any]:
        emulator.requests.clear()
        return emulator.requests.summary()

    async def webhooks(request: Request) -> dict[str, Any]:
        return {"pending": emulator.webhooks.pending(), "deliveries": list(emulator.webhooks.deliveries)}

    async def reset_throttle(request: Request) -> dict[str, Any]:
        emulator.throttle.reset()
        return {"reset": True}

    table: list[tuple[str, Any, str]] = [
        ("/info", info, "GET"),
        ("/clock", clock, "GET"),
        ("/clock/advance", advance, "POST"),
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
    return [Route(PREFIX + path, guarded(handler), methods=[method]) for path, handler, method in table]
