"""How the tap behaves for an operator: signals, stream maps, flattening, a quiet log, `--test`."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import run_tap, tap_executable
from tests.emulator.proxy import Faults

ALL = ("packages", "package_versions", "tags", "manifests", "attestations", "sbom_packages")
KEYS = {"packages": ("id",), "package_versions": ("id",), "tags": ("owner_login", "package_name", "tag"),
        "manifests": ("owner_login", "package_name", "digest"),
        "attestations": ("owner_login", "package_name", "manifest_digest", "layer_index"),
        "sbom_packages": ("owner_login", "package_name", "sbom_digest", "package_ref")}


def keyed(records, stream):
    return {tuple(r[k] for k in KEYS[stream]) for r in records}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_sync_writes_the_committed_state_and_exits_non_zero_at_once(world, tmp_path, signum,
                                                                                fault_proxy):
    full = run_tap(world.config(), tmp_path)
    # Every registry answer takes 2 s: the signal lands while workers wait on the network.
    proxy = fault_proxy(world.registry.url, Faults(slow_rate=1.0, slow_seconds=2.0))
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(world.config(registry_url=proxy.url, state_interval=0)))
    proc = subprocess.Popen([tap_executable(), "--config", str(config_file)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    time.sleep(3.0)
    sent = time.monotonic()
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=30)
    took = time.monotonic() - sent
    assert proc.returncode == 128 + signum
    assert took < 5.0, f"exit took {took:.1f} s"
    errors = [line for line in stderr.splitlines() if line.startswith("tap-ghcr: error:")]
    assert len(errors) == 1 and signal.Signals(signum).name in errors[0], stderr[-2000:]
    assert "Traceback" not in stderr
    messages = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert messages[-1]["type"] == "STATE", "the last message is the committed state"
    state = messages[-1]["value"]
    interrupted = {s: keyed([m["record"] for m in messages if m["type"] == "RECORD" and m["stream"] == s], s)
                   for s in ALL}
    resumed = run_tap(world.config(), tmp_path, state=state)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for stream in ALL:
        assert interrupted[stream] | keyed(resumed.records(stream), stream) == keyed(full.records(stream), stream)


@pytest.mark.parametrize("read_bytes", [0, 1000, 30_000])
def test_a_reader_that_closes_stdout_early_gets_one_line(world, tmp_path, read_bytes):
    """A target that stops (or `| head`) closes the pipe: the tap says so in one line, exit 1."""
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(world.config()))
    proc = subprocess.Popen([tap_executable(), "--config", str(config_file)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "GITHUB_TOKEN": ""})
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.read(read_bytes)
    proc.stdout.close()
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if line.startswith("tap-ghcr: error:")]
    assert errors == ["tap-ghcr: error: the reader of stdout closed it (did the target stop?); the sync stopped "
                      "there, and the next one resumes from the last STATE the target kept"], stderr[-2000:]
    assert "Traceback" not in stderr and "Exception ignored" not in stderr and "BrokenPipe" not in stderr


def test_else_null_keeps_only_the_mapped_child_stream(world, tmp_path):
    run = run_tap(world.config(stream_maps={"tags": {}, "__else__": None}), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    emitted = {m["stream"] for m in run.messages if m["type"] == "RECORD"}
    assert emitted == {"tags"}
    assert len(run.records("tags")) >= 8


def test_a_filtered_version_drops_its_tags_and_manifests(world, tmp_path):
    cli = world.dataset.find("octo-admin", "cli")
    victim = cli.versions[0]
    maps = {"package_versions": {"__filter__": f"record['digest'] != '{victim.digest}'"}}
    run = run_tap(world.config(stream_maps=maps), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert victim.digest not in {r["digest"] for r in run.records("package_versions")}
    assert victim.digest not in {r["digest"] for r in run.records("tags")}
    assert victim.digest not in {r["digest"] for r in run.records("manifests")}
    assert run.records("manifests") and run.records("tags"), "the other versions' children still come"


def test_flattening_keeps_labels_and_annotations_as_json_columns(world, tmp_path):
    run = run_tap(world.config(flattening_enabled=True, flattening_max_depth=1), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    schema = next(m["schema"] for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == "manifests")
    assert "labels" in schema["properties"] and "annotations" in schema["properties"]
    labelled = [r for r in run.records("manifests") if r.get("labels") not in (None, "{}")]
    assert labelled, "the sample has labelled images"
    assert all(isinstance(r["labels"], str) and isinstance(json.loads(r["labels"]), dict) for r in labelled)
    assert not [k for r in run.records("manifests") for k in r if k.startswith(("labels__", "annotations__"))]


def test_a_clean_sync_says_only_what_matters(world, tmp_path):
    run = run_tap(world.config(), tmp_path, env={"PYTHONWARNINGS": "default"})
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert not [line for line in lines if "METRIC" in line or "ResourceWarning" in line], lines
    assert not [line for line in lines if "WARNING" in line and "incomplete" not in line], lines
    assert len(lines) <= 4, lines
    assert any("sync complete:" in line for line in lines)
    schemas = [m["stream"] for m in run.messages if m["type"] == "SCHEMA"]
    assert sorted(schemas) == sorted(ALL), "one SCHEMA per stream"
    metrics = run_tap(world.config(), tmp_path, env={"TAP_GHCR_METRICS": "1"})
    assert "METRIC" in metrics.stderr, "metrics come back when asked for"


def test_connection_test_checks_github_and_the_registry(world, tmp_path):
    good = run_tap(world.config(), tmp_path, args=["--test"])
    assert good.returncode == 0, good.stderr[-2000:]
    assert not [m for m in good.messages if m["type"] == "RECORD"]
    bad = run_tap(world.config(registry_url="http://127.0.0.1:9"), tmp_path, args=["--test"], timeout=60)
    assert bad.returncode == 1
    errors = [line for line in bad.stderr.splitlines() if line.startswith("tap-ghcr: error:")]
    assert len(errors) == 1 and "registry_url" in errors[0], bad.stderr[-2000:]


def test_the_process_ends_with_its_error_line_even_with_registry_reads_in_flight(world, tmp_path, fault_proxy):
    # The second owner does not exist: that error ends the sync while workers wait 30 s on the registry.
    proxy = fault_proxy(world.registry.url, Faults(slow_rate=1.0, slow_seconds=30.0,
                                                    only_paths=lambda path: "/manifests/" in path))
    config = world.config(organizations=["acme", "no-such-org"], users=[], registry_url=proxy.url)
    started = time.monotonic()
    run = run_tap(config, tmp_path, timeout=60)
    assert run.returncode == 1
    assert run.stderr.rstrip().splitlines()[-1].startswith("tap-ghcr: error:")
    assert time.monotonic() - started < 15, "exit did not wait for the workers' slow reads"


@pytest.mark.parametrize(("state", "named"), [
    ({"bookmarks": {"package_versions": {"partitions": {"x": 1}}}}, "partitions"),
    ({"bookmarks": {"package_versions": {"partitions": [{"replication_key_value": "2024-01-01"}]}}}, "context"),
])
def test_a_malformed_state_shape_is_one_line(world, tmp_path, state, named):
    run = run_tap(world.config(), tmp_path, state=state)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("tap-ghcr: error:")]
    assert len(errors) == 1 and named in errors[0]


def test_a_hand_edited_bookmark_that_is_no_date_reads_the_package_again(world, tmp_path):
    first = run_tap(world.config(), tmp_path)
    state = json.loads(json.dumps(first.final_state))
    for partition in state["bookmarks"]["package_versions"]["partitions"]:
        partition["replication_key_value"] = "yesterday"
        partition["scope"] = ["not", "a", "scope"]
    run = run_tap(world.config(), tmp_path, state=state)
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert {r["id"] for r in run.records("package_versions")} == {r["id"] for r in first.records("package_versions")}


@pytest.mark.parametrize("maps", [{"packages": {"__filter__": "bad syntax ((("}}, {"tags": {"n": "len(tags)"}}])
def test_a_stream_map_mistake_is_one_line_naming_stream_maps(world, tmp_path, maps):
    run = run_tap(world.config(stream_maps=maps), tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("tap-ghcr: error:")]
    assert len(errors) == 1 and "stream_maps" in errors[0] and "internal error" not in errors[0], run.stderr[-1500:]


def test_a_registry_url_ending_in_v2_is_a_settings_error(world, tmp_path):
    run = run_tap(world.config(registry_url=world.registry.url + "/v2"), tmp_path)
    assert run.returncode == 1 and "registry_url" in run.stderr and "/v2" in run.stderr


def test_a_signal_during_a_write_waits_for_the_message_to_be_whole(monkeypatch):
    from tap_ghcr.tap import TapGHCR

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        tap = TapGHCR(config={"images": ["o/n"]}, setup_mapper=False)
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
    stopped = []
    monkeypatch.setattr(tap, "_stop", stopped.append)
    with tap.writing():
        tap._handle_termination(signal.SIGTERM, None)
        assert stopped == [], "not in the middle of a message"
    assert stopped == [signal.SIGTERM], "as soon as the message is whole"
    tap._handle_termination(signal.SIGINT, None)
    assert stopped == [signal.SIGTERM, signal.SIGINT]


def _quiet_tap(**config):
    from tap_ghcr.tap import TapGHCR

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        return TapGHCR(config={"images": ["o/n"], **config})
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def _sbom_package(i: int) -> dict:
    return {"owner_login": "o", "package_name": "n", "sbom_digest": "sha256:" + "a" * 64,
            "subject_digest": None, "sbom_format": "spdx", "package_ref": f"SPDXRef-{i}", "name": f"p{i}"}


def test_emit_all_writes_what_emit_writes_and_counts_it(capsysbinary):
    tap = _quiet_tap()
    stream = tap.streams["sbom_packages"]
    records = [_sbom_package(i) for i in range(600)]  # more than two batches
    for record in records:
        stream.emit(dict(record))
    one_by_one = capsysbinary.readouterr().out
    stream.emit_all(dict(record) for record in records)
    batched = capsysbinary.readouterr().out

    def lines(out: bytes) -> list[dict]:
        return [{k: v for k, v in json.loads(line).items() if k != "time_extracted"} for line in out.splitlines()]

    assert len(lines(batched)) == 600 and lines(batched) == lines(one_by_one)
    assert tap.progress.records["sbom_packages"] == 1200


def test_a_signal_while_emit_all_writes_stops_it_at_the_next_record_boundary(monkeypatch, capsysbinary):
    from tap_ghcr.streams import EMIT_BATCH

    tap = _quiet_tap()
    stream = tap.streams["sbom_packages"]
    written, stopped = [], []
    monkeypatch.setattr(tap, "_stop", lambda signum: stopped.append(len(written)))
    real_write = stream._write_record_message

    def write(record: dict) -> None:
        if len(written) == 10:
            tap._handle_termination(signal.SIGTERM, None)  # arrives while the 11th record is written
        real_write(record)
        written.append(record["package_ref"])

    monkeypatch.setattr(stream, "_write_record_message", write)
    stream.emit_all(_sbom_package(i) for i in range(3 * EMIT_BATCH))
    assert stopped[0] == 11, "the record being written is finished, and no other started (a slow reader waits)"
    out = capsysbinary.readouterr().out.splitlines()
    assert all(json.loads(line)["type"] == "RECORD" for line in out), "every line whole"


def test_emit_all_writes_and_counts_every_record_it_got_before_the_records_failed(capsysbinary):
    tap = _quiet_tap()
    stream = tap.streams["sbom_packages"]

    def records():
        for i in range(299):
            yield _sbom_package(i)
        raise OSError("the spooled file broke")

    with pytest.raises(OSError, match="spooled"):
        stream.emit_all(records())
    assert len(capsysbinary.readouterr().out.splitlines()) == 299
    assert tap.progress.records["sbom_packages"] == 299


def test_a_signal_while_the_sdk_writes_state_waits_for_that_state_to_be_whole(monkeypatch):
    """The SDK writes STATE itself at the end of a stream; a signal during that write (a full pipe)
    used to write the stop's STATE into the middle of it."""
    tap = _quiet_tap()
    stopped = []
    monkeypatch.setattr(tap, "_stop", lambda signum: stopped.append(signum))

    class Stdout:
        def __init__(self) -> None:
            self.buffer = self
            self.data = b""

        def write(self, data: bytes) -> None:
            tap._handle_termination(signal.SIGTERM, None)  # while the line is being written
            assert not stopped, "not in the middle of the STATE line"
            self.data += bytes(data)

        def flush(self) -> None:
            pass

    monkeypatch.setattr(sys, "stdout", Stdout())
    tap.state_writer.write_state({"bookmarks": {}})
    assert stopped == [signal.SIGTERM], "as soon as the line is whole"


