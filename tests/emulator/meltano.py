"""Running the real `meltano` (installed by scripts/setup in .venv-meltano) against a World."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.emulator.world import World

ROOT = Path(__file__).resolve().parents[2]
MELTANO = ROOT / ".venv-meltano" / "bin" / "meltano"


def meltano_env(world: World, **extra: str) -> dict[str, str]:
    """Point the project's tap-ghcr at the world through Meltano's `TAP_GHCR_*` variables."""
    config = world.config()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_GHCR_", "TARGET_", "GITHUB_TOKEN"))}
    env.update({
        "TAP_GHCR_TOKEN": config["token"],
        "TAP_GHCR_API_URL": config["api_url"],
        "TAP_GHCR_REGISTRY_URL": config["registry_url"],
        "TAP_GHCR_ORGANIZATIONS": json.dumps(config["organizations"]),
        "TAP_GHCR_USERS": json.dumps(config["users"]),
        "TAP_GHCR_MAX_WORKERS": "4",
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        **extra,
    })
    return env


def meltano_run(world: World, loader: str, **extra: str) -> subprocess.CompletedProcess:
    """`meltano run tap-ghcr <loader>` from scratch (no state read or written)."""
    if not MELTANO.exists():
        raise RuntimeError(f"{MELTANO} is missing: run ./scripts/setup")
    return subprocess.run(
        [str(MELTANO), "run", "--full-refresh", "--no-state-update", "tap-ghcr", loader],
        cwd=ROOT, env=meltano_env(world, **extra), capture_output=True, text=True, timeout=600, check=False,
    )
