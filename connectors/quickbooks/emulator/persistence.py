"""`--state FILE`: the whole emulator state as one versioned JSON document, written atomically.

Version 2 holds every company (its settings, records, counters and requestid replays) under its realm
id; version 1 (one company at top level) is read as a version 2 document with that one company. A
company never used holds only its settings: its records are made at first use, as for a new one.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.quickbooks.emulator.oauth import OAuthState
from connectors.quickbooks.emulator.store import Row, Store

if TYPE_CHECKING:
    from connectors.quickbooks.emulator.company import Company
    from connectors.quickbooks.emulator.emulator import Emulator

STATE_VERSION = 2


def dump(emulator: Emulator) -> dict[str, Any]:
    return {
        "version": STATE_VERSION,
        "now": emulator.clock.now().isoformat(),
        "oauth": emulator.authority.state.to_json(),
        "companies": [_dump_company(company) for company in list(emulator.companies.values())],
    }


def _dump_company(company: Company) -> dict[str, Any]:
    out: dict[str, Any] = {
        "settings": asdict(company.declared),
        "created_at": company.created_at.isoformat(),
        "replays": {
            k: [status, base64.b64encode(body).decode()] for k, (status, body) in company.replays.items()
        },
    }
    if company.opened:
        store = company.store
        with store.lock:
            out["rows"] = {
                entity: {
                    entity_id: {
                        "data": row.data,
                        "created_at": row.created_at.isoformat(),
                        "updated_at": row.updated_at.isoformat(),
                    }
                    for entity_id, row in rows.items()
                }
                for entity, rows in store.rows.items()
            }
            out["tombstones"] = {
                e: {i: t.isoformat() for i, t in ts.items()} for e, ts in store.tombstones.items()
            }
            out["counters"] = dict(store.counters)
    return out


def save(emulator: Emulator, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(dump(emulator)), encoding="utf-8")
    os.replace(tmp, path)


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A version 1 document (one company at top level) as version 2."""
    if data.get("version") != 1:
        return data
    company = {key: data[key] for key in ("rows", "tombstones", "counters", "replays")}
    company["settings"] = {"realm_id": data["realm_id"]}
    return {"version": 2, "now": data["now"], "oauth": data["oauth"], "companies": [company]}


def load(emulator: Emulator, path: Path) -> None:
    data = upgrade(json.loads(path.read_text(encoding="utf-8")))
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"{path}: unsupported emulator state version {data.get('version')!r}")
    for saved in data["companies"]:
        settings = saved["settings"]
        company = emulator.companies.get(settings["realm_id"])
        if company is None:  # added at run time before the restart
            created = saved.get("created_at")
            company = emulator.add_company(
                created_at=None if created is None else datetime.fromisoformat(created), **settings
            )
        company.replays = {k: (int(v[0]), base64.b64decode(v[1])) for k, v in saved["replays"].items()}
        if "rows" in saved:
            company.adopt(_store(saved))
    emulator.authority.state = OAuthState.from_json(data["oauth"])
    saved_now = datetime.fromisoformat(data["now"])
    behind = (saved_now - emulator.clock.now()).total_seconds()
    if behind > 0:  # emulator time never runs backwards across a restart
        emulator.clock.advance(behind)


def _store(saved: dict[str, Any]) -> Store:
    store = Store()
    store.rows = {
        entity: {
            entity_id: Row(
                raw["data"],
                datetime.fromisoformat(raw["created_at"]),
                datetime.fromisoformat(raw["updated_at"]),
            )
            for entity_id, raw in rows.items()
        }
        for entity, rows in saved["rows"].items()
    }
    store.tombstones = {
        e: {i: datetime.fromisoformat(t) for i, t in ts.items()} for e, ts in saved["tombstones"].items()
    }
    store.counters = {k: int(v) for k, v in saved["counters"].items()}
    return store
