"""The composition layer: the CLI, the wiring of connectors, policies and the store into a runtime, the demo.

Every import points down from here: ``ledgersync`` may use ``connectors``, ``policies``, ``examples``
and ``engine``; nothing below imports ``ledgersync`` (``tests/test_architecture.py`` holds that).
"""
