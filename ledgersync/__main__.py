"""`python -m ledgersync` runs the CLI, as the `ledgersync` script does."""

from ledgersync.cli import main

main()
