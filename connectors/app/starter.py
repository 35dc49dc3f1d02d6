"""`ledgersync init`: the commented starter files it writes."""

from __future__ import annotations

from pathlib import Path

from connectors.app.database import make_engine
from connectors.app.proposal import proposal_yaml

CONFIG = """\
# ledgersync configuration, written by `ledgersync init`. Any value may be {env: NAME}:
# keep secrets in the environment, never in this file.

# The state store: links, bases, journal, ops. SQLite next to this file, or PostgreSQL for many workers.
state_url: sqlite:///ledgersync.db
# broker_url: redis://127.0.0.1:6379/0     # leave out to run everything in one process
connection: default
policy: policies.yaml                      # conflict and direction rules (check: ledgersync policy check)
secret_key: {env: LEDGERSYNC_SECRET_KEY}   # encrypts the QuickBooks tokens at rest, signs console sessions

# Your app's database and how its tables map to customers, items, invoices and payments.
app:
  database_url: {env: APP_DATABASE_URL}   # e.g. postgresql+psycopg://user@host/app
  mapping: mapping.yaml                   # see docs/app-connector.md
  # schema_name: public                    # PostgreSQL: the schema holding the app's tables

# QuickBooks Online: see the QuickBooks connector's documentation for this section.
# quickbooks:
#   environment: sandbox
#   client_id: {env: QBO_CLIENT_ID}
#   client_secret: {env: QBO_CLIENT_SECRET}
"""
POLICY_HEADER = "# Your sync policy, copied from the shipped default by `ledgersync init`: edit freely.\n\n"
EXAMPLE_MAPPING = Path(__file__).resolve().parents[2] / "examples" / "invoicing" / "mapping.yaml"


def write_starter(
    directory: Path, policy: str, database_url: str | None = None, *, force: bool = False
) -> list[Path]:
    """Write ledgersync.yaml, policies.yaml (`policy`'s text) and mapping.yaml into `directory`.

    With `database_url` the mapping is proposed from the tables found there; otherwise it is the
    example app's mapping, as a model. Existing files are kept unless `force`; returns what it wrote.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if database_url is not None:
        engine = make_engine(database_url)
        try:
            mapping = proposal_yaml(engine)
        finally:
            engine.dispose()
    else:
        mapping = "# The example app's mapping, as a model: replace tables and columns with yours.\n" + (
            EXAMPLE_MAPPING.read_text(encoding="utf-8")
            if EXAMPLE_MAPPING.exists()
            else "version: 1\nentities: {}\n"
        )
    files = {
        "ledgersync.yaml": CONFIG,
        "policies.yaml": POLICY_HEADER + policy,
        "mapping.yaml": mapping,
    }
    written = []
    for name, text in files.items():
        path = directory / name
        if path.exists() and not force:
            continue
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
