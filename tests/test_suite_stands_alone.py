"""The suite's own guarantees: it runs from a clone alone, and collecting it starts nothing."""

from __future__ import annotations

import importlib
import sys

from tests.conftest import ROOT
from tests.reference import GITHUB_OPENAPI, OCI_SAMPLES, OCI_SCHEMAS


def test_reference_data_is_in_the_repository():
    data = ROOT / "tests" / "data"
    for path in (GITHUB_OPENAPI, OCI_SAMPLES, OCI_SCHEMAS):
        assert path.exists() and data in path.parents, path
    assert (data / "SOURCES.md").is_file()
    assert len(list(OCI_SAMPLES.glob("*.json"))) >= 20 and len(list(OCI_SCHEMAS.glob("*.json"))) >= 6


def test_nothing_reads_outside_the_checkout():
    """`../shared` exists only beside the original checkout, not beside a clone."""
    offenders = []
    for folder in ("tests", "scripts", ".ci"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix not in (".json", ".pyc") and "data" not in path.parts:
                text = path.read_text(errors="replace")
                if "shared/reference" in text or "../shared" in text or '"shared"' in text:
                    offenders.append(str(path.relative_to(ROOT)))
    offenders.remove("tests/test_suite_stands_alone.py")  # this file names what it looks for
    assert offenders == []


def test_importing_the_sdk_test_module_starts_no_world(monkeypatch):
    """tests/test_core.py builds the SDK's test class at import: without a world (no registry needed)."""
    import tests.emulator.world as world_module

    def no_world(*args: object, **kwargs: object) -> None:
        raise AssertionError("a world was started at import")

    monkeypatch.setattr(world_module, "start_world", no_world)
    monkeypatch.delitem(sys.modules, "tests.test_core", raising=False)
    importlib.import_module("tests.test_core")
