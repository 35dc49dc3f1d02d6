"""Fixtures for the emulator tests: one emulator per module, and an authorized httpx client on it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.quickbooks.emulator import CompanyHandle, EmulatorConfig, EmulatorHandle, running_emulator

#: Fast and roomy: tests that exercise the limits start their own emulator with small ones.
FAST = EmulatorConfig(minute_seconds=60.0, requests_per_minute=100_000, batch_requests_per_minute=100_000)


class Api:
    """A tiny authorized client for the accounting API, returning (status, json)."""

    def __init__(self, qbo: CompanyHandle, token: str) -> None:
        self.qbo = qbo
        self.client = httpx.Client(
            base_url=qbo.company_url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            params={"minorversion": "75"},
            timeout=10.0,
        )

    def post(self, path: str, body: Any, **params: str) -> httpx.Response:
        return self.client.post(path, json=body, params={"minorversion": "75", **params})

    def get(self, path: str, **params: str) -> httpx.Response:
        return self.client.get(path, params={"minorversion": "75", **params})

    def query(self, statement: str) -> httpx.Response:
        return self.get("/query", query=statement)

    def create(self, entity: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.post(f"/{entity.lower()}", body)
        assert response.status_code == 200, response.text
        created: dict[str, Any] = response.json()[entity]
        return created

    def close(self) -> None:
        self.client.close()


@pytest.fixture(scope="module")
def qbo() -> Iterator[EmulatorHandle]:
    with running_emulator(FAST) as handle:
        yield handle


@pytest.fixture(scope="module")
def api(qbo: EmulatorHandle) -> Iterator[Api]:
    client = Api(qbo, qbo.connect().access_token)
    yield client
    client.close()


def fault_code(response: httpx.Response) -> str:
    return str(response.json()["Fault"]["Error"][0]["code"])
