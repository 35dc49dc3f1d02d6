"""The conflict review queue: the list (grouped by record, filtered, bulk resolve), one conflict with its
values side by side, and the JSON API.

JSON: GET /api/conflicts[?all=1], GET /api/conflicts/{id} (each with `reason`, set when a side refused
the value: the name clash in words), POST /api/conflicts/{id}/resolve with {"take": "app"|"quickbooks"}
or {"value": <json>}, POST /api/conflicts/resolve with {"ids": [...], "take": ...}. Who resolved it is
the signed-in user; a script with the API token may name itself in "by" (recorded as unverified).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from engine.errors import ConfigurationError, LedgersyncError, NotFoundError, VersionConflictError
from engine.history import record_history, record_label
from engine.model import EntityType, Side
from engine.ports import StoreSession
from engine.refusals import refusal_reasons
from engine.resolve import Choice, resolve
from engine.state import Conflict, Link
from engine.timeline import timeline
from engine.web.conflict_list import AGES, Filters, choices, grouped
from engine.web.csrf import API_TOKEN, Caller, Refusal
from engine.web.pages import Pages, back_to, current_session

if TYPE_CHECKING:
    from engine.web.app import WebServices

#: Longest name a script may give itself (it lands in the audit trail and on every page that shows it).
MAX_NAME = 80
#: Most conflicts resolved by one bulk request.
MAX_BULK = 500


def routes(pages: Pages) -> list[BaseRoute]:
    return ConflictViews(pages).routes()


@dataclass(frozen=True)
class ConflictViews:
    pages: Pages

    @property
    def services(self) -> WebServices:
        return self.pages.services

    def listing(self, include_resolved: bool) -> list[dict[str, Any]]:
        with self.services.store.session() as s:
            found = s.list_conflicts(None, open_only=not include_resolved)
            links = s.get_links({c.link_id for c in found})
            return [as_json(c, links.get(c.link_id), s) for c in found]

    def one(self, conflict_id: int) -> tuple[dict[str, Any], list[Any]] | None:
        with self.services.store.session() as s:
            conflict = s.get_conflict(conflict_id)
            if conflict is None:
                return None
            link = s.get_link(conflict.link_id)
            entries = record_history(s, link, 200) if link else []
            return as_json(conflict, link, s), entries

    def do_resolve(self, conflict_id: int, choice: Choice, by: str) -> dict[str, Any]:
        with self.services.store.session() as s:
            found = s.get_conflict(conflict_id)
        # A tenant's conflict is resolved under its own policy (the directions its fields sync in). Read
        # in a transaction of its own: resolving takes the record's lock first thing.
        policy = self.services.policy_of(found.connection) if found else self.services.policy
        with self.services.store.session() as s:
            resolved = resolve(s, conflict_id, choice, by, policy, self.services.clock.now())
            return as_json(resolved, s.get_link(resolved.link_id), s)

    def bulk(self, ids: list[int], take: Side, by: str) -> tuple[int, list[str]]:
        done, problems = 0, []
        for conflict_id in ids[:MAX_BULK]:
            try:
                self.do_resolve(conflict_id, Choice(take=take), by)
                done += 1
            except (LedgersyncError, ValueError) as error:
                problems.append(f"#{conflict_id}: {error}")
        return done, problems

    def page_list(self, request: Request) -> Response:
        filters = Filters.from_query(request.query_params)
        items = self.listing(filters.include_resolved)
        now = self.services.clock.now()
        shown = [c for c in items if filters.keep(c, now)]
        context = {
            "groups": grouped(shown),
            "shown": len(shown),
            "total": len(items),
            "filters": filters,
            "ages": AGES,
            # What the list holds, and what the filters ask for (still shown once none is left).
            "entities": sorted({*choices(items, "entity"), filters.entity} - {""}),
            "fields": _field_choices(items, filters),
            "connections": sorted({*choices(items, "connection"), filters.connection} - {""}),
            "done": request.query_params.get("done"),
            "error": request.query_params.get("error"),
        }
        return self.pages.render(request, "conflicts.html", context)

    def page_one(self, request: Request) -> Response:
        conflict_id = int(request.path_params["conflict_id"])
        found = self.one(conflict_id)
        if found is None:
            return self.pages.render(request, "missing.html", {"what": f"conflict #{conflict_id}"}, 404)
        conflict, entries = found
        label = lambda name: self.pages.present.label(conflict["entity"], name)  # noqa: E731
        context = {
            "c": conflict,
            "lines": timeline(entries, label)[-12:],
            "hint": self.pages.present.hint(conflict["entity"], conflict["field"])
            if conflict["field"] != "_deleted"
            else "",
            "links": record_links(self.pages, conflict),
            "error": request.query_params.get("error"),
            "typed": request.query_params.get("typed", ""),
        }
        return self.pages.render(request, "conflict.html", context)

    async def page_resolve(self, request: Request) -> Response:
        conflict_id = int(request.path_params["conflict_id"])
        form = await request.form()
        refusal = self.pages.guard.check_form(request, str(form.get("token", "")))
        if refusal is not None:
            return self.pages.refused(request, refusal.message, f"/conflicts/{conflict_id}", refusal.status)
        session = current_session(request)
        assert session is not None  # the sign-in gate let only a session reach a page
        take, typed = str(form.get("take") or ""), str(form.get("value") or "")
        here = f"/conflicts/{conflict_id}"
        try:
            if take:
                choice = Choice(take=Side(take))
            else:
                found = self.one(conflict_id)
                if found is None:
                    raise NotFoundError(f"no conflict {conflict_id}")
                choice = Choice(value=self.pages.present.parse(found[0]["entity"], found[0]["field"], typed))
            self.do_resolve(conflict_id, choice, session.login)
        except (LedgersyncError, ValueError) as error:
            return back_to(here, error=str(error), typed=typed)
        return RedirectResponse(here, status_code=303)

    async def page_bulk(self, request: Request) -> Response:
        form = await request.form()
        back = "/conflicts" + (f"?{form['query']}" if form.get("query") else "")
        refusal = self.pages.guard.check_form(request, str(form.get("token", "")))
        if refusal is not None:
            return self.pages.refused(request, refusal.message, back, refusal.status)
        session = current_session(request)
        assert session is not None
        ids = [int(str(v)) for v in form.getlist("ids") if str(v).isdigit()]
        if not ids:
            return back_to(back, error="Tick the conflicts to resolve first.")
        try:
            take = Side(str(form.get("take")))
        except ValueError:
            return back_to(back, error="Choose which side's value to keep.")
        done, problems = self.bulk(ids, take, session.login)
        return back_to(back, done=str(done), error="; ".join(problems))

    def api_list(self, request: Request) -> Response:
        return JSONResponse(self.listing(request.query_params.get("all") == "1"))

    def api_one(self, request: Request) -> Response:
        found = self.one(int(request.path_params["conflict_id"]))
        if found is None:
            return JSONResponse({"error": "no such conflict"}, status_code=404)
        conflict, entries = found
        return JSONResponse({**conflict, "history": [e.model_dump(mode="json") for e in entries[-30:]]})

    async def api_resolve(self, request: Request) -> Response:
        conflict_id = int(request.path_params["conflict_id"])
        caller = self.pages.guard.check_json(request)
        if isinstance(caller, Refusal):
            return JSONResponse({"error": caller.message}, status_code=caller.status)
        try:
            body = await request.json()
            choice, name = _json_choice(body)
            return JSONResponse(self.do_resolve(conflict_id, choice, resolver(request, caller, name)))
        except NotFoundError as error:
            return JSONResponse({"error": str(error)}, status_code=404)
        except VersionConflictError as error:
            return JSONResponse({"error": str(error)}, status_code=409)
        except (ConfigurationError, LedgersyncError, ValueError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)

    async def api_bulk(self, request: Request) -> Response:
        caller = self.pages.guard.check_json(request)
        if isinstance(caller, Refusal):
            return JSONResponse({"error": caller.message}, status_code=caller.status)
        try:
            body = await request.json()
            if not isinstance(body, dict) or not isinstance(body.get("ids"), list):
                raise ValueError('send {"ids": [1, 2, ...], "take": "app"|"quickbooks"}')
            ids = [int(i) for i in body["ids"]]
            by = resolver(request, caller, _name(body))
            done, problems = self.bulk(ids, Side(str(body.get("take"))), by)
        except (ValueError, TypeError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        return JSONResponse({"resolved": done, "problems": problems})

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", lambda request: RedirectResponse("/conflicts")),
            Route("/conflicts", self.page_list),
            Route("/conflicts/bulk", self.page_bulk, methods=["POST"]),
            Route("/conflicts/{conflict_id:int}", self.page_one),
            Route("/conflicts/{conflict_id:int}/resolve", self.page_resolve, methods=["POST"]),
            Route("/api/conflicts", self.api_list),
            Route("/api/conflicts/resolve", self.api_bulk, methods=["POST"]),
            Route("/api/conflicts/{conflict_id:int}", self.api_one),
            Route("/api/conflicts/{conflict_id:int}/resolve", self.api_resolve, methods=["POST"]),
        ]


def record_links(pages: Pages, item: dict[str, Any]) -> dict[str, str]:
    """Where to open the record in QuickBooks and in the app (only those the configuration knows)."""
    found: dict[str, str] = {}
    url = pages.present.record_url
    if url is None:
        return found
    for side, key in ((Side.QUICKBOOKS, "quickbooks_id"), (Side.APP, "app_id")):
        if item.get(key):
            address = url(side, EntityType(item["entity"]), str(item[key]))
            if address:
                found[side.value] = address
    return found


def as_json(conflict: Conflict, link: Link | None, s: StoreSession) -> dict[str, Any]:
    data = conflict.model_dump(mode="json")
    data["app_id"] = link.app_id if link else None
    data["quickbooks_id"] = link.quickbooks_id if link else None
    data["label"] = record_label(s, link) if link else None
    # Why, when a side refused the value (a name another record holds): the clash, in words.
    data["reason"] = refusal_reasons(s, link, [conflict]).get(conflict.id) if link else None
    return data


def resolver(request: Request, caller: Caller, name: str) -> str:
    """Who resolved it, for the audit trail: the signed-in user; a script with the API token is recorded
    as such, with the name it gave itself marked unverified."""
    session = current_session(request)
    if caller is not API_TOKEN and session is not None:
        return session.login
    name = " ".join(name.split())
    if len(name) > MAX_NAME:
        raise ValueError(f"the script's name is longer than {MAX_NAME} characters")
    return f"{name} (API token, name not verified)" if name else "a script (API token)"


def _name(body: dict[str, Any]) -> str:
    by = body.get("by") or ""
    if not isinstance(by, str):
        raise ValueError('"by" must be a string (the script\'s name)')
    return by


def _field_choices(items: list[dict[str, Any]], filters: Filters) -> list[tuple[str, str]]:
    found = {(c["entity"], c["field"]) for c in items}
    if filters.field and filters.field not in {f for _, f in found}:
        found.add((filters.entity, filters.field))
    return sorted(found)


def _json_choice(body: Any) -> tuple[Choice, str]:
    if not isinstance(body, dict) or ("take" in body) == ("value" in body):
        raise ValueError('send {"take": "app"|"quickbooks"} or {"value": ...}')
    choice = Choice(take=Side(body["take"])) if "take" in body else Choice(value=body["value"])
    return choice, _name(body)
