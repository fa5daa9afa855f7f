"""Fixtures: the local world (REST emulator, token server, real registry) and tap runners."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tap_ghcr.attestations import whole
from tests.emulator.dataset import Dataset, sample_dataset
from tests.emulator.proxy import Faults, start_proxy
from tests.emulator.servers import LoggedServer
from tests.emulator.world import World, start_world

ROOT = Path(__file__).resolve().parent.parent
#: The hidden `retry_base_seconds` setting for subprocess runs: the production retry policy, scaled down.
FAST_RETRY_BASE = 0.02


def tap_executable() -> str:
    """The installed console script next to this interpreter."""
    candidate = Path(sys.executable).with_name("tap-ghcr")
    return str(candidate) if candidate.exists() else "tap-ghcr"


@dataclass
class TapRun:
    returncode: int
    stdout: str
    stderr: str
    messages: list[dict] = field(default_factory=list)

    def records(self, stream: str) -> list[dict]:
        return [m["record"] for m in self.messages if m["type"] == "RECORD" and m["stream"] == stream]

    @property
    def states(self) -> list[dict]:
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict:
        return self.states[-1] if self.states else {}


def run_tap(config: dict, tmp_path: Path, *, state: dict | None = None, catalog: dict | None = None,
            args: t.Sequence[str] = (), env: dict[str, str] | None = None, timeout: float = 120) -> TapRun:
    """Run the installed `tap-ghcr` as a process and parse its Singer output."""
    config_file = tmp_path / f"config-{os.urandom(4).hex()}.json"
    config = {"retry_base_seconds": FAST_RETRY_BASE, **config}  # same retry path, shorter waits
    config_file.write_text(json.dumps(config))
    cmd = [tap_executable(), "--config", str(config_file), *args]
    if state is not None:
        state_file = tmp_path / f"state-{os.urandom(4).hex()}.json"
        state_file.write_text(json.dumps(state))
        cmd += ["--state", str(state_file)]
    if catalog is not None:
        catalog_file = tmp_path / f"catalog-{os.urandom(4).hex()}.json"
        catalog_file.write_text(json.dumps(catalog))
        cmd += ["--catalog", str(catalog_file)]
    full_env = {k: v for k, v in os.environ.items() if k != "GITHUB_TOKEN"}
    full_env.update(env or {})
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=full_env, check=False)
    messages = []
    if "--discover" not in args and "--about" not in args:
        messages = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return TapRun(proc.returncode, proc.stdout, proc.stderr, messages)


def catalog_selecting(config: dict, tmp_path: Path, streams: set[str]) -> dict:
    """The discovered catalog with only `streams` selected."""
    found = run_tap(config, tmp_path, args=["--discover"])
    catalog = json.loads(found.stdout)
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == []:
                meta["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


@pytest.fixture(params=["whole", "streamed"])
def both_readers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a document test with small documents decoded whole (as the tap reads them) and streamed
    (as it reads documents over `whole.WHOLE_MAX_BYTES`): the two readers must agree."""
    if request.param == "streamed":
        monkeypatch.setattr(whole, "WHOLE_MAX_BYTES", -1)
    return request.param


@pytest.fixture(scope="session")
def world() -> t.Iterator[World]:
    """The sample organisation, pushed to a real registry. Read-only: do not mutate."""
    w = start_world(sample_dataset())
    yield w
    w.stop()


@pytest.fixture
def fresh_world() -> t.Iterator[t.Callable[..., World]]:
    """Start a private world a test may change; stopped at the end of the test."""
    started: list[World] = []

    def start(dataset: Dataset | None = None, **kwargs: t.Any) -> World:
        w = start_world(dataset or sample_dataset(), **kwargs)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


@pytest.fixture
def fault_proxy() -> t.Iterator[t.Callable[..., LoggedServer]]:
    """Start fault-injecting proxies (tests/emulator/proxy.py) in front of servers; stopped after the test.

    `fault_proxy(target_url, Faults(...))` returns the proxy; its `url` goes in the tap's config and its
    `log` lists what passed through. Keep the `Faults` object to read `injected` afterwards.
    """
    started: list[LoggedServer] = []

    def start(target: str, faults: Faults | None = None) -> LoggedServer:
        server, _ = start_proxy(target, faults)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
