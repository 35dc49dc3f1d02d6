"""The `app:` section of ledgersync.yaml: where the app's database is and which mapping describes it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, SecretStr


class AppSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    #: A SQLAlchemy URL; it may hold a password, so give it as `{env: NAME}`.
    database_url: SecretStr
    #: The table mapping file, relative to ledgersync.yaml.
    mapping: str = "mapping.yaml"
    #: PostgreSQL only: the schema holding the app's tables (its search_path).
    db_schema: str | None = None
