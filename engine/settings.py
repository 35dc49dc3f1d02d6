"""`ledgersync.yaml`: the one configuration file, validated once at the edge.

    state_url: sqlite:///ledgersync.db      # relative SQLite paths are next to this file
    broker_url: redis://127.0.0.1:6379/0    # omit for the in-process broker (embedded mode)
    connection: default                     # the default tenant's connection id
    policy: policies.yaml                   # omit for the shipped default
    tenants: {acme: {policy: policies/acme.yaml}, beta: {quickbooks: {environment: sandbox}}}
    secret_key: {env: LEDGERSYNC_SECRET_KEY}
    quickbooks: {...}                       # validated by the QuickBooks connector's settings
    app: {...}                              # validated by the app connector's settings
    oidc: {issuer: ..., client_id: ...}     # optional "Sign in with ..." for the console (connectors/oidc)
    schedule: {app_poll_seconds: 5, app_probe_seconds: 1, quickbooks_read_window_seconds: 2, ...}
    web: {host: 127.0.0.1, port: 8000, public_url: https://sync.example.com, api_token: {env: ...},
          time_zone: America/New_York, currency: USD, app_record_url: https://app.example.com/{entity}s/{id}}
    logging: {format: json, level: INFO}   # default: plain lines at WARNING
    alerts: {webhook_url: https://hooks.slack.com/..., email: {host: smtp.example.com, ...}}

Any value may be `{env: NAME}` (optionally with `default:`), read from the environment the caller
passes in; secrets belong there, never inline. The engine knows no connector: the composition module
passes the models that validate the `quickbooks` and `app` sections, and every problem of every
section is reported in one pass, each with its file position and key path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.configfile import (
    ConfigFileError,
    Problem,
    YamlSyntaxError,
    problem_line,
    problems_from,
    read_text,
    read_yaml,
)

DEFAULT_CONFIG = "ledgersync.yaml"


#: Binds a browser on this machine reaches as localhost (names to compare, not addresses to bind).
_LOCAL_HOSTS = frozenset({"127.0.0.1", "0.0.0.0", "::", "::1", "localhost", ""})  # noqa: S104


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


#: (read window, read delay) in seconds of each `schedule.quickbooks_reads`. Webhooks carry only ids and
#: every read is metered, so a schedule chooses between speed and reads: one read per R records of a
#: trickle of r edits a second needs the read to wait R / r seconds (25 records at one a second: 25 s),
#: while a change in the app within 5 s needs a read every few seconds. `prompt` takes the seconds,
#: `frugal` the reads: its minute covers a trickle down to 25 records a minute at 1 read per 25.
READ_SCHEDULES: dict[str, tuple[float, float]] = {"prompt": (2.0, 0.0), "frugal": (60.0, 60.0)}


class Schedule(_Strict):
    #: The full read of the app's changes: the guarantee behind the probe and the PostgreSQL listener.
    app_poll_seconds: float = Field(5.0, gt=0)
    #: The cheap "anything new?" check of the app database (an indexed max() per table); what moved
    #: is polled at once.
    app_probe_seconds: float = Field(1.0, gt=0)
    #: How QuickBooks changes announced by webhooks are read: `prompt` (the default) reads an idle
    #: company at once and coalesces over 2 s, so a change is in the app in seconds and a steady
    #: trickle costs about one metered read per 2 s; `frugal` waits a minute after the first change
    #: and reads once for everything announced meanwhile: at most one read per company per minute of
    #: activity (a trickle of 30 edits over 50 s: one read), each change in the app within about a
    #: minute. No schedule gives both (see READ_SCHEDULES); the two settings below override it.
    quickbooks_reads: Literal["prompt", "frugal"] = "prompt"
    #: QuickBooks reads of one company are coalesced over this window: webhook deliveries within it
    #: cost one CDC call. A company idle that long is read at once; 0 reads at every delivery.
    quickbooks_read_window_seconds: float = Field(2.0, ge=0)
    #: How long a read waits after the first change it is asked for, so that the changes behind it
    #: share it. 0 reads an idle company at once.
    quickbooks_read_delay_seconds: float = Field(0.0, ge=0)
    quickbooks_poll_seconds: float = Field(300.0, gt=0)
    kick_seconds: float = Field(60.0, gt=0)
    #: How soon a conflict resolved from the CLI or another web replica is written (the ops it made).
    dispatch_seconds: float = Field(2.0, gt=0)
    token_refresh_minutes: float = Field(45.0, gt=0)
    sweep_hours: float = Field(24.0, gt=0)
    #: How often the alert conditions are checked (and a notification that failed is tried again).
    alerts_seconds: float = Field(60.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _named_reads(cls, data: Any) -> Any:
        """`quickbooks_reads` fills in the read window and delay that are not given."""
        if not isinstance(data, Mapping):
            return data
        name = data.get("quickbooks_reads", "prompt")
        if not isinstance(name, str) or name not in READ_SCHEDULES:
            return data  # the Literal reports it, naming the choices
        window, delay = READ_SCHEDULES[name]
        return {"quickbooks_read_window_seconds": window, "quickbooks_read_delay_seconds": delay, **data}


class Web(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, gt=0, lt=65536)
    #: The address QuickBooks and browsers reach (for OAuth redirects and webhooks), if not host:port.
    public_url: str | None = None
    #: Lets scripts use the JSON API: they send `Authorization: Bearer <api_token>` instead of the
    #: page's CSRF token. None: only the app's own pages can change anything.
    api_token: SecretStr | None = None
    #: The company's time zone (an IANA name): the console shows dates and times in it.
    time_zone: str = "UTC"
    #: The company's home currency: the console shows amounts with it.
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    #: Opens a record in the app: an address with {entity} and {id}, e.g.
    #: https://app.example.com/{entity}s/{id}. None: the console shows no link to the app.
    app_record_url: str | None = None
    #: Opens a record in QuickBooks, with {entity} and {id}; None: QuickBooks Online's own pages.
    quickbooks_record_url: str | None = None

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("must be a time zone name such as America/New_York or Europe/London") from None
        return value

    @field_validator("public_url")
    @classmethod
    def _absolute_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an absolute http(s) address such as https://sync.example.com")
        return value.rstrip("/")

    @property
    def base_url(self) -> str:
        """Where browsers reach the app: public_url, else host:port (a loopback or any-address bind is
        reached as localhost, the name Intuit accepts in development redirect URIs)."""
        if self.public_url:
            return self.public_url
        host = "localhost" if self.host in _LOCAL_HOSTS else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) address such as https://hooks.example.com/...")
    return value


class LoggingSettings(_Strict):
    """`logging:`: plain lines (the message) or JSON lines (the message and its context fields)."""

    format: Literal["plain", "json"] = "plain"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class Email(_Strict):
    """`alerts.email:`: an SMTP server to send alerts through (STARTTLS unless `starttls: false`)."""

    host: str = Field(description="the SMTP server's host name")
    port: int = Field(587, gt=0, lt=65536)
    starttls: bool = True
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(description="the From address, such as ledgersync@example.com")
    to: list[str] = Field(min_length=1, description="a list of addresses to send alerts to")

    @field_validator("sender", "to")
    @classmethod
    def _addresses(cls, value: str | list[str]) -> str | list[str]:
        for address in [value] if isinstance(value, str) else value:
            if "@" not in address.strip(" <>"):
                raise ValueError(f"{address!r} is not an e-mail address")
        return value


class Alerts(_Strict):
    """`alerts:`: where to say that something needs a person, and when a condition is one."""

    #: Slack-compatible: receives `{"text": "..."}` as JSON.
    webhook_url: str | None = None
    email: Email | None = None
    #: A conflict open longer than this is an incident.
    conflict_hours: float = Field(24.0, gt=0)
    #: Metered reads this month at this share of the plan's quota (quickbooks.metered_read_quota).
    quota_percent: float = Field(80.0, gt=0, le=100)
    #: How long one notification may take before it counts as failed (tried again at the next check).
    timeout_seconds: float = Field(10.0, gt=0)

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @property
    def enabled(self) -> bool:
        return self.webhook_url is not None or self.email is not None


#: What a tenant's name may be: it becomes part of connection ids, URLs and log fields.
TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
#: The tenant of the configuration's own connection (`connection:`), as before there were several.
DEFAULT_TENANT = "default"


class Tenant(_Strict):
    """`tenants.<name>:`: what one tenant of the app does differently from the defaults. A tenant
    needs no entry to connect (`ledgersync connect --tenant T`); it gets the defaults."""

    #: The connection id for this tenant (default: `tenant-<name>`; the default tenant's is `connection`).
    connection: str | None = Field(None, pattern=TENANT_PATTERN)
    #: Its policy file, relative to the configuration file (default: `policy`).
    policy: str | None = None
    #: Keys of the `quickbooks:` section this tenant's company uses instead (a sandbox company among
    #: production ones: environment, client_id, client_secret), validated with the section.
    quickbooks: dict[str, Any] | None = Field(None, repr=False)


class Settings(_Strict):
    state_url: str = "sqlite:///ledgersync.db"
    broker_url: str | None = None
    #: The default tenant's connection id (the one connection of a single-company deployment).
    connection: str = "default"
    policy: str | None = None
    #: Per-tenant overrides, by tenant name (see Tenant); tenants not named here use the defaults.
    tenants: dict[str, Tenant] = Field(default_factory=dict)
    secret_key: SecretStr | None = None
    #: Raw sections, validated by the connectors' own models into `Config.sections` (and never printed:
    #: they hold secrets resolved from the environment).
    quickbooks: dict[str, Any] | None = Field(None, repr=False)
    app: dict[str, Any] | None = Field(None, repr=False)
    #: The console's single sign-on (OpenID Connect), validated by connectors/oidc's settings.
    oidc: dict[str, Any] | None = Field(None, repr=False)
    schedule: Schedule = Schedule()
    web: Web = Web()
    logging: LoggingSettings = LoggingSettings()
    alerts: Alerts = Alerts()

    @field_validator("tenants")
    @classmethod
    def _tenant_names(cls, value: dict[str, Tenant]) -> dict[str, Tenant]:
        for name in value:
            if not re.match(TENANT_PATTERN, name):
                raise ValueError(f"tenant {name!r}: letters, digits, '_', '.', '-' (up to 64), not leading")
        ids = [connection_id(name, "", value) for name in value]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"two tenants share the connection id {twice[0]!r}")
        return value

    def connection_of(self, tenant: str) -> str:
        """The connection id of `tenant` (ConfigurationError-free: the name is checked by the caller)."""
        return connection_id(tenant, self.connection, self.tenants)


def connection_id(tenant: str, default: str, tenants: Mapping[str, Tenant]) -> str:
    """A tenant's connection id: as configured, the default connection for the default tenant, else
    `tenant-<name>`."""
    configured = tenants.get(tenant)
    if configured is not None and configured.connection:
        return configured.connection
    return default if tenant == DEFAULT_TENANT else f"tenant-{tenant}"


@dataclass(frozen=True)
class Config:
    settings: Settings
    #: The validated `quickbooks` and `app` sections, by name (absent when the file has none).
    sections: Mapping[str, BaseModel] = field(default_factory=dict)
    source: str = "(defaults)"
    directory: Path = field(default_factory=Path.cwd)
    #: Per tenant, the sections it overrides (`tenants.<name>.quickbooks`), validated merged over the
    #: file's own section.
    tenant_sections: Mapping[str, Mapping[str, BaseModel]] = field(default_factory=dict)

    def path(self, value: str) -> Path:
        """A path from the file, relative to the file's directory."""
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else self.directory / candidate


