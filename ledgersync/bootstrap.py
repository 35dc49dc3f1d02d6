"""The one composition module: wires configuration, store, connectors, policy, broker and web app.

Everything else takes what it needs as arguments; only this module knows which concrete connector,
store and broker a configuration means.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.app.connector import SqlConnector
from connectors.app.database import make_engine as make_app_engine
from connectors.app.mapping import Mapping, load_mapping
from connectors.oidc import OidcClient, OidcSettings
from connectors.quickbooks.budget import MemoryRateBudget, RateBudget, RedisRateBudget
from connectors.quickbooks.client import QboClient, new_http_client
from connectors.quickbooks.connector import QboConnector
from connectors.quickbooks.crypto import TokenCipher
from connectors.quickbooks.labels import LABELS, record_page
from connectors.quickbooks.mapping import MappingContext
from connectors.quickbooks.match import MatchReport, initial_match
from connectors.quickbooks.oauth import OAuthClient
from connectors.quickbooks.receiver import DEFAULT_PATH as WEBHOOK_PATH
from connectors.quickbooks.receiver import QuickBooksInbox, receive_webhook, secret_text
from connectors.quickbooks.settings import QboSettings
from connectors.quickbooks.sync.company import read_company
from connectors.quickbooks.telemetry import COUNTERS, metered_families
from connectors.quickbooks.tokens import RefreshReport, TokenCustodian
from engine.clock import SystemClock
from engine.coalesce import ReadRequests
from engine.errors import ConfigurationError
from engine.jobs import intervals
from engine.model import EntityType, Side
from engine.observe.alerts import AlertCheck, Usage
from engine.observe.counters import Counters, MemoryCounters, RedisCounters
from engine.observe.families import Family, Source, counter_families
from engine.observe.logs import CONNECTION_LABELS
from engine.observe.notify import notifiers
from engine.ports import Clock, Connector
from engine.runner import Runner
from engine.settings import DEFAULT_TENANT, Config
from engine.state import Connection, ConnectionStatus, InboxReport
from engine.store import SqlStateStore, open_store
from engine.web.present import Presenter
from engine.workers import Services
from ledgersync.tenancy import Tenancy, check_tenant
from policies import PolicySet

log = logging.getLogger(__name__)


class QuickBooksSection(QboSettings):
    """The `quickbooks:` section: the transport settings plus the company defaults for mapping."""

    defaults: MappingContext = MappingContext()


class AppSection(BaseModel):
    """The `app:` section: the app's database and its table mapping."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str
    #: The mapping file, relative to the configuration file.
    mapping: str
    #: A PostgreSQL schema to find the tables in, if not the default one.
    schema_name: str | None = None


#: The configuration file's connector sections and the models that validate them.
SECTIONS: dict[str, type[BaseModel]] = {
    "quickbooks": QuickBooksSection,
    "app": AppSection,
    "oidc": OidcSettings,
}


def open_configured_store(config: Config) -> SqlStateStore:
    """The state store the configuration names, migrated to the newest schema."""
    return open_store(config.settings.state_url)


def _section_key(settings: QboSettings) -> tuple[str, str]:
    """What sets one QuickBooks app registration apart: tenants that share it share a token custodian."""
    return settings.environment, settings.client_id


