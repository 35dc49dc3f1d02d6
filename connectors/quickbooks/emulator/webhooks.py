"""Webhook delivery: signed CloudEvents (or legacy) POSTs, batched, retried, held behind a failed one."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.quickbooks.emulator.clock import format_utc
from connectors.quickbooks.emulator.config import EmulatorConfig
from connectors.quickbooks.emulator.injection import FaultPlan
from connectors.quickbooks.emulator.store import Change

logger = logging.getLogger(__name__)

CLOUDEVENT_WORDS = {
    "Create": "created",
    "Update": "updated",
    "Delete": "deleted",
    "Merge": "merged",
    "Void": "void",
    "Emailed": "emailed",
}


@dataclass(frozen=True)
class Event:
    event_id: str
    realm_id: str
    change: Change


def sign(body: bytes, verifier_token: str) -> str:
    """The `intuit-signature` value: base64 of HMAC-SHA256 of the raw body, keyed with the verifier token."""
    digest = hmac.new(verifier_token.encode(), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def cloudevents_body(events: list[Event]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for event in events:
        change = event.change
        source = base64.b64encode(hashlib.sha256(event.realm_id.encode()).digest()).decode()
        item: dict[str, Any] = {
            "specversion": "1.0",
            "id": event.event_id,
            "source": f"intuit.{source}",
            "type": f"qbo.{change.entity.lower()}.{CLOUDEVENT_WORDS[change.operation]}.v1",
            "datacontenttype": "application/json",
            "time": format_utc(change.at),
            "intuitentityid": change.entity_id,
            "intuitaccountid": event.realm_id,
            "data": {"deletedid": change.deleted_id} if change.deleted_id else {},
        }
        out.append(item)
    return out


def legacy_body(events: list[Event]) -> dict[str, Any]:
    by_realm: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        change = event.change
        entity: dict[str, Any] = {
            "name": change.entity,
            "id": change.entity_id,
            "operation": change.operation,
            "lastUpdated": format_utc(change.at),
        }
        if change.deleted_id:
            entity["deletedId"] = change.deleted_id
        by_realm.setdefault(event.realm_id, []).append(entity)
    return {
        "eventNotifications": [
            {"realmId": realm, "dataChangeEvent": {"entities": entities}}
            for realm, entities in by_realm.items()
        ]
    }


class WebhookDispatcher:
    """One background thread delivering the realm's events in order, one batch at a time."""

    def __init__(self, config: EmulatorConfig, faults: FaultPlan, is_connected: Callable[[], bool]) -> None:
        self.config = config
        self.faults = faults
        self.is_connected = is_connected
        self._queue: deque[Event] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.deliveries: list[dict[str, Any]] = []

    def enqueue(self, change: Change) -> None:
        if not self.config.webhook_url or not self.is_connected():
            return
        event = Event(str(uuid.uuid4()), self.config.realm_id, change)
        if self.faults.take("webhook_drop"):
            self._log(event_ids=[event.event_id], status=None, note="dropped by fault injection")
            return
        copies = 2 if self.faults.take("webhook_duplicate") else 1
        with self._cond:
            for _ in range(copies):
                self._queue.append(event)
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue)

    def start(self) -> None:
        if self.config.webhook_url and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="qbo-emulator-webhooks", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _log(self, *, event_ids: list[str], status: int | None, note: str = "") -> None:
        with self._cond:
            self.deliveries.append({"event_ids": event_ids, "status": status, "note": note})

    def _run(self) -> None:
        with httpx.Client(timeout=self.config.webhook_timeout) as client:
            attempt = 0
            while not self._stop.is_set():
                with self._cond:
                    if not self._queue:
                        self._cond.wait(timeout=0.5)
                        continue
                if attempt == 0 and self._stop.wait(self.config.webhook_batch_window):
                    return
                with self._cond:
                    batch = list(self._queue)[: self.config.webhook_batch_max]
                if self.faults.take("webhook_reorder"):
                    batch = list(reversed(batch))
                if self._post(client, batch):
                    with self._cond:
                        for _ in batch:
                            self._queue.popleft()
                    attempt = 0
                    continue
                delays = self.config.webhook_retry_delays or (60.0,)
                delay = delays[min(attempt, len(delays) - 1)]
                attempt += 1
                if self._stop.wait(delay):
                    return

    def _post(self, client: httpx.Client, batch: list[Event]) -> bool:
        payload: Any = (
            cloudevents_body(batch) if self.config.webhook_format == "cloudevents" else legacy_body(batch)
        )
        body = json.dumps(payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "intuit-signature": sign(body, self.config.verifier_token),
        }
        ids = [e.event_id for e in batch]
        try:
            response = client.post(str(self.config.webhook_url), content=body, headers=headers)
        except httpx.HTTPError as exc:
            logger.info("webhook delivery failed: %s", type(exc).__name__)
            self._log(event_ids=ids, status=None, note=f"transport error: {type(exc).__name__}")
            return False
        self._log(event_ids=ids, status=response.status_code)
        return response.status_code == 200
