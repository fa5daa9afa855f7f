"""Where the shared reference material lives: `../shared/reference` beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

REFERENCE = Path(os.environ.get("TAP_GHCR_REFERENCE",
                                Path(__file__).resolve().parents[2] / "shared" / "reference"))
GITHUB_OPENAPI = REFERENCE / "github" / "openapi-packages.json"
OCI_SAMPLES = REFERENCE / "oci" / "samples"
OCI_SCHEMAS = REFERENCE / "oci" / "schemas"