@dataclass
class Runtime:
    """The configured system in one process: built lazily, closed once."""

    config: Config
    clock: Clock = field(default_factory=SystemClock)
    #: This process runs actors shared by every company: a call that would wait long for its
    #: company's rate budget hands its message back instead (`quickbooks.budget_patience_seconds`).
    workers: bool = False
    store: SqlStateStore = field(init=False)
    #: The default policy (a tenant without one of its own uses it; `policy_for` says whose is whose).
    policy: PolicySet = field(init=False)
    tenancy: Tenancy = field(init=False)
    _http: httpx.Client | None = None
    #: One per QuickBooks app registration (environment and client id), usually just the one.
    _custodians: dict[tuple[str, str], TokenCustodian] = field(default_factory=dict)
    _budget: RateBudget | None = None
    _counters: Counters | None = None
    _apps: dict[str, SqlConnector] = field(default_factory=dict)
    _quickbooks: dict[str, QboConnector] = field(default_factory=dict)
    _runners: dict[str, Runner] = field(default_factory=dict)
    _oidc_http: httpx.Client | None = None
    _tenants: dict[str, str] = field(default_factory=dict)
    _mapping: Mapping | None = None

    def __post_init__(self) -> None:
        self.tenancy = Tenancy.load(self.config)  # every policy file checked now, not at first use
        self.policy = self.tenancy.default_policy
        self.store = open_configured_store(self.config)

    @property
    def connection(self) -> str:
        """The default tenant's connection (the one connection of a single-company deployment)."""
        return self.config.settings.connection

    # tenants and their connections

    def connection_of(self, tenant: str) -> str:
        """The connection id of `tenant`'s company; ConfigurationError for a tenant other than the
        default when the app mapping names no tenant column (see `refuse_unscoped`)."""
        connection = self.tenancy.connection_of(tenant)
        self.refuse_unscoped(tenant)
        return connection

    def refuse_unscoped(self, tenant: str) -> None:
        """ConfigurationError when `tenant` is not the default and the app mapping names no tenant
        column: its connection would read, and write back to, every tenant's rows."""
        if tenant == DEFAULT_TENANT:
            return
        section = self.config.sections.get("app")
        if not isinstance(section, AppSection):
            return
        if self._mapping is None:
            self._mapping = load_mapping(self.config.path(section.mapping))
        if not any(spec.tenant_column for spec in self._mapping.entities.values()):
            raise ConfigurationError(
                f"tenant {tenant!r}: the app mapping names no tenant_column, so its company would get"
                " every tenant's records; name each entity's tenant column in the mapping (README,"
                " 'Many companies in one deployment'), or connect without --tenant"
            )

    def tenant_of(self, connection: str) -> str:
        """The app tenant `connection` serves (as stored once connected, else as its id says)."""
        if connection not in self._tenants:
            with self.store.session() as s:
                stored = s.get_connection(connection)
            tenant = self.tenancy.tenant_of(connection, stored)
            if stored is None:
                return tenant  # not remembered: a connect may store it differently
            self._tenants[connection] = tenant
            # From now on every log line about this connection says whose it is.
            CONNECTION_LABELS.describe(connection, tenant, stored.realm_id)
        return self._tenants[connection]

    def policy_for(self, connection: str) -> PolicySet:
        return self.tenancy.policy(self.tenant_of(connection))

    def connections(self) -> list[Connection]:
        with self.store.session() as s:
            return s.list_connections()

    def active_connections(self) -> list[str]:
        """The connections to sync now: connected to a company (a revoked or expired grant waits for
        a reconnect; its work is skipped, never in the others' way)."""
        return [c.id for c in self.connections() if c.realm_id and c.status is ConnectionStatus.CONNECTED]

    def unread_webhooks(self) -> list[str]:
        """The active connections whose company has webhook bodies not read yet (every active one
        for a body stored before deliveries were routed by company)."""
        with self.store.session() as s:
            realms = s.inbox_realms()
        active = [c for c in self.connections() if c.realm_id and c.status is ConnectionStatus.CONNECTED]
        return [c.id for c in active if None in realms or c.realm_id in realms]

    def connection_for_realm(self, realm_id: str) -> str | None:
        return next((c.id for c in self.connections() if c.realm_id == realm_id), None)

    def quickbooks_settings(self, connection: str | None = None) -> QuickBooksSection:
        """The `quickbooks:` section as `connection`'s tenant sees it (the file's, for None)."""
        tenant = DEFAULT_TENANT if connection is None else self.tenant_of(connection)
        return self._quickbooks_section(tenant)

    def _quickbooks_section(self, tenant: str) -> QuickBooksSection:
        section = self.tenancy.section(tenant, "quickbooks")
        if not isinstance(section, QuickBooksSection):
            raise ConfigurationError(
                f"{self.config.source}: no quickbooks section; add one (see `ledgersync init`)"
            )
        # One redirect URI for `ledgersync connect` and the web /connect: the web app's own callback.
        return section.with_web_address(self.config.settings.web.base_url)

    def http(self) -> httpx.Client:
        if self._http is None:
            self._http = new_http_client(self.quickbooks_settings())
        return self._http

    def oauth(self, connection: str | None = None, *, tenant: str | None = None) -> OAuthClient:
        settings = self._settings_of(connection, tenant)
        return OAuthClient(self.http(), settings, self.clock)

    def custodian(self, connection: str | None = None, *, tenant: str | None = None) -> TokenCustodian:
        """The token custodian of `connection`'s (or `tenant`'s) QuickBooks app registration."""
        settings = self._settings_of(connection, tenant)
        key = _section_key(settings)
        if key not in self._custodians:
            secret = self.config.settings.secret_key
            cipher = TokenCipher(secret.get_secret_value() if secret else "")
            oauth = OAuthClient(self.http(), settings, self.clock)
            self._custodians[key] = TokenCustodian(self.store, oauth, cipher, self.clock, settings)
        return self._custodians[key]

    def _settings_of(self, connection: str | None, tenant: str | None) -> QuickBooksSection:
        if tenant is not None:
            return self._quickbooks_section(check_tenant(tenant))
        return self.quickbooks_settings(connection)

    def budget(self) -> RateBudget:
        if self._budget is None:
            settings = self.quickbooks_settings()
            patience = settings.budget_patience_seconds if self.workers else None
            url = self.config.settings.broker_url
            if url:
                import redis

                self._budget = RedisRateBudget(redis.Redis.from_url(url), settings, patience=patience)
            else:
                self._budget = MemoryRateBudget(settings, patience=patience)
        return self._budget

    def counters(self) -> Counters:
        """What the QuickBooks client counts for /metrics: in Redis when there is a broker (every
        worker adds to the same counters), else in this process."""
        if self._counters is None:
            url = self.config.settings.broker_url
            if url:
                import redis

                self._counters = RedisCounters(redis.Redis.from_url(url))
            else:
                self._counters = MemoryCounters()
        return self._counters

    def usage(self, connection: Connection) -> Usage | None:
        """A connection's metered reads this month against the plan's quota. None when not known: no
        company yet, or no Redis broker and no read made by this process (the in-process budget
        counts this process's reads since it started)."""
        if connection.realm_id is None:
            return None
        reads = self.budget().metered_reads(connection.realm_id)
        if not self.config.settings.broker_url and not reads["total"]:
            return None
        month = self.clock.now().strftime("%Y-%m")
        return Usage(month, reads["total"], self.quickbooks_settings().metered_read_quota)

    def metric_sources(self, broker: Any | None = None) -> list[Source]:
        """What /metrics shows beside the store: QuickBooks requests, 429s and budget waits, metered
        reads against the quota (with a quickbooks section), the queue (given the broker)."""
        sources: list[Source] = [lambda: counter_families(self.counters(), COUNTERS)]
        if isinstance(self.config.sections.get("quickbooks"), QuickBooksSection):

            def metered() -> list[Family]:
                with self.store.session() as s:
                    connections = s.list_connections()
                quota = self.quickbooks_settings().metered_read_quota
                return metered_families(connections, self.budget(), quota)

            sources.append(metered)
        if broker is not None:
            from engine.workers import queue_families

            sources.append(lambda: queue_families(broker, self.clock.now()))
        return sources

    def alert_check(self) -> AlertCheck | None:
        """The alert check the `alerts:` section configures (None: no channel, alerts are off)."""
        settings = self.config.settings.alerts
        channels = notifiers(settings)
        if not channels:
            return None
        quickbooks = isinstance(self.config.sections.get("quickbooks"), QuickBooksSection)
        usage = self.usage if quickbooks else (lambda _: None)
        return AlertCheck(self.store, channels, settings, self.clock, usage, self.connection)

    def app_connector(self, connection: str | None = None) -> SqlConnector:
        """The app side of `connection` (default: the default tenant's): its tenant's rows only when
        the mapping names tenant columns. Every connection shares one database engine, and the
        mapping is checked against the database once."""
        connection = connection or self.connection
        if connection not in self._apps:
            tenant = self.tenant_of(connection)
            self.refuse_unscoped(tenant)
            first = next(iter(self._apps.values()), None)
            if first is not None:
                self._apps[connection] = first.for_tenant(connection, tenant)
                return self._apps[connection]
            section = self.config.sections.get("app")
            if not isinstance(section, AppSection):
                raise ConfigurationError(
                    f"{self.config.source}: no app section; add one (see `ledgersync init`)"
                )
            mapping = load_mapping(self.config.path(section.mapping))
            engine = make_app_engine(section.database_url, schema=section.schema_name)
            try:
                self._apps[connection] = SqlConnector(
                    mapping, engine, connection=connection, tenant=tenant, clock=self.clock
                )
            except BaseException:
                engine.dispose()  # a mapping refused at start-up leaves no connection open
                raise
        return self._apps[connection]

    def quickbooks_connector(self, connection: str) -> QboConnector:
        if connection not in self._quickbooks:
            with self.store.session() as s:
                stored = s.get_connection(connection)
            if stored is None or stored.realm_id is None:
                raise ConfigurationError(
                    f"connection {connection!r} is not connected; run `ledgersync connect`"
                )
            settings = self.quickbooks_settings(connection)
            client = QboClient(
                self.http(),
                settings,
                stored.realm_id,
                connection,
                self.custodian(connection),
                self.budget(),
                counters=self.counters(),
            )
            mapping = settings.defaults
            if mapping.read_company and stored.status is ConnectionStatus.CONNECTED:
                # Only a usable connection is asked: a revoked one must not stop the others' commands.
                mapping = read_company(client, mapping)
            self._quickbooks[connection] = QboConnector(
                client, mapping, self.policy_for(connection), self.clock, connection
            )
        return self._quickbooks[connection]

    def sides(self, connection: str) -> dict[Side, Connector]:
        return {
            Side.APP: self.app_connector(connection),
            Side.QUICKBOOKS: self.quickbooks_connector(connection),
        }

    def runner(self, connection: str | None = None) -> Runner:
        connection = connection or self.connection
        if connection not in self._runners:
            self._runners[connection] = Runner(
                self.store, self.sides(connection), self.policy_for(connection), self.clock, connection
            )
        return self._runners[connection]

    def match(self, connection: str | None = None) -> MatchReport:
        """Link records that already exist on both sides (by the policy's match keys) before any create."""
        connection = connection or self.connection
        sides = self.sides(connection)
        policy = self.policy_for(connection)
        return initial_match(
            self.store, connection, sides[Side.APP], sides[Side.QUICKBOOKS], policy, self.clock
        )

    def inbox(self) -> QuickBooksInbox:
        """The stored QuickBooks webhooks, each realm read by its connection's QuickBooks connector."""
        return QuickBooksInbox(self.store, self.clock, self.quickbooks_connector)

    def ingest_webhooks(self, connection: str | None = None) -> InboxReport:
        """Read what pending QuickBooks webhooks name (one CDC call per realm) and journal it: every
        company's, or `connection`'s only."""
        return self.inbox().ingest(connection=connection)

    def refresh_tokens(self, now: datetime) -> RefreshReport:
        """The scheduled token job: refresh every token that would expire before the job's next run
        (`schedule.token_refresh_minutes` from now, plus the refresh margin), each connection through
        its own app registration's custodian; one failing connection does not stop the others."""
        every = intervals(self.config.settings.schedule).token_refresh
        groups: dict[tuple[str, str], list[str]] = {}
        for c in self.connections():
            groups.setdefault(_section_key(self.quickbooks_settings(c.id)), []).append(c.id)
        reports = []
        for ids in groups.values():
            settings = self.quickbooks_settings(ids[0])
            reports.append(
                self.custodian(ids[0]).refresh_due(now, within=every + settings.refresh_margin, only=ids)
            )
        return RefreshReport(
            refreshed=tuple(i for r in reports for i in r.refreshed),
            needs_reauth=tuple(i for r in reports for i in r.needs_reauth),
            failed=tuple(i for r in reports for i in r.failed),
        )

    def sweep(self, connection: str) -> int:
        """The daily sweep: re-read all QuickBooks has (inactive records too); duplicates are no-ops."""
        runner = self.runner(connection)
        return sum(len(runner.poll_new(Side.QUICKBOOKS, e, from_start=True)) for e in runner.entities)

    def services(self, reads: ReadRequests | None = None) -> Services:
        """What this process's actors use; `reads` coalesces QuickBooks reads (engine.coalesce)."""
        alerts = self.alert_check()
        return Services(
            check_alerts=None if alerts is None else alerts.run,
            store=self.store,
            policy=self.policy,
            policies=self.policy_for,
            clock=self.clock,
            connectors=self.sides,
            refresh_tokens=self.refresh_tokens,
            sweep=self.sweep,
            inbox=self.inbox(),
            reads=reads,
        )

    def web_routes(self, on_webhook: Callable[[str], object] | None = None) -> list[Any]:
        """The connectors' routes for the web app: the QuickBooks webhook receiver (then
        `on_webhook(connection)` for each company a delivery stored whole names: the runtime asks
        for its read there), OAuth connect (`/connect?tenant=T` for a tenant's company)."""
        routes: list[Any] = []
        section = self.config.sections.get("quickbooks")
        if isinstance(section, QuickBooksSection):
            if section.webhook_verifier_token is not None:
                routes.append(self._webhook_route(section, on_webhook))
            from connectors.quickbooks.connect_routes import connect_routes
            from engine.web.csrf import derive_key

            secret = derive_key(self.config.settings.secret_key, "web/oauth-state")
            routes += connect_routes(
                lambda tenant: self.oauth(tenant=tenant),
                lambda tenant: self.custodian(tenant=tenant),
                self.connection_of,
                secret,
            )
        return routes

    def _webhook_route(self, section: QuickBooksSection, on_webhook: Callable[[str], object] | None) -> Route:
        """The webhook path's first two steps, in order: store the delivery, then ask for its read."""
        assert section.webhook_verifier_token is not None
        token = secret_text(section.webhook_verifier_token)
        max_body = section.webhook_max_body_bytes

        async def webhook(request: Request) -> Response:
            received = await receive_webhook(request, self.store, token, self.clock, max_body)
            if received.complete and on_webhook is not None:
                for realm in received.realms:
                    try:
                        await run_in_threadpool(self._read_realm, on_webhook, realm)
                    except Exception:
                        # The body is in the inbox: the scheduled inbox check reads it.
                        log.exception(
                            "reading QuickBooks now failed; the inbox check reads webhook %d",
                            received.entry_id,
                            extra={"realm": realm},
                        )
            return received.response

        return Route(WEBHOOK_PATH, webhook, methods=["POST"])

    def _read_realm(self, on_webhook: Callable[[str], object], realm: str) -> None:
        connection = self.connection_for_realm(realm)
        if connection is None:
            log.warning("QuickBooks webhook for a company no connection holds", extra={"realm": realm})
            return
        on_webhook(connection)

    def web_app(
        self,
        checks: dict[str, Callable[[], bool]] | None = None,
        on_webhook: Callable[[str], object] | None = None,
        broker: Any | None = None,
    ) -> Any:
        """The web app (an ASGI app): conflicts, health, metrics and the connectors' routes, with its
        CSRF key derived from the configured secret_key so restarts and replicas accept each other's;
        /metrics shows the queue of `broker` when given."""
        from engine.web import WebServices, create_web_app

        settings = self.config.settings
        section = self.config.sections.get("quickbooks")
        services = WebServices(
            store=self.store,
            policy=self.policy,
            policies=self.policy_for,
            clock=self.clock,
            connection=self.connection,
            checks=checks or {},
            secret_key=settings.secret_key,
            web=settings.web,
            sources=self.metric_sources(broker),
            present=self.presenter(),
            identity=self.identity(),
            reconnect_path="/connect" if isinstance(section, QuickBooksSection) else None,
            token_refresh_minutes=settings.schedule.token_refresh_minutes,
        )
        return create_web_app(services, self.web_routes(on_webhook))

    def identity(self) -> OidcClient | None:
        """The console's "Sign in with ..." provider, when the configuration has an `oidc:` section."""
        section = self.config.sections.get("oidc")
        if not isinstance(section, OidcSettings):
            return None
        if self._oidc_http is None:
            self._oidc_http = httpx.Client(follow_redirects=False)
        return OidcClient(self._oidc_http, section)

    def presenter(self) -> Presenter:
        """How the console shows values: the company's currency and time zone, QuickBooks' own field
        labels, and record links from the `web:` templates (QuickBooks Online's pages by default)."""
        web = self.config.settings.web
        section = self.config.sections.get("quickbooks")
        environment = section.environment if isinstance(section, QuickBooksSection) else None

        def record_url(side: Side, entity: EntityType, external_id: str) -> str | None:
            template = web.app_record_url if side is Side.APP else web.quickbooks_record_url
            if template:
                return template.format(entity=entity.value, id=quote(external_id, safe=""))
            if side is Side.QUICKBOOKS and environment is not None:
                return record_page(environment, entity, quote(external_id, safe=""))
            return None

        return Presenter(currency=web.currency, time_zone=web.time_zone, labels=LABELS, record_url=record_url)

    def close(self) -> None:
        if isinstance(self._counters, RedisCounters):
            self._counters.close()
        for app in self._apps.values():
            app.close()
        if self._http is not None:
            self._http.close()
        if self._oidc_http is not None:
            self._oidc_http.close()
        self.store.dispose()
