"""The app side of the sync: a SQL connector driven by a YAML table mapping (any SQLAlchemy database).

connector = SqlConnector.open("mapping.yaml", "postgresql+psycopg://.../app", connection="acme")
"""

from connectors.app.connector import SqlConnector
from connectors.app.mapping import Mapping, load_mapping, parse_mapping

__all__ = ["Mapping", "SqlConnector", "load_mapping", "parse_mapping"]
