"""Issue 14: one deployment, one app database with three tenants, three QuickBooks companies (of one
emulator, as of one Intuit app).

Each tenant connects its own company (`ledgersync connect --tenant T --realm R`), two workers, the
scheduler and the web app (receiving every company's webhooks, one realm per POST) run on Redis and
PostgreSQL, and the test edits both
sides of every tenant: each change lands in its own tenant's company or rows, never another's (the
same display name lives in all three). Then one tenant disconnects: the other two keep syncing both
ways, and nothing of the disconnected one moves.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.app.codec import Codec
from connectors.app.database import make_engine
from connectors.quickbooks.crypto import generate_key
from connectors.quickbooks.emulator import EmulatorConfig, running_emulator
from connectors.quickbooks.emulator.handle import CompanyHandle
from engine.model import EntityType
from engine.settings import load_config
from engine.web.serve import free_port
from ledgersync.bootstrap import SECTIONS, Runtime
from tests.integration.harness import SCRIPT, VERIFIER, Processes, pg_url_in, redis_database
from tests.support.stores import postgres_schema
from tests.support.tenants import add_customer, create_tenant_db, tenant_mapping

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

TENANTS = ("acme", "globex", "initech")
SHARED_NAME = "Jo's Plumbing"


@dataclass
class Deployment:
    companies: dict[str, CompanyHandle]
    app: sa.Engine
    runtime: Runtime
    processes: Processes

    def links(self, tenant: str) -> dict[str, str]:
        """App id -> QuickBooks id of the tenant's customers linked on both sides."""
        with self.runtime.store.session() as s:
            links = s.list_links(f"tenant-{tenant}", EntityType.CUSTOMER)
        return {str(k.app_id): str(k.quickbooks_id) for k in links if k.app_id and k.quickbooks_id}

    def app_rows(self) -> dict[str, tuple[str, str, str | None]]:
        """App id -> (tenant, display name, notes) of every customer."""
        with self.app.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, account_id, display_name, notes FROM customers"))
            return {str(r.id): (r.account_id, r.display_name, r.notes) for r in rows}

    def phone(self, app_id: str) -> str | None:
        with self.app.connect() as conn:
            found = conn.execute(sa.text("SELECT phone FROM customers WHERE id = :id"), {"id": int(app_id)})
            return found.scalar_one_or_none()

    def names_in(self, tenant: str) -> list[str]:
        return sorted(r["DisplayName"] for r in self.companies[tenant].list_records("Customer"))

    def wait(self, what: str, condition: object, timeout: float = 60) -> None:
        import time

        deadline = time.monotonic() + timeout
        while not condition():  # type: ignore[operator]
            self.processes.check_alive()
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            time.sleep(0.25)


def edit_app(engine: sa.Engine, app_id: str, notes: str) -> None:
    at = Codec(engine.dialect.name).write_timestamp(datetime.now(UTC))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE customers SET notes = :notes, version = version + 1, updated_at = :at,"
                " changed_by = 'user' WHERE id = :id"
            ),
            {"notes": notes, "at": at, "id": int(app_id)},
        )


@contextlib.contextmanager
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        qbo = stack.enter_context(
            running_emulator(
                EmulatorConfig(
                    minute_seconds=1.0,
                    webhook_url=f"{web}/webhooks/quickbooks",
                    verifier_token=VERIFIER,
                    webhook_batch_window=0.05,
                ).with_companies(len(TENANTS))
            )
        )
        realms = [str(c["realm_id"]) for c in qbo.companies()]
        companies = {tenant: qbo.company_handle(realm) for tenant, realm in zip(TENANTS, realms, strict=True)}
        app_url = pg_url_in(stack.enter_context(postgres_schema()))
        state_url = pg_url_in(stack.enter_context(postgres_schema()))
        broker_url = stack.enter_context(redis_database())
        create_tenant_db(app_url)
        app = make_engine(app_url)
        stack.callback(app.dispose)
        for tenant in TENANTS:  # the same name in every tenant, and one of each tenant's own
            add_customer(app, tenant, SHARED_NAME, notes=f"{tenant} original")
            add_customer(app, tenant, f"{tenant.title()} Only")
        first = companies[TENANTS[0]]
        config = tmp_path / "ledgersync.yaml"
        config.write_text(
            f"state_url: {state_url}\n"
            f"broker_url: {broker_url}\n"
            "secret_key: {env: LEDGERSYNC_SECRET_KEY}\n"
            "quickbooks:\n"
            f"  environment: {qbo.base_url}\n"
            f"  client_id: {first.client_id}\n"
            "  client_secret: {env: QBO_CLIENT_SECRET}\n"
            "  webhook_verifier_token: {env: QBO_VERIFIER_TOKEN}\n"
            "  minute_seconds: 1.0\n"
            "  timeout_seconds: 20\n"
            "  defaults:\n"
            '    income_account: "1"\n'
            "app:\n"
            f"  database_url: {app_url}\n"
            f"  mapping: {tenant_mapping(tmp_path)}\n"
            "schedule:\n"
            "  app_poll_seconds: 0.5\n"
            "  quickbooks_poll_seconds: 600\n"  # QuickBooks' edits come by webhook, routed by realm
            "  kick_seconds: 2\n"
            f"web:\n  port: {port}\n",
            encoding="utf-8",
        )
        env = {
            "PATH": os.environ.get("PATH", str(SCRIPT.parent)),
            "LEDGERSYNC_SECRET_KEY": generate_key(),
            "QBO_CLIENT_SECRET": first.client_secret,
            "QBO_VERIFIER_TOKEN": VERIFIER,
            "LEDGERSYNC_LOG_LEVEL": "WARNING",
        }
        processes = Processes(tmp_path, env, config)
        runtime = Runtime(load_config(config, env, SECTIONS))
        try:
            yield Deployment(companies, app, runtime, processes)
        except BaseException:
            print(processes.logs())
            raise
        finally:
            processes.stop_all()
            runtime.close()


