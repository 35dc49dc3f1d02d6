"""Benchmarks of ledgersync on the QuickBooks emulator (with QuickBooks' real limits on a 6-second
minute): backfill throughput, CPU per event, metered reads per change, and latency. Not part of the
test run; `python -m bench --help` and bench/README.md say how to run them and what each figure means.
"""
