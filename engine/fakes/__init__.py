"""In-tree fakes of the engine's ports: real, deterministic code with fault-injection knobs."""

from engine.fakes.connector import FakeConnector

__all__ = ["FakeConnector"]
