"""The reliability suite runs against a whole qbsync in one process (tests/world.py)."""

from tests.world import world  # noqa: F401  (the fixture)
