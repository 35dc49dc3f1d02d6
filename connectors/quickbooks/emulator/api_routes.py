"""The Accounting API under /v3/company/{realmId}/: auth, the company, its throttling and requestid
replays, then the operation on its records."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.quickbooks.emulator import batch, cdc, faults, query, records
from connectors.quickbooks.emulator.company import Company
from connectors.quickbooks.emulator.context import URL_NAMES, Context
from connectors.quickbooks.emulator.emulator import Emulator
from connectors.quickbooks.emulator.requestlog import CORE, CORE_PLUS, LoggedRequest, Write, changed_fields
from connectors.quickbooks.emulator.responses import fault_response, json_response, with_time
from connectors.quickbooks.emulator.store import JsonDict
from engine import jsontext

logger = logging.getLogger(__name__)
SPECIAL = ("query", "cdc", "batch")


def _classify(method: str, resource: str) -> tuple[str, str]:
    """(endpoint name for the request log, metered class)."""
    if resource in SPECIAL:
        return resource, CORE_PLUS
    if method == "GET":
        return f"GET {resource}", CORE_PLUS
    return f"{method} {resource}", CORE


def routes(emulator: Emulator) -> list[Route]:
    async def api(request: Request) -> Response:
        realm = request.path_params["realm"]
        resource = request.path_params["resource"].lower()
        endpoint, metered = _classify(request.method, resource)
        response = await _guarded(emulator, request, realm, resource)
        write = getattr(request.state, "write", None) or Write()
        emulator.requests.record(
            LoggedRequest(
                request.method,
                request.url.path,
                endpoint,
                metered,
                response.status_code,
                record=write.record,
                changed=write.changed if response.status_code == 200 else None,
                replayed=write.replayed,
                realm=realm,
            )
        )
        return response

    path = "/v3/company/{realm}/{resource}"
    return [
        Route(path, api, methods=["GET", "POST"]),
        Route(path + "/{entity_id}", api, methods=["GET", "POST"]),
    ]


def _unauthorized(emulator: Emulator, detail: str) -> Response:
    epoch_ms = int(emulator.clock.timestamp() * 1000)
    return json_response(
        faults.authentication_body(detail, epoch_ms),
        401,
        {"www-authenticate": faults.WWW_AUTHENTICATE},
    )


async def _guarded(emulator: Emulator, request: Request, realm: str, resource: str) -> Response:
    header = request.headers.get("authorization", "")
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else None
    token_realm, detail = emulator.authority.authenticate(bearer)
    if token_realm is None:
        return _unauthorized(emulator, detail)
    company = emulator.companies.get(realm)
    if company is None and emulator.config.unknown_realm_fault == "not_found":
        return fault_response(emulator, faults.no_resource(request.url.path))
    if company is None or token_realm != realm:
        # A token is bound to the company that granted it: any other realm, hosted or not, is one
        # the app is not authorized for.
        return fault_response(company or emulator, faults.forbidden())
    if company.faults.take("rate_limit", request.url.path) is not None:
        return fault_response(company, faults.throttled())
    if not company.throttle.admit(realm, is_batch=resource == "batch"):
        return fault_response(company, faults.throttled())
    client = f"{request.client.host}:{request.client.port}" if request.client else ""
    try:
        latency = company.faults.take("latency", request.url.path)
        if latency is not None:
            with company.faults.holding("latency", client, request.url.path):
                await asyncio.sleep(latency.delay)
        broken = company.faults.take("server_error", request.url.path)
        if broken is not None:
            injected = faults.system_error("Injected upstream failure", status=broken.status)
            return fault_response(company, injected)
        response = await _replayed_or_run(emulator, company, request, resource)
        if request.method == "POST" and response.status_code < 500:
            late = company.faults.take("timeout_after_commit", request.url.path)
            if late is not None:
                # The write is committed; the client gives up waiting (or is killed meanwhile).
                with company.faults.holding("timeout_after_commit", client, request.url.path):
                    await asyncio.sleep(late.delay)
        return response
    finally:
        company.throttle.release(realm)


async def _replayed_or_run(emulator: Emulator, company: Company, request: Request, resource: str) -> Response:
    ctx = company.ctx
    raw = await request.body()
    request_id = request.query_params.get("requestid")
    key = None
    if request.method == "POST" and request_id:
        try:
            key = _replay_key(company, resource, request_id, raw)
        except faults.QboFaultError as fault:
            return fault_response(ctx, fault)
        with ctx.store.lock:
            stored = company.replays.get(key)
        if stored is not None:
            status, stored_body = stored
            request.state.write = Write(replayed=True)
            return Response(stored_body, status_code=status, media_type="application/json;charset=UTF-8")
    entity = URL_NAMES.get(resource) if request.method == "POST" else None
    with ctx.store.lock:
        try:
            before = _target(ctx, entity, raw)
            result = _dispatch(ctx, request, resource, raw)
            if entity is not None:
                request.state.write = _write_of(ctx, entity, before, result)
            body = with_time(ctx, result)
            response = json_response(body)
        except faults.QboFaultError as fault:
            response = fault_response(ctx, fault)
        except Exception:
            logger.exception("emulator bug answering %s %s", request.method, request.url.path)
            response = fault_response(ctx, faults.system_error("Unexpected emulator error", status=500))
        if key is not None and response.status_code < 500:
            company.replays[key] = (response.status_code, bytes(response.body))
    if request.method == "POST":
        emulator.changed()
    return response


def _target(ctx: Context, entity: str | None, raw: bytes) -> tuple[str, JsonDict | None] | None:
    """The record a single-entity POST names (its Id and current data), before the write runs."""
    if entity is None:
        return None
    try:
        sent = jsontext.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    entity_id = str(sent.get("Id") or "").strip() if isinstance(sent, dict) else ""
    return (entity_id, ctx.store.snapshot(entity, entity_id)) if entity_id else None


def _write_of(
    ctx: Context, entity: str, before: tuple[str, JsonDict | None] | None, result: dict[str, Any]
) -> Write:
    """What a successful single-entity write did to its record, for the request log."""
    entity_id = before[0] if before else str(result.get(entity, {}).get("Id", ""))
    after = ctx.store.snapshot(entity, entity_id)
    return Write(record=f"{entity} {entity_id}", changed=changed_fields(before[1] if before else None, after))


def _replay_key(company: Company, resource: str, request_id: str, raw: bytes) -> str:
    cfg = company.config
    realm = company.realm_id
    limit = cfg.batch_requestid_max_length if resource == "batch" else cfg.requestid_max_length
    if len(request_id) > limit:
        raise faults.business(
            f"You cannot enter more than {limit} characters in the request_id field. "
            f"You tried entering {request_id}, which is {len(request_id)} characters."
        )
    if resource != "batch":
        return f"{realm}|{request_id}"
    try:
        bids = batch.bids(jsontext.loads(raw))
    except (ValueError, UnicodeDecodeError):
        bids = []
    too_long = [b for b in bids if len(b) > cfg.batch_bid_max_length]
    if too_long:
        raise faults.business(
            f"With a requestid, a bId may have at most {cfg.batch_bid_max_length} characters: {too_long[0]}"
        )
    return f"{realm}|{request_id}|{','.join(bids)}"


def _json_body(raw: bytes, entity: str) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise faults.unsupported("Request body is not valid UTF-8.") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise faults.invalid_property(
            f"Property Name:Can not parse the {entity} body specified is unsupported or invalid ({exc.msg})"
        ) from None


def _dispatch(ctx: Context, request: Request, resource: str, raw: bytes) -> dict[str, Any]:
    params = request.query_params
    entity_id = request.path_params.get("entity_id")
    if resource == "query":
        text = params.get("query") if request.method == "GET" else raw.decode("utf-8", errors="replace")
        if not text:
            raise faults.query_parse("Encountered <EOF>: the query is empty.")
        return {"QueryResponse": query.run(ctx, text)}
    if resource == "cdc":
        return cdc.run(ctx, params.get("entities"), params.get("changedSince"))
    if resource == "batch":
        if request.method != "POST":
            raise faults.unsupported("Batch needs a POST.")
        return batch.run(ctx, _json_body(raw, "BatchItemRequest"))
    entity = URL_NAMES.get(resource)
    if entity is None:
        raise faults.QboFaultError(
            "10000",
            "An application error has occurred while processing your request",
            f"System Failure Error: Unsupported resource {resource}",
            fault_type="SystemFault",
        )
    if request.method == "GET":
        if entity_id is None:
            raise faults.unsupported(f"Operation GET without an Id is not supported for {entity}; use query.")
        return {entity: records.read(ctx, entity, entity_id)}
    if entity_id is not None:
        raise faults.unsupported(f"Operation {entity_id} is not supported for {entity}.")
    body = _json_body(raw, entity)
    operation = (params.get("operation") or "").lower()
    include = (params.get("include") or "").lower()
    if operation == "delete":
        return {entity: records.delete(ctx, entity, body)}
    if operation == "void" or (operation == "update" and include == "void"):
        return {entity: records.void(ctx, entity, body)}
    if operation not in ("", "create", "update"):
        raise faults.invalid_enum(operation)
    return {entity: records.save(ctx, entity, body)}
