"""The Singer SDK's standard tap tests, run against the local world."""

from __future__ import annotations

import atexit

from singer_sdk.testing import get_tap_test_class

from tap_ghcr.tap import TapGHCR
from tests.emulator.dataset import sample_dataset
from tests.emulator.world import start_world

# The SDK builds its test class at import time, so its world starts here, once.
_WORLD = start_world(sample_dataset())
atexit.register(_WORLD.stop)

TestTapGHCR = get_tap_test_class(TapGHCR, config=_WORLD.config())
