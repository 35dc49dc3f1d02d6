"""Parked work on the console: each op a side refused and each record that could not be read, why, in
words, what to do, and Retry and Skip buttons (the same actions as `ledgersync parked`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.errors import LedgersyncError
from engine.parking import parked, retry_op, retry_record, skip_op, skip_record
from engine.web.pages import Pages, back_to, current_session


def routes(pages: Pages) -> list[BaseRoute]:
    services = pages.services

    def connections() -> list[str]:
        with services.store.session() as s:
            return sorted({services.connection, *(c.id for c in s.list_connections())})

    def page(request: Request) -> Response:
        names = connections()
        with services.store.session() as s:
            items = [item for connection in names for item in parked(s, connection)]
        context = {
            "items": sorted(items, key=lambda i: i.since),
            "done": request.query_params.get("done"),
            "error": request.query_params.get("error"),
        }
        return pages.render(request, "parked.html", context)

    async def act(request: Request) -> Response:
        form = await request.form()
        refusal = pages.guard.check_form(request, str(form.get("token", "")))
        if refusal is not None:
            return pages.refused(request, refusal.message, "/parked", refusal.status)
        session = current_session(request)
        assert session is not None
        action, kind = request.path_params["action"], str(form.get("kind"))
        item, connection = str(form.get("id") or ""), str(form.get("connection") or services.connection)
        now = services.clock.now()
        try:
            with services.store.session() as s:
                if kind == "op" and action == "retry":
                    retry_op(s, item, session.login, now)
                    done = "Sent again: it is written at the next sync."
                elif kind == "op":
                    skip_op(s, item, session.login, now)
                    done = "Skipped: this change will not be sent."
                elif action == "retry":
                    retry_record(s, connection, item, now)
                    done = "It is read again first thing at the next sync."
                else:
                    skip_record(s, connection, item, session.login, now)
                    done = "Removed from the list until the record changes again."
        except LedgersyncError as error:
            return back_to("/parked", error=str(error))
        return back_to("/parked", done=done)

    return [
        Route("/parked", page),
        Route("/parked/{action:str}", act, methods=["POST"]),
    ]
