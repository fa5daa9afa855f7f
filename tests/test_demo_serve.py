"""`scripts/demo.py --serve`: the stand-ins alone, for running the tap by hand (found by review: the README
had no way to do it)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_tap


@contextlib.contextmanager
def _serve(settings: Path) -> t.Iterator[subprocess.Popen]:
    """`demo.py --serve`, killed at the end if the test left it running."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "demo.py"), "--serve", "--settings-file",
                             str(settings)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _wait_for(settings: Path, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 180
    while not settings.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert settings.exists(), proc.stderr.read() if proc.poll() is not None else "no settings in time"


def _registry_pids(proc: subprocess.Popen) -> list[int]:
    """The registry processes `proc` started (children whose command is `... serve .../config.yml`)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            cmdline = (status.parent / "cmdline").read_bytes().split(b"\0")
            if int(fields.get("PPid", "0").strip()) == proc.pid and b"serve" in cmdline:
                found.append(int(status.parent.name))
    return found


def test_serve_writes_settings_the_tap_syncs_with_then_stops_on_ctrl_c(tmp_path):
    settings = tmp_path / "emulator.json"
    with _serve(settings) as proc:
        _wait_for(settings, proc)
        config = json.loads(settings.read_text())
        run = run_tap(config, tmp_path)
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.records("packages") and run.records("manifests")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-3000:]
    assert "Ctrl-C stops them." in out and out.rstrip().endswith("stopped")
    assert not settings.exists(), "settings for servers that are gone"


@pytest.mark.skipif(sys.platform != "linux", reason="the registry's parent-death signal is Linux's")
def test_a_killed_serve_takes_its_registry_with_it(tmp_path):
    """Found by review: `kill -9` left the registry running, its parent now PID 1."""
    settings = tmp_path / "emulator.json"
    with _serve(settings) as proc:
        _wait_for(settings, proc)
        (registry,) = _registry_pids(proc)
        proc.kill()
        proc.communicate(timeout=30)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{registry}").exists() and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(registry, os.WNOHANG)  # (reaped by init, not by this process)
            time.sleep(0.1)
        assert not Path(f"/proc/{registry}").exists() or "Z" in Path(f"/proc/{registry}/stat").read_text().split()[2]


def test_two_serves_on_one_settings_file_leave_the_running_ones_settings(tmp_path):
    """Found by review: stopping one instance deleted the file the other had written and was still serving."""
    settings = tmp_path / "emulator.json"
    with _serve(settings) as first:
        _wait_for(settings, first)
        written = settings.read_text()
        with _serve(settings) as second:
            deadline = time.monotonic() + 180
            while settings.read_text() == written and second.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            seconds = settings.read_text()
            assert seconds != written
            first.send_signal(signal.SIGINT)
            first.communicate(timeout=60)
            assert settings.read_text() == seconds, "the second instance's settings were removed"
            second.send_signal(signal.SIGINT)
            second.communicate(timeout=60)
            assert not settings.exists()


def test_sigterm_while_starting_stops_it_cleanly(tmp_path):
    """Found by review: a SIGTERM before the handler was installed left the registry running."""
    settings = tmp_path / "emulator.json"
    with _serve(settings) as proc:
        deadline = time.monotonic() + 120
        while not _registry_pids(proc) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the registry is up: the demo organisation is being pushed
        (registry,) = _registry_pids(proc)
        assert not settings.exists(), "too late: started already"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert "Traceback" not in err and out.rstrip().endswith("stopped")
    assert not settings.exists()
    assert not Path(f"/proc/{registry}").exists() or "Z" in Path(f"/proc/{registry}/stat").read_text().split()[2]
