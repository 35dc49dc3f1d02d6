"""The `oidc:` section: which identity provider the console's "Sign in with ..." button uses.

    oidc:
      issuer: https://accounts.google.com           # or https://login.microsoftonline.com/<tenant>/v2.0
      client_id: 1234.apps.googleusercontent.com
      client_secret: {env: OIDC_CLIENT_SECRET}
      label: Google                                 # the button: "Sign in with Google"

Register <web.public_url>/login/sso/callback as the redirect URI at the provider.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator


class OidcSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str
    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    label: str = "your company account"
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    timeout_seconds: float = Field(10.0, gt=0)

    @field_validator("issuer")
    @classmethod
    def _https_issuer(cls, value: str) -> str:
        parts = urlsplit(value)
        local = parts.hostname in ("127.0.0.1", "localhost")
        if parts.scheme != "https" and not (parts.scheme == "http" and local):
            raise ValueError("must be the provider's https address, such as https://accounts.google.com")
        return value.rstrip("/")
