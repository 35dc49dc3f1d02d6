"""The one table that turns QuickBooks faults and HTTP statuses into the engine's error tree.

    what QuickBooks answered                          error                        runner does
    ------------------------------------------------  ---------------------------  ------------------------
    OAuth body {"error": "invalid_grant"}             NeedsReauthorizationError    park ops, ask to reconnect
    OAuth body {"error": "invalid_client"}            ConfigurationError           fix client id / secret
    401, fault 3200 / 100, type AUTHENTICATION        AuthenticationFailedError    refresh once, retry once
    429, fault 3001 / 003001, "ThrottleExceeded"      RateLimitedError             wait Retry-After, else 60 s
    403, fault 3100 / 120                             NeedsReauthorizationError    park ops, ask to reconnect
    5xx, SystemFault 10000                            UpstreamUnavailableError     back off, same requestid
    fault 5010 (stale SyncToken)                      VersionConflictError         re-read, re-reconcile
    fault 6240 (duplicate name)                       DuplicateNameError           per policy: suffix, link
    2020, 6000, 2500, 610, 6140, 6100, any other      RecordRejectedError          park the record, show it
      ValidationFault, and any other 4xx                (code = QuickBooks' code)

Throttling is recognised by body as well as status: the 003001 fault has been seen under other statuses.
Parsing accepts the `Fault` envelope, the lowercase `fault` body of 401s, XML and non-JSON bodies.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from html import unescape
from typing import Any

from engine.errors import (
    ConfigurationError,
    DuplicateNameError,
    LedgersyncError,
    NeedsReauthorizationError,
    RateLimitedError,
    RecordRejectedError,
    UpstreamUnavailableError,
    VersionConflictError,
)

#: Intuit's instruction after a 429 when no Retry-After comes with it.
DEFAULT_RETRY_AFTER = 60.0
_EXISTING_ID = re.compile(r"\bId\s*=\s*(\w+)")
_XML_ERROR = re.compile(r"<Error\b[^>]*?\bcode=\"([^\"]*)\"[^>]*>(.*?)</Error>", re.DOTALL)
_XML_FAULT_TYPE = re.compile(r"<Fault\b[^>]*?\btype=\"([^\"]*)\"")
_SNIPPET = 200


class AuthenticationFailedError(NeedsReauthorizationError):
    """QuickBooks refused the access token (401): refresh it once and retry the call once.

    A NeedsReauthorizationError, so if it escapes the client (the refresh failed too) the runner parks the
    connection's ops exactly as for a revoked grant.
    """


@dataclass(frozen=True)
class Fault:
    """One error of a QuickBooks fault, whatever the envelope's spelling."""

    code: str
    message: str
    detail: str
    element: str
    type: str

    @property
    def number(self) -> str:
        """The code without leading zeros ("003001" and "3001" are the same fault)."""
        return self.code.lstrip("0") or self.code

    @property
    def text(self) -> str:
        """QuickBooks' own words: Message and Detail, without Detail repeating Message."""
        if not self.detail:
            return self.message or f"QuickBooks fault {self.code}"
        if not self.message or self.detail.startswith(self.message):
            return self.detail
        return f"{self.message}: {self.detail}"


Make = Callable[[list[Fault], str | None, Mapping[str, str]], LedgersyncError]


def _joined(faults: list[Fault]) -> str:
    return " | ".join(f.text for f in faults) or "QuickBooks refused the request"


def _rejected(faults: list[Fault], tid: str | None, headers: Mapping[str, str]) -> LedgersyncError:
    first = faults[0]
    element = f"element={first.element}" if first.element else None
    return RecordRejectedError(_joined(faults), code=first.code, detail=element, tid=tid)


def _version_conflict(faults: list[Fault], tid: str | None, headers: Mapping[str, str]) -> LedgersyncError:
    return VersionConflictError(_joined(faults), tid=tid)


