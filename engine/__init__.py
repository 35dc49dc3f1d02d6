"""ledgersync engine: canonical model, reconciler, state store and runtime."""