def test_records_are_written_without_a_flush_and_every_other_message_flushes(monkeypatch):
    from singer_sdk.singerlib import RecordMessage, SchemaMessage, StateMessage

    from tap_ghcr.tap import LineWriter

    class Stdout:
        def __init__(self) -> None:
            self.buffer = io.BytesIO()
            self.flushed_at: list[int] = []

        def flush(self) -> None:
            self.flushed_at.append(len(self.buffer.getvalue()))

    out = Stdout()
    monkeypatch.setattr(sys, "stdout", out)
    writer = LineWriter()
    writer.write_message(SchemaMessage("s", {"type": "object", "properties": {}}, ["id"]))
    for i in range(3):
        writer.write_message(RecordMessage("s", {"id": i}))
    assert len(out.flushed_at) == 1, "a SCHEMA flushes, records do not"
    writer.write_message(StateMessage({"bookmarks": {}}))
    assert out.flushed_at[-1] == len(out.buffer.getvalue()), "a STATE goes out with every record before it"
    lines = out.buffer.getvalue().splitlines()
    assert [json.loads(line)["type"] for line in lines] == ["SCHEMA", "RECORD", "RECORD", "RECORD", "STATE"]


def test_stdout_is_buffered_under_pythonunbuffered_too():
    """Container images often set PYTHONUNBUFFERED for their logs; the tap's stdout is its data."""
    code = ("import sys; from tap_ghcr import __main__ as m; m._buffer_stdout(); "
            "print(type(sys.stdout.buffer).__name__)")
    for unbuffered in ("", "1"):
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        if unbuffered:
            env["PYTHONUNBUFFERED"] = unbuffered
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        assert out.stdout.strip() == "BufferedWriter"


@pytest.mark.parametrize("tty", [False, True])
def test_the_console_script_writes_a_pipe_in_pipe_sized_writes_and_leaves_a_terminal_alone(monkeypatch, tty):
    """Records leave in writes of up to 64 KiB (`STDOUT_BUFFER`), not Python's 8 KiB: each write gives up
    the GIL, and taking it back from the registry workers was a fifth of a sync's CPU."""
    from tap_ghcr import __main__ as entry

    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    stdout = open(write_end, "w")
    monkeypatch.setattr(stdout, "isatty", lambda: tty)
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        entry._buffer_stdout()
        assert (sys.stdout is stdout) is tty
        sys.stdout.buffer.write(b"r" * (32 * 1024))
        waiting = 0
        try:
            waiting = len(os.read(read_end, 1 << 20))
        except BlockingIOError:
            pass
        assert waiting == (32 * 1024 if tty else 0)
        sys.stdout.flush()
        if not tty:
            assert len(os.read(read_end, 1 << 20)) == 32 * 1024
    finally:
        sys.stdout.flush()
        stdout.close()
        os.close(read_end)
