"""`--state FILE`: the whole emulator state as one versioned JSON document, written atomically."""

from __future__ import annotations

import base64
import json
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.quickbooks.emulator.oauth import OAuthState
from connectors.quickbooks.emulator.store import Row

if TYPE_CHECKING:
    from connectors.quickbooks.emulator.emulator import Emulator

STATE_VERSION = 1


def dump(emulator: Emulator) -> dict[str, Any]:
    store = emulator.store
    return {
        "version": STATE_VERSION,
        "realm_id": emulator.config.realm_id,
        "now": emulator.clock.now().isoformat(),
        "rows": {
            entity: {
                entity_id: {
                    "data": row.data,
                    "created_at": row.created_at.isoformat(),
                    "updated_at": row.updated_at.isoformat(),
                }
                for entity_id, row in rows.items()
            }
            for entity, rows in store.rows.items()
        },
        "tombstones": {e: {i: t.isoformat() for i, t in ts.items()} for e, ts in store.tombstones.items()},
        "counters": dict(store.counters),
        "oauth": emulator.authority.state.to_json(),
        "replays": {
            k: [status, base64.b64encode(body).decode()] for k, (status, body) in emulator.replays.items()
        },
    }


def save(emulator: Emulator, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dump(emulator)), encoding="utf-8")
    os.replace(tmp, path)


def load(emulator: Emulator, path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"{path}: unsupported emulator state version {data.get('version')!r}")
    store = emulator.store
    store.rows = {
        entity: {
            entity_id: Row(
                raw["data"],
                datetime.fromisoformat(raw["created_at"]),
                datetime.fromisoformat(raw["updated_at"]),
            )
            for entity_id, raw in rows.items()
        }
        for entity, rows in data["rows"].items()
    }
    store.tombstones = {
        e: {i: datetime.fromisoformat(t) for i, t in ts.items()} for e, ts in data["tombstones"].items()
    }
    store.counters = {k: int(v) for k, v in data["counters"].items()}
    emulator.authority.state = OAuthState.from_json(data["oauth"])
    emulator.replays = {k: (int(v[0]), base64.b64decode(v[1])) for k, v in data["replays"].items()}
    saved_now = datetime.fromisoformat(data["now"])
    behind = (saved_now - emulator.clock.now()).total_seconds()
    if behind > 0:  # emulator time never runs backwards across a restart
        emulator.clock.advance(behind)
