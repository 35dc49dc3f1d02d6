"""QboConnector against the emulator: the connector contract, then what only QuickBooks does."""

from __future__ import annotations

import pytest

from connectors.quickbooks.connector import QboConnector
from connectors.quickbooks.mapping import MappingContext
from engine.ports import Connector
from policies import PolicySet
from tests.contract.suite import ConnectorContract
from tests.quickbooks.conftest import Rig

#: The emulator's seeded "Sales of Product Income" account, the default for items.
INCOME_ACCOUNT = "1"


def make_connector(rig: Rig, connection: str = "c1", **kwargs: object) -> QboConnector:
    rig.connect(connection)
    return QboConnector(
        rig.client(connection),
        MappingContext(income_account=INCOME_ACCOUNT),
        kwargs.pop("policy", PolicySet.default()),  # type: ignore[arg-type]
        rig.clock,
        connection,
        **kwargs,  # type: ignore[arg-type]
    )


class TestQboConnectorContract(ConnectorContract):
    @pytest.fixture
    def connector(self, rig: Rig) -> Connector:
        return make_connector(rig)