def _duplicate_name(faults: list[Fault], tid: str | None, headers: Mapping[str, str]) -> LedgersyncError:
    fault = next(f for f in faults if f.number == "6240")
    # Recent QuickBooks appends "Id=<holder>"; the documented text has no id (the holder may be a vendor).
    match = _EXISTING_ID.search(fault.detail)
    return DuplicateNameError(
        _joined(faults), code=fault.code, existing_id=match.group(1) if match else None, tid=tid
    )


def _rate_limited(faults: list[Fault], tid: str | None, headers: Mapping[str, str]) -> LedgersyncError:
    return RateLimitedError(_joined(faults), retry_after=retry_after(headers), tid=tid)


def _authentication(faults: list[Fault], tid: str | None, headers: Mapping[str, str]) -> LedgersyncError:
    return AuthenticationFailedError(_joined(faults), detail=_header(headers, "www-authenticate"), tid=tid)


def _authorization(faults: list[Fault], tid: str | None, headers: Mapping[str, str]) -> LedgersyncError:
    return NeedsReauthorizationError(_joined(faults), tid=tid)


def _unavailable(faults: list[Fault], tid: str | None, headers: Mapping[str, str]) -> LedgersyncError:
    return UpstreamUnavailableError(_joined(faults), retry_after=_seconds(headers), tid=tid)


#: Fault codes (without leading zeros), in priority order: the first that any error carries decides.
BY_CODE: dict[str, Make] = {
    "3200": _authentication,
    "100": _authentication,
    "3001": _rate_limited,
    "3100": _authorization,
    "120": _authorization,
    "5010": _version_conflict,
    "6240": _duplicate_name,
    "10000": _unavailable,
    # Listed to document them; every other ValidationFault code is rejected the same way.
    "2020": _rejected,
    "6000": _rejected,
    "2500": _rejected,
    "610": _rejected,
    "6140": _rejected,
    "6100": _rejected,
}
#: HTTP statuses that decide before any fault code does.
BY_STATUS: dict[int, Make] = {401: _authentication, 429: _rate_limited, 403: _authorization}
#: Fault types that decide when no code is known.
BY_TYPE: dict[str, Make] = {
    "authentication": _authentication,
    "authenticationfault": _authentication,
    "authorizationfault": _authorization,
    "systemfault": _unavailable,
}


def error_from_response(
    status: int,
    body: bytes | str | Mapping[str, Any] | None,
    headers: Mapping[str, str],
    tid: str | None = None,
) -> LedgersyncError:
    """The engine error for a failed QuickBooks API (or OAuth) response.

    `tid` defaults to the response's `intuit_tid` header.
    """
    tid = tid or _header(headers, "intuit_tid")
    parsed, raw_text = _parse(body)
    oauth = _oauth_error(parsed, tid)
    if oauth is not None:
        return oauth
    faults = _faults(parsed) if parsed is not None else _xml_faults(raw_text)
    if not faults:
        snippet = " ".join(raw_text.split())[:_SNIPPET]
        faults = [Fault(f"http_{status}", f"QuickBooks answered HTTP {status}", snippet, "", "")]
    if _throttled(faults):
        return _rate_limited(faults, tid, headers)
    if status in BY_STATUS:
        return BY_STATUS[status](faults, tid, headers)
    if status >= 500:
        return _unavailable(faults, tid, headers)
    return _decide(faults, tid, headers)


def error_from_fault(fault: Mapping[str, Any], tid: str | None = None) -> LedgersyncError:
    """The engine error for one `Fault` object, as a batch item carries it (batch responses are 200s)."""
    faults = _faults({"Fault": fault})
    if not faults:
        faults = [Fault("unknown", "QuickBooks reported a fault without errors", "", "", "")]
    if _throttled(faults):
        return _rate_limited(faults, tid, {})
    return _decide(faults, tid, {})


