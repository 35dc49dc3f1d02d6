"""python -m examples.invoicing DATABASE_URL [SCHEMA]: create the example app's tables and seed data."""

from __future__ import annotations

import sys

from examples.invoicing.seed import create_example_db

if len(sys.argv) not in (2, 3):
    raise SystemExit("usage: python -m examples.invoicing DATABASE_URL [SCHEMA]")
create_example_db(sys.argv[1], schema=sys.argv[2] if len(sys.argv) == 3 else None)
print(f"example invoicing app created in {sys.argv[1]}")
