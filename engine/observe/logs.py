"""Log output for the whole process: plain lines or JSON lines, secrets redacted, configured once at the edge.

The code logs with `extra={"connection": ..., "entity": ..., "op_id": ..., "intuit_tid": ...}`; the
plain format shows the message only, the JSON format (python-json-logger) carries every one of those
keys as a field of its own. Either way `Redact` runs first: a value under a key that names a secret
(token, secret, password, authorization, ...) becomes "[redacted]", one under a key that names a whole
document (payload, body) becomes "[omitted]", and a bearer token inside a message is masked.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from engine.settings import LoggingSettings

PLAIN_FORMAT = "  [%(levelname)s %(name)s] %(message)s"
#: Fields every JSON line has, before the record's own context.
JSON_FIELDS = ("asctime", "levelname", "name", "message")
REDACTED = "[redacted]"
OMITTED = "[omitted]"
#: A key holding one of these words holds a secret.
_SECRET_WORDS = ("token", "secret", "password", "passwd", "authorization", "cookie", "api_key", "apikey")
#: Keys whose value is a whole document: never logged, whatever the level.
_PAYLOAD_KEYS = frozenset({"payload", "body", "content", "data", "json", "raw"})
#: Context keys that carry no secret although their names hold a secret word.
_SAFE_KEYS = frozenset({"intuit_tid"})
#: A credential in an Authorization-style phrase ("Bearer eyJ...", "Basic dXNlcjpw..."); a Basic one is
#: base64 of some length, so "a basic check" stays as it is.
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+|\b(basic)\s+[A-Za-z0-9+/=]{12,}")
_RESERVED = frozenset(RESERVED_ATTRS)
_OURS = "_ledgersync_handler"
#: Libraries whose debug output is transport tracing (every socket event, with headers), kept at
#: INFO even when ours is at DEBUG.
_TRACING = ("httpcore", "hpack")


def is_secret_key(key: str) -> bool:
    name = key.lower()
    return name not in _SAFE_KEYS and any(word in name for word in _SECRET_WORDS)


def redact(value: Any, key: str = "") -> Any:
    """`value` with every secret (by its key) replaced and whole documents left out, at any depth."""
    if key and is_secret_key(key):
        return REDACTED
    if key.lower() in _PAYLOAD_KEYS:
        return OMITTED
    if isinstance(value, Mapping):
        return {k: redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _BEARER.sub(lambda m: f"{m.group(1) or m.group(2)} {REDACTED}", value)
    return value


class Redact(logging.Filter):
    """Masks secrets in a record's context and message before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in list(record.__dict__.items()):
            if key not in _RESERVED and not key.startswith("_"):
                setattr(record, key, redact(value, key))
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class ConnectionLabels(logging.Filter):
    """Gives a record that names its `connection` the connection's `tenant` and `realm` too (unless it
    names them itself), from what the composition module tells it as it opens each connection; so a
    line about one company of many says whose it is without every call site passing both."""

    def __init__(self) -> None:
        super().__init__()
        self._labels: dict[str, tuple[str | None, str | None]] = {}

    def describe(self, connection: str, tenant: str | None, realm: str | None) -> None:
        self._labels[connection] = (tenant, realm)

    def filter(self, record: logging.LogRecord) -> bool:
        connection = record.__dict__.get("connection")
        labels = self._labels.get(connection) if isinstance(connection, str) else None
        if labels is not None:
            tenant, realm = labels
            if tenant is not None and "tenant" not in record.__dict__:
                record.tenant = tenant
            if realm is not None and "realm" not in record.__dict__:
                record.realm = realm
        return True


#: The process's one table of connection labels, filled by the composition module.
CONNECTION_LABELS = ConnectionLabels()


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (a test runner swaps it per command)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def formatter(fmt: str) -> logging.Formatter:
    if fmt == "json":
        return JsonFormatter(list(JSON_FIELDS), rename_fields={"levelname": "level", "name": "logger"})
    return logging.Formatter(PLAIN_FORMAT)


def configured() -> bool:
    """Whether `configure_logging` set up this process's logging."""
    return any(getattr(h, _OURS, False) for h in logging.getLogger().handlers)


def configure_logging(settings: LoggingSettings, stream: TextIO | None = None) -> logging.Handler:
    """Send the process's logs to `stream` (stderr by default) in the configured format and level.

    Called again (the configuration read after the command line), it replaces its own handler and
    leaves others (a test runner's) alone. Returns the handler it installed."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    handler: logging.Handler = _Stderr() if stream is None else logging.StreamHandler(stream)
    setattr(handler, _OURS, True)
    handler.setFormatter(formatter(settings.format))
    handler.addFilter(CONNECTION_LABELS)
    handler.addFilter(Redact())
    root.addHandler(handler)
    root.setLevel(settings.level)
    for name in _TRACING:
        logging.getLogger(name).setLevel(max(logging.INFO, root.level))
    return handler
