"""The conflict review queue on the web: a list, one conflict side by side with a form, and a JSON API.

JSON: GET /api/conflicts[?all=1], GET /api/conflicts/{id}, POST /api/conflicts/{id}/resolve with
{"take": "app"|"quickbooks"} or {"value": <json>}, and optionally {"by": "name"}.
"""

from __future__ import annotations

import hashlib
import hmac
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
from engine.resolve import Choice, resolve
from engine.state import Conflict, Link

if TYPE_CHECKING:
    from engine.web.app import WebServices

templates = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))


def routes(services: WebServices) -> list[BaseRoute]:
    def token(conflict_id: int) -> str:
        return hmac.new(services.form_secret, f"resolve:{conflict_id}".encode(), hashlib.sha256).hexdigest()

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
        context = {
            "c": conflict,
            "history": history,
            "token": token(conflict_id),
            "error": request.query_params.get("error"),
        }
        return templates.TemplateResponse(request, "conflict.html", context)

    async def page_resolve(request: Request) -> Response:
        conflict_id = int(request.path_params["conflict_id"])
        form = await request.form()
        if not hmac.compare_digest(str(form.get("token", "")), token(conflict_id)):
            return Response("stale or forged form; reload the page", status_code=403)
        take, value = form.get("take"), form.get("value")
        by = str(form.get("by") or "web")
        try:
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
        try:
            body = await request.json()
            if not isinstance(body, dict) or ("take" in body) == ("value" in body):
                raise ValueError('send {"take": "app"|"quickbooks"} or {"value": ...}')
            choice = Choice(take=Side(body["take"])) if "take" in body else Choice(value=body["value"])
            return JSONResponse(do_resolve(conflict_id, choice, str(body.get("by") or "api")))
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
    return data


def _parse(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text[:300])
