"""A local stand-in for Entra ID, ARM, Key Vault, the Purview scanning API and Graph, serving a world file.

Used by `purview-bot demo`, the tests and the benchmarks; the product reaches it only through its ordinary
endpoint settings (`Sandbox.env()`), never through a test-only code path.
"""

from sandbox.recording import RecordedRequest
from sandbox.server import Sandbox
from sandbox.world import World, WorldError, load_world

__all__ = ["RecordedRequest", "Sandbox", "World", "WorldError", "load_world"]
