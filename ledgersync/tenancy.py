"""Tenants and their connections: which connection serves which tenant of the app, and what each
tenant configures for itself (its policy, its QuickBooks section), loaded and checked at start-up."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pydantic import BaseModel

from engine.errors import ConfigurationError
from engine.settings import DEFAULT_TENANT, TENANT_PATTERN, Config
from engine.state import Connection
from policies import PolicySet, load_policy

_TENANT = re.compile(TENANT_PATTERN)
#: The prefix of a connection id derived from its tenant's name.
PREFIX = "tenant-"


def check_tenant(tenant: str) -> str:
    """`tenant` if it is a valid tenant name, else ConfigurationError saying what one looks like."""
    if not _TENANT.match(tenant):
        raise ConfigurationError(
            f"tenant {tenant!r} is not a valid name",
            detail="letters, digits, '_', '.' and '-', at most 64, starting with a letter or digit",
        )
    return tenant


@dataclass
class Tenancy:
    """The configuration's tenants. Every tenant gets the defaults unless `tenants:` says otherwise."""

    config: Config
    default_policy: PolicySet
    #: By tenant: the tenants with a policy file of their own.
    policies: dict[str, PolicySet] = field(default_factory=dict)

    @classmethod
    def load(cls, config: Config) -> Tenancy:
        """Read every policy file the configuration names now, so a bad one stops the start, naming
        the file and key (load_policy's errors) and the tenant it is for."""
        settings = config.settings
        default = load_policy(config.path(settings.policy)) if settings.policy else PolicySet.default()
        policies: dict[str, PolicySet] = {}
        for tenant, configured in settings.tenants.items():
            if configured.policy is None:
                continue
            try:
                policies[tenant] = load_policy(config.path(configured.policy))
            except ConfigurationError as error:
                raise ConfigurationError(
                    f"tenants.{tenant}.policy: {error.message}", detail=error.detail
                ) from None
        return cls(config, default, policies)

    def connection_of(self, tenant: str) -> str:
        """The connection id serving `tenant`: configured, `connection` for the default tenant, else
        `tenant-<name>`."""
        return self.config.settings.connection_of(check_tenant(tenant))

    def tenant_of(self, connection: str, stored: Connection | None = None) -> str:
        """The tenant `connection` serves: as stored when it is, else as its id says."""
        if stored is not None:
            return stored.app_tenant
        settings = self.config.settings
        if connection == settings.connection:
            return DEFAULT_TENANT
        for tenant, configured in settings.tenants.items():
            if configured.connection == connection:
                return tenant
        if connection.startswith(PREFIX) and _TENANT.match(connection[len(PREFIX) :]):
            return connection[len(PREFIX) :]
        return DEFAULT_TENANT

    def policy(self, tenant: str) -> PolicySet:
        return self.policies.get(tenant, self.default_policy)

    def section(self, tenant: str, name: str) -> BaseModel | None:
        """The `name` section as `tenant` sees it (its overrides merged), None when the file has none."""
        overridden = self.config.tenant_sections.get(tenant, {}).get(name)
        return overridden if overridden is not None else self.config.sections.get(name)
