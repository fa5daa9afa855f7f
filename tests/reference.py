"""Where the tests' reference data lives: `tests/data/`, in the repository (see its SOURCES.md)."""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
GITHUB_OPENAPI = DATA / "github" / "openapi-packages.json"
OCI_SAMPLES = DATA / "oci" / "samples"
OCI_SCHEMAS = DATA / "oci" / "schemas"