def load_config(
    path: str | os.PathLike[str] | None,
    environ: Mapping[str, str],
    sections: Mapping[str, type[BaseModel]],
) -> Config:
    """Read and validate the configuration file; no file at the default path means the embedded defaults."""
    if path is None:
        if not Path(DEFAULT_CONFIG).exists():
            return Config(Settings())
        path = DEFAULT_CONFIG
    source = os.fspath(path)
    text = read_text(source, "configuration")
    directory = Path(source).resolve().parent
    try:
        document = read_yaml(text)
    except YamlSyntaxError as error:
        where = f"{source}:{error.line}:{error.column}" if error.line else source
        raise ConfigFileError("configuration", source, [f"{where}: invalid YAML: {error.problem}"]) from None
    problems: list[Problem] = []
    data = _resolve_env(document.data if document.data is not None else {}, environ, (), problems)
    settings: Settings | None = None
    try:
        settings = Settings.model_validate(data)
    except ValidationError as error:
        problems += problems_from(error, Settings)
    validated: dict[str, BaseModel] = {}
    if isinstance(data, dict):
        for name, model in sections.items():
            if isinstance(data.get(name), dict):
                try:
                    validated[name] = model.model_validate(data[name])
                except ValidationError as error:
                    problems += [Problem((name, *p.path), p.expected) for p in problems_from(error, model)]
    tenant_sections = _tenant_sections(data, sections, problems)
    if problems or settings is None:
        # A missing variable also fails validation at its key; say it once, the useful way.
        unset = {p.path for p in problems if p.expected.startswith("expected the environment variable")}
        problems = [
            p for p in problems if p.path not in unset or p.expected.startswith("expected the environ")
        ]
        problems.sort(key=lambda problem: document.position(problem.path) or (0, 0))
        raise ConfigFileError("configuration", source, [problem_line(source, document, p) for p in problems])
    anchored = _anchor_sqlite(settings.state_url, directory)
    settings = settings.model_copy(update={"state_url": anchored, **dict.fromkeys(validated)})
    return Config(settings, validated, source, directory, tenant_sections)


