"""The conflict review queue on the web: a list, one conflict side by side with a form, and a JSON API.

JSON: GET /api/conflicts[?all=1], GET /api/conflicts/{id} (each with `reason`, set when a side refused
the value: the name clash in words), POST /api/conflicts/{id}/resolve with
{"take": "app"|"quickbooks"} or {"value": <json>}, and optionally {"by": "name"}. Every POST proves it
comes from our own page or a script holding the API token (engine/web/csrf.py). There is no login yet,
so "by" is recorded as given, marked unverified and with the way the request proved itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.templating import Jinja2Templates

from engine.errors import ConfigurationError, LedgersyncError, NotFoundError, VersionConflictError
from engine.history import record_history, record_label
from engine.model import Side
from engine.ports import StoreSession
from engine.refusals import refusal_reasons
from engine.resolve import Choice, resolve
from engine.state import Conflict, Link
from engine.web.csrf import WEB_FORM, Caller, Guard, Refusal

if TYPE_CHECKING:
    from engine.web.app import WebServices

templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))


#: Longest reviewer name kept (it lands in the audit trail and on every page that shows the conflict).
MAX_NAME = 80


def routes(services: WebServices, guard: Guard) -> list[BaseRoute]:
    def listing(include_resolved: bool) -> list[dict[str, Any]]:
        with services.store.session() as s:
            found = s.list_conflicts(services.connection, open_only=not include_resolved)
            return [as_json(c, s.get_link(c.link_id), s) for c in found]

    def one(conflict_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        with services.store.session() as s:
            conflict = s.get_conflict(conflict_id)
            if conflict is None or conflict.connection != services.connection:
                return None
            link = s.get_link(conflict.link_id)
            history = [e.model_dump(mode="json") for e in record_history(s, link, 30)] if link else []
            return as_json(conflict, link, s), history

    def do_resolve(conflict_id: int, choice: Choice, by: str) -> dict[str, Any]:
        with services.store.session() as s:
            resolved = resolve(s, conflict_id, choice, by, services.policy, services.clock.now())
            return as_json(resolved, s.get_link(resolved.link_id), s)

    def page_list(request: Request) -> Response:
        items = listing(request.query_params.get("all") == "1")
        return templates.TemplateResponse(request, "conflicts.html", {"conflicts": items})

    def page_one(request: Request) -> Response:
        conflict_id = int(request.path_params["conflict_id"])
        found = one(conflict_id)
        if found is None:
            return templates.TemplateResponse(
                request, "missing.html", {"conflict_id": conflict_id}, status_code=404
            )
        conflict, history = found
        token, nonce = guard.page_token(request)
        context = {
            "c": conflict,
            "history": history,
            "token": token,
            "error": request.query_params.get("error"),
        }
        response = templates.TemplateResponse(request, "conflict.html", context)
        guard.set_cookie(request, response, nonce)
        return response

    async def page_resolve(request: Request) -> Response:
        conflict_id = int(request.path_params["conflict_id"])
        form = await request.form()
        refusal = guard.check_form(request, str(form.get("token", "")))
        if refusal is not None:
            context = {"message": refusal.message, "back": f"/conflicts/{conflict_id}"}
            return templates.TemplateResponse(request, "refused.html", context, status_code=refusal.status)
        take, value = form.get("take"), form.get("value")
        try:
            by = reviewer(str(form.get("by") or ""), WEB_FORM)
            choice = Choice(take=Side(str(take))) if take else Choice(value=_parse(str(value or "")))
            do_resolve(conflict_id, choice, by)
        except (LedgersyncError, ValueError) as error:
            return RedirectResponse(f"/conflicts/{conflict_id}?error={_quote(str(error))}", status_code=303)
        return RedirectResponse(f"/conflicts/{conflict_id}", status_code=303)

    def api_list(request: Request) -> Response:
        return JSONResponse(listing(request.query_params.get("all") == "1"))

    def api_one(request: Request) -> Response:
        found = one(int(request.path_params["conflict_id"]))
        if found is None:
            return JSONResponse({"error": "no such conflict"}, status_code=404)
        conflict, history = found
        return JSONResponse({**conflict, "history": history})

    async def api_resolve(request: Request) -> Response:
        conflict_id = int(request.path_params["conflict_id"])
        caller = guard.check_json(request)
        if isinstance(caller, Refusal):
            return JSONResponse({"error": caller.message}, status_code=caller.status)
        try:
            choice, by = _json_choice(await request.json())
            return JSONResponse(do_resolve(conflict_id, choice, reviewer(by, caller)))
        except NotFoundError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        except VersionConflictError as error:
            return JSONResponse({"error": str(error)}, status_code=409)
        except (ConfigurationError, LedgersyncError, ValueError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)

    return [
        Route("/", lambda request: RedirectResponse("/conflicts")),
        Route("/conflicts", page_list),
        Route("/conflicts/{conflict_id:int}", page_one),
        Route("/conflicts/{conflict_id:int}/resolve", page_resolve, methods=["POST"]),
        Route("/api/conflicts", api_list),
        Route("/api/conflicts/{conflict_id:int}", api_one),
        Route("/api/conflicts/{conflict_id:int}/resolve", api_resolve, methods=["POST"]),
    ]


def as_json(conflict: Conflict, link: Link | None, s: StoreSession) -> dict[str, Any]:
    data = conflict.model_dump(mode="json")
    data["app_id"] = link.app_id if link else None
    data["quickbooks_id"] = link.quickbooks_id if link else None
    data["label"] = record_label(s, link) if link else None
    # Why, when a side refused the value (a name another record holds): the clash, in words.
    data["reason"] = refusal_reasons(s, link, [conflict]).get(conflict.id) if link else None
    return data


def _json_choice(body: Any) -> tuple[Choice, str]:
    if not isinstance(body, dict) or ("take" in body) == ("value" in body):
        raise ValueError('send {"take": "app"|"quickbooks"} or {"value": ...}')
    choice = Choice(take=Side(body["take"])) if "take" in body else Choice(value=body["value"])
    by = body.get("by") or ""
    if not isinstance(by, str):
        raise ValueError('"by" must be a string (the reviewer\'s name)')
    return choice, by


def reviewer(name: str, caller: Caller) -> str:
    """Who resolved it, for the audit trail: the name as given, marked unverified (there is no login
    yet), and how the request proved itself."""
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise ValueError(f"the reviewer's name is longer than {MAX_NAME} characters")
    if not name:
        return f"anonymous ({caller.channel})"
    return f"{name} ({caller.channel}, name not verified)"


def _parse(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text[:300])
