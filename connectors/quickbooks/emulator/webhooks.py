"""One company's webhooks: signed CloudEvents (or legacy) POSTs, batched, retried, held behind a failure."""

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


class WebhookQueue:
    """One company's events waiting to be POSTed, in the order they happened, and its delivery attempts.

    The company's events go out one batch at a time, and a batch not acknowledged with a 200 is retried
    (Intuit's schedule) with every later event waiting behind it. A `Courier` thread does the POSTs;
    `schedule(queue, delay)` asks it for a turn. One POST carries one company's events only.
    """

    def __init__(
        self,
        config: EmulatorConfig,
        faults: FaultPlan,
        is_connected: Callable[[], bool],
        schedule: Callable[[WebhookQueue, float], None],
    ) -> None:
        self.config = config
        self.faults = faults
        self.is_connected = is_connected
        self._schedule = schedule
        self._queue: deque[Event] = deque()
        self._lock = threading.Lock()
        self._failures = 0  # failed attempts of the batch at the head
        self.deliveries: list[dict[str, Any]] = []

    def enqueue(self, change: Change) -> None:
        if not self.config.webhook_url or not self.is_connected():
            return
        event = Event(str(uuid.uuid4()), self.config.realm_id, change)
        if self.faults.take("webhook_drop"):
            self._log(event_ids=[event.event_id], status=None, note="dropped by fault injection")
            return
        copies = 2 if self.faults.take("webhook_duplicate") else 1
        with self._lock:
            for _ in range(copies):
                self._queue.append(event)
        # Queued before asking: a courier finishing this queue's last turn sees the event (see Courier).
        self._schedule(self, self.config.webhook_batch_window)

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def deliver(self, client: httpx.Client) -> float | None:
        """POST the next batch; seconds until this queue's next turn, or None when it is empty."""
        with self._lock:
            batch = list(self._queue)[: self.config.webhook_batch_max]
        if not batch:
            return None
        if self.faults.take("webhook_reorder"):
            batch = list(reversed(batch))
        if self._post(client, batch):
            with self._lock:
                for _ in batch:
                    self._queue.popleft()
                self._failures = 0
                more = bool(self._queue)
            return self.config.webhook_batch_window if more else None
        delays = self.config.webhook_retry_delays or (60.0,)
        delay = delays[min(self._failures, len(delays) - 1)]
        self._failures += 1
        return delay

    def _log(self, *, event_ids: list[str], status: int | None, note: str = "") -> None:
        with self._lock:
            self.deliveries.append({"event_ids": event_ids, "status": status, "note": note})

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
            logger.info("webhook delivery for realm %s failed: %s", self.config.realm_id, type(exc).__name__)
            self._log(event_ids=ids, status=None, note=f"transport error: {type(exc).__name__}")
            return False
        self._log(event_ids=ids, status=response.status_code)
        return response.status_code == 200
