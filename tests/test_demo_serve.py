"""`scripts/demo.py --serve`: the stand-ins alone, for running the tap by hand (found by review: the README
had no way to do it)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, run_tap


def test_serve_writes_settings_the_tap_syncs_with_then_stops_on_ctrl_c(tmp_path):
    settings = tmp_path / "emulator.json"
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "demo.py"), "--serve", "--settings-file",
                             str(settings)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while not settings.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert settings.exists(), proc.stderr.read() if proc.poll() is not None else "no settings in time"
        config = json.loads(settings.read_text())
        run = run_tap(config, tmp_path)
        assert run.returncode == 0, run.stderr[-3000:]
        assert run.records("packages") and run.records("manifests")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    assert "Ctrl-C stops them." in out and out.rstrip().endswith("stopped")
    assert not settings.exists(), "settings for servers that are gone"