def _tenant_sections(
    data: Any, sections: Mapping[str, type[BaseModel]], problems: list[Problem]
) -> dict[str, dict[str, BaseModel]]:
    """Each tenant's section overrides, merged over the file's section and validated by its model."""
    found: dict[str, dict[str, BaseModel]] = {}
    tenants = data.get("tenants") if isinstance(data, dict) else None
    if not isinstance(tenants, dict):
        return found
    for tenant, given in tenants.items():
        for name, model in sections.items():
            override = given.get(name) if isinstance(given, dict) else None
            if not isinstance(override, dict):
                continue
            base = data.get(name) if isinstance(data.get(name), dict) else {}
            try:
                found.setdefault(str(tenant), {})[name] = model.model_validate({**base, **override})
            except ValidationError as error:
                at = ("tenants", tenant, name)
                problems += [Problem((*at, *p.path), p.expected) for p in problems_from(error, model)]
    return found


def _resolve_env(
    value: Any, environ: Mapping[str, str], path: tuple[str | int, ...], problems: list[Problem]
) -> Any:
    if isinstance(value, dict):
        if "env" in value and set(value) <= {"env", "default"}:
            name = value["env"]
            if isinstance(name, str) and name in environ:
                return environ[name]
            if "default" in value:
                return value["default"]
            problems.append(Problem(path, f"expected the environment variable {name} to be set"))
            return None
        return {k: _resolve_env(v, environ, (*path, k), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, environ, (*path, i), problems) for i, v in enumerate(value)]
    return value


def _anchor_sqlite(url: str, directory: Path) -> str:
    """`sqlite:///relative.db` means next to the configuration file, not the current directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        return prefix + str(directory / url[len(prefix) :])
    return url
