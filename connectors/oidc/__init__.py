"""OpenID Connect sign-in for the review console (Google, Microsoft, any standard identity provider)."""

from connectors.oidc.client import OidcClient
from connectors.oidc.settings import OidcSettings

__all__ = ["OidcClient", "OidcSettings"]
