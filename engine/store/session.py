"""`SqlSession`: one transaction on the SQL state store, the implementation of the `StoreSession` port."""

from __future__ import annotations

from engine.store.bulk import BulkMixin
from engine.store.incidents import IncidentsMixin
from engine.store.journal import JournalMixin
from engine.store.links import LinksMixin
from engine.store.meta import MetaMixin
from engine.store.observed import ObservedMixin
from engine.store.parked import ParkedMixin
from engine.store.users import UsersMixin
from engine.store.work import WorkMixin


class SqlSession(
    MetaMixin,
    JournalMixin,
    LinksMixin,
    WorkMixin,
    ParkedMixin,
    BulkMixin,
    ObservedMixin,
    IncidentsMixin,
    UsersMixin,
):
    """Everything done through one instance commits together or not at all.

    Made by `SqlStateStore.session()`; it is only valid inside that `with` block. Each concept's
    methods live in their own module (meta, journal, links, work, parked, bulk: the set-based
    reads and writes, observed: what /metrics asks, incidents: alerts sent, users: the console's
    logins); values in and out are the frozen
    models of engine.state, never rows.
    """
