"""A faithful QuickBooks Online emulator: OAuth, entities, query, CDC, batch, webhooks, throttling and faults.

Start it with `ledgersync emulator`, or in-process with `running_emulator()`; see docs/emulator.md.
"""

from __future__ import annotations

from connectors.quickbooks.emulator.app import create_app
from connectors.quickbooks.emulator.config import CompanyConfig, EmulatorConfig
from connectors.quickbooks.emulator.emulator import Emulator
from connectors.quickbooks.emulator.handle import CompanyHandle, EmulatorHandle, Tokens
from connectors.quickbooks.emulator.server import running_emulator, serve
from connectors.quickbooks.emulator.webhooks import sign

__all__ = [
    "CompanyConfig",
    "CompanyHandle",
    "Emulator",
    "EmulatorConfig",
    "EmulatorHandle",
    "Tokens",
    "create_app",
    "running_emulator",
    "serve",
    "sign",
]
