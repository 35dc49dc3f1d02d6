"""Connectors: the app side and the QuickBooks Online side."""