def test_three_companies_sync_both_ways_apart_and_a_revoked_one_stops_alone(tmp_path: Path) -> None:
    with deployment(tmp_path) as d:
        seeded = {t: set(d.names_in(t)) for t in TENANTS}
        for tenant in TENANTS:
            done = d.processes.run("connect", "--tenant", tenant, "--realm", d.companies[tenant].realm_id)
            assert done.returncode == 0, done.stdout + done.stderr
            assert f"tenant-{tenant} for tenant {tenant}" in done.stdout
        listed = d.processes.run("connections", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        for n in range(2):
            d.processes.start(f"worker-{n}", "worker", "--threads", "2")
        d.processes.start("scheduler", "scheduler")
        d.processes.start("web", "web")

        # App -> QuickBooks: each tenant's customers, and only those, reach its own company.
        for tenant in TENANTS:
            d.wait(
                f"{tenant}'s customers in its company", lambda t=tenant: len(d.links(t)) >= 2 + len(seeded[t])
            )
        for tenant in TENANTS:
            pushed = set(d.names_in(tenant)) - seeded[tenant]
            assert pushed == {SHARED_NAME, f"{tenant.title()} Only"}, (tenant, pushed)
        rows = d.app_rows()
        for tenant in TENANTS:
            # QuickBooks -> app: the company's own customers arrived as rows of its tenant.
            mine = {name for t, name, _ in rows.values() if t == tenant}
            assert seeded[tenant] <= mine
            for app_id in d.links(tenant):
                assert rows[app_id][0] == tenant, f"{tenant} linked another tenant's row {app_id}"

        # Both ways after the start, webhooks routed by realm.
        def shared(tenant: str) -> tuple[str, str]:
            return next((a, q) for a, q in d.links(tenant).items() if rows[a][1] == SHARED_NAME)

        for tenant in TENANTS:
            app_id, qbo_id = shared(tenant)
            d.companies[tenant].edit_record("Customer", qbo_id, {"Notes": f"{tenant} from QuickBooks"})
        for tenant in TENANTS:
            app_id, _ = shared(tenant)
            d.wait(
                f"{tenant}'s QuickBooks edit in its own row",
                lambda a=app_id, t=tenant: d.app_rows()[a][2] == f"{t} from QuickBooks",
            )
        for tenant in TENANTS:
            app_id, _ = shared(tenant)
            edit_app(d.app, app_id, f"{tenant} from the app")
        for tenant in TENANTS:
            _, qbo_id = shared(tenant)
            d.wait(
                f"{tenant}'s app edit in its own company",
                lambda q=qbo_id, t=tenant: (
                    d.companies[t].read_record("Customer", q).get("Notes") == f"{t} from the app"
                ),
            )

        # One tenant disconnects: the others sync on, both ways; nothing of its own moves.
        done = d.processes.run("disconnect", "--tenant", "globex")
        assert done.returncode == 0, done.stdout + done.stderr
        globex_app, globex_qbo = shared("globex")
        edit_app(d.app, globex_app, "globex after revoke")
        for tenant in ("acme", "initech"):
            app_id, qbo_id = shared(tenant)
            edit_app(d.app, app_id, f"{tenant} after revoke")
            d.companies[tenant].edit_record(
                "Customer", qbo_id, {"PrimaryPhone": {"FreeFormNumber": "555-0101"}}
            )
        for tenant in ("acme", "initech"):
            app_id, qbo_id = shared(tenant)
            d.wait(
                f"{tenant} still syncing app -> QuickBooks",
                lambda q=qbo_id, t=tenant: (
                    d.companies[t].read_record("Customer", q).get("Notes") == f"{t} after revoke"
                ),
            )
        for tenant in ("acme", "initech"):
            app_id, _ = shared(tenant)
            d.wait(f"{tenant} still syncing QuickBooks -> app", lambda a=app_id: d.phone(a) == "555-0101")
        assert d.companies["globex"].read_record("Customer", globex_qbo).get("Notes") == "globex from the app"
        status = d.processes.run("connections", "list")
        assert "revoked" in status.stdout and status.stdout.count("connected") >= 2, status.stdout
        d.processes.check_alive()
        # Still apart: every company holds only its own tenant's names.
        for tenant in TENANTS:
            others = {f"{t.title()} Only" for t in TENANTS if t != tenant}
            assert not others & set(d.names_in(tenant))
