"""The example invoicing app: its schema, seed data, table mapping, and a command to edit it as a user."""

from examples.invoicing.seed import MAPPING, create_example_db, create_schema

__all__ = ["MAPPING", "create_example_db", "create_schema"]
