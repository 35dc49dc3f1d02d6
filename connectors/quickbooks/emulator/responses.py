"""Building HTTP answers: JSON bodies, the `time` stamp, Fault answers and the `intuit_tid` header."""

from __future__ import annotations

import secrets
from typing import Any, Protocol

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.quickbooks.emulator.clock import EmulatorClock, format_response_time
from connectors.quickbooks.emulator.config import EmulatorConfig
from connectors.quickbooks.emulator.faults import QboFaultError
from engine import jsontext

JSON_TYPE = "application/json;charset=UTF-8"


class Timed(Protocol):
    """Whatever knows the time and the company's settings: a rules `Context`, a `Company`, the emulator."""

    @property
    def clock(self) -> EmulatorClock: ...

    @property
    def config(self) -> EmulatorConfig: ...


def new_tid() -> str:
    return f"1-{secrets.token_hex(4)}-{secrets.token_hex(12)}"


def json_bytes(body: Any) -> bytes:
    return jsontext.dumps(body)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(json_bytes(body), status_code=status, media_type=JSON_TYPE, headers=headers)


def with_time(ctx: Timed, body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "time": format_response_time(ctx.clock.now(), ctx.config.tz)}


def fault_response(ctx: Timed, fault: QboFaultError) -> Response:
    headers: dict[str, str] = {}
    if fault.status == 429 and ctx.config.retry_after_header is not None:
        headers["Retry-After"] = str(ctx.config.retry_after_header)
    return json_response(with_time(ctx, {"Fault": fault.fault()}), fault.status, headers)


class TidMiddleware:
    """Adds an `intuit_tid` header to every response, as Intuit does on successes and errors alike."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tid = new_tid()

        async def send_with_tid(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"intuit_tid" for name, _ in headers):
                    headers.append((b"intuit_tid", tid.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_tid)
