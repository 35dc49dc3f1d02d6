"""The sync half of the QuickBooks connector: writes (with DisplayName collisions per policy)."""
