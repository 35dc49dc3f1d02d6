"""A record's history on the console: a timeline a person can read (engine/timeline.py), and a search
by the record's id in the app or in QuickBooks."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from engine.history import record_history, record_label
from engine.model import EntityType, Side
from engine.timeline import timeline
from engine.web.conflicts import record_links
from engine.web.pages import Pages


def routes(pages: Pages) -> list[BaseRoute]:
    services = pages.services

    def search(request: Request) -> Response:
        params = request.query_params
        entity, record_id = params.get("entity", ""), params.get("id", "").strip()
        message = None
        if entity and record_id:
            try:
                kind = EntityType(entity)
            except ValueError:
                kind = None
            with services.store.session() as s:
                connections = {services.connection, *(c.id for c in s.list_connections())}
                link = next(
                    (
                        found
                        for connection in sorted(connections)
                        for side in (Side.APP, Side.QUICKBOOKS)
                        if kind is not None
                        and (found := s.find_link(connection, kind, side, record_id)) is not None
                    ),
                    None,
                )
            if link is not None:
                return RedirectResponse(f"/records/{link.id}", status_code=303)
            message = f"No {entity} with the id {record_id} in the app or in QuickBooks."
        context = {
            "entities": [e.value for e in EntityType],
            "entity": entity,
            "id": record_id,
            "error": message,
        }
        return pages.render(request, "history_search.html", context)

    def page(request: Request) -> Response:
        link_id = request.path_params["link_id"]
        with services.store.session() as s:
            link = s.get_link(link_id)
            if link is not None:
                label = record_label(s, link)
                entries = record_history(s, link, 500)
                conflicts = s.list_conflicts(link.connection, open_only=True, link_id=link.id)
        if link is None:
            return pages.render(request, "missing.html", {"what": "such record"}, 404)
        lines = timeline(entries, lambda name: pages.present.label(link.entity, name))
        item = {"entity": link.entity.value, "app_id": link.app_id, "quickbooks_id": link.quickbooks_id}
        context = {
            "link": link,
            "label": label,
            "lines": list(reversed(lines)),
            "open_conflicts": conflicts,
            "links": record_links(pages, item),
        }
        return pages.render(request, "history.html", context)

    return [Route("/history", search), Route("/records/{link_id:str}", page)]
