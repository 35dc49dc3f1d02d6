"""Tests of the in-tree fakes beyond the connector contract: the knobs, totals, the user API, clocks."""