def retry_after(headers: Mapping[str, str]) -> float:
    """Seconds to wait after a 429: Retry-After (seconds or an HTTP date against `Date`), else 60."""
    seconds = _seconds(headers)
    return DEFAULT_RETRY_AFTER if seconds is None else seconds


def _decide(faults: list[Fault], tid: str | None, headers: Mapping[str, str]) -> LedgersyncError:
    numbers = {f.number for f in faults}
    for code, make in BY_CODE.items():
        if code in numbers:
            return make(faults, tid, headers)
    for fault in faults:
        if (make_by_type := BY_TYPE.get(fault.type.casefold())) is not None:
            return make_by_type(faults, tid, headers)
    return _rejected(faults, tid, headers)


def _throttled(faults: list[Fault]) -> bool:
    return any(f.number == "3001" or "throttleexceeded" in f"{f.message} {f.type}".casefold() for f in faults)


def _parse(body: bytes | str | Mapping[str, Any] | None) -> tuple[Mapping[str, Any] | None, str]:
    if body is None:
        return None, ""
    if isinstance(body, Mapping):
        return body, ""
    raw = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        parsed = json.loads(raw)
    except ValueError:
        return None, raw
    return (parsed, raw) if isinstance(parsed, Mapping) else (None, raw)


def _get(mapping: Mapping[str, Any], key: str) -> Any:
    """A key in either spelling: QuickBooks capitalizes (`Fault`, `Error`), its 401 bodies do not."""
    value = mapping.get(key)
    return mapping.get(key[0].swapcase() + key[1:]) if value is None else value


def _str(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _faults(parsed: Mapping[str, Any]) -> list[Fault]:
    envelope = _get(parsed, "Fault")
    if not isinstance(envelope, Mapping):
        return []
    fault_type = _str(_get(envelope, "type"))
    errors = _get(envelope, "Error")
    if isinstance(errors, Mapping):
        errors = [errors]
    return [
        Fault(
            code=_str(_get(error, "code")) or "unknown",
            message=_str(_get(error, "Message")),
            detail=_str(_get(error, "Detail")),
            element=_str(_get(error, "element")),
            type=fault_type,
        )
        for error in (errors if isinstance(errors, list) else [])
        if isinstance(error, Mapping)
    ]


def _xml_faults(raw: str) -> list[Fault]:
    type_match = _XML_FAULT_TYPE.search(raw)
    fault_type = type_match.group(1) if type_match else ""

    def tag(name: str, inner: str) -> str:
        found = re.search(rf"<{name}>(.*?)</{name}>", inner, re.DOTALL)
        return unescape(found.group(1)).strip() if found else ""

    return [
        Fault(code, tag("Message", inner), tag("Detail", inner), "", fault_type)
        for code, inner in _XML_ERROR.findall(raw)
    ]


def _oauth_error(parsed: Mapping[str, Any] | None, tid: str | None) -> LedgersyncError | None:
    """The token endpoint's {"error": "...", "error_description": "..."} bodies."""
    if parsed is None or not isinstance(code := parsed.get("error"), str):
        return None
    text = f"{code}: {parsed['error_description']}" if parsed.get("error_description") else code
    if code == "invalid_client":
        return ConfigurationError(f"QuickBooks rejected the app's client credentials ({text})", tid=tid)
    # invalid_grant and the rest: the grant is unusable; only a new authorization helps.
    return NeedsReauthorizationError(f"QuickBooks refused the authorization ({text})", tid=tid)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.casefold()
    for key, value in headers.items():
        if key.casefold() == wanted:
            return value
    return None


def _seconds(headers: Mapping[str, str]) -> float | None:
    value = _header(headers, "retry-after")
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    sent = _header(headers, "date")
    try:
        until = parsedate_to_datetime(value)
        now = parsedate_to_datetime(sent) if sent else None
    except (TypeError, ValueError):
        return None
    # Pure: the delay is measured against the response's own Date header, never the local clock.
    return None if now is None else max(0.0, (until - now).total_seconds())
