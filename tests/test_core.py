"""The Singer SDK's standard tap tests, run against the session's local world.

The SDK builds its test class at import, but only needs a config that validates
then (it lists the streams; no request). The world (the sample organisation plus a
signed, attested image, so that every stream, `sbom_packages` too, has records)
starts when the tests run: the
config dict the SDK's runner holds is pointed at it by an autouse fixture, which
pytest runs before the class's `runner` fixture. So a machine without
`docker-registry` gets failing tests, not a collection error for the whole suite.
"""

from __future__ import annotations

import typing as t

import pytest
from singer_sdk.testing import get_tap_test_class

from tap_ghcr.tap import TapGHCR
from tests.emulator.dataset import Dataset, sample_dataset
from tests.emulator.world import start_world

#: Shared with the SDK's runner; a placeholder until the world is up (nothing listens on port 9).
CONFIG: dict[str, t.Any] = {"token": "placeholder", "organizations": ["acme"],
                            "api_url": "http://127.0.0.1:9", "registry_url": "http://127.0.0.1:9"}


def sample_with_supply_chain() -> Dataset:
    """The sample organisation plus one signed, attested image with an SBOM: every stream has records."""
    dataset = sample_dataset()
    dataset.package("acme", "signed", repository="acme/signed").supply_chain().signed_release(tags=["1.0"])
    return dataset


class TestTapGHCR(get_tap_test_class(TapGHCR, config=CONFIG)):  # type: ignore[misc]
    @pytest.fixture(scope="class", autouse=True)
    def _config_points_at_the_world(self) -> t.Iterator[None]:
        world = start_world(sample_with_supply_chain())
        CONFIG.clear()
        CONFIG.update(world.config())
        yield
        world.stop()
