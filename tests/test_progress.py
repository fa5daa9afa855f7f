"""Progress lines on long syncs: one every INTERVAL_SECONDS, with what the sync did so far."""

from __future__ import annotations

import logging

from tap_ghcr import progress as progress_module
from tap_ghcr.progress import INTERVAL_SECONDS, Progress


def test_a_progress_line_every_interval_and_a_summary(monkeypatch, caplog):
    clock = {"now": 1000.0}
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: clock["now"])
    registry_requests = {"n": 0}
    progress = Progress(logging.getLogger("tap-ghcr-test"), lambda: registry_requests["n"])
    caplog.set_level(logging.INFO, logger="tap-ghcr-test")

    progress.rest(200, "4999")
    progress.record("packages")
    clock["now"] += INTERVAL_SECONDS - 1
    progress.record("manifests")
    assert not [r for r in caplog.records if r.getMessage().startswith("progress:")], "too early for a line"

    clock["now"] += 2
    registry_requests["n"] = 7
    progress.wait(3.0)
    progress.record("manifests")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("progress:")]
    assert lines == [
        "progress: records: manifests 2, packages 1; GitHub requests 1 (0 not modified), rate limit left 4999; "
        "registry requests 7; rate-limit waits 1 (3 s); elapsed 16.0 s"
    ]

    clock["now"] += 1
    progress.rest(304, "4998")  # within the interval again: no new line
    progress.summary()
    messages = [r.getMessage() for r in caplog.records]
    assert len([m for m in messages if m.startswith("progress:")]) == 1
    assert messages[-1] == (
        "sync complete: records: manifests 2, packages 1; GitHub requests 2 (1 not modified), rate limit left 4998; "
        "registry requests 7; rate-limit waits 1 (3 s); elapsed 17.0 s"
    )
