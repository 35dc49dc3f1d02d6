"""Comparing a linked record's two copies field by field, references translated to links."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.diff import changed_fields
from engine.model import EntityType, Side
from engine.ports import Policy, StoreSession
from engine.reconcile import directions
from engine.refs import to_links
from engine.state import Link


def differing_fields(
    s: StoreSession, link: Link, app: Mapping[str, Any], quickbooks: Mapping[str, Any], policy: Policy
) -> frozenset[str]:
    """The synced fields on which the app's and QuickBooks' copies of `link` differ."""
    synced = directions(link.entity, policy)

    def linked(fields: Mapping[str, Any], side: Side) -> dict[str, Any]:
        def link_of(entity: EntityType, external_id: str) -> str | None:
            found = s.find_link(link.connection, entity, side, external_id)
            return found.id if found else None

        return to_links({k: v for k, v in fields.items() if k in synced}, side, link_of)

    return changed_fields(linked(app, Side.APP), linked(quickbooks, Side.QUICKBOOKS))
