"""Surviving GitHub and the network: conditional requests, faults, rate limits, kill and resume, secrets."""

from __future__ import annotations

import json
import signal
import subprocess

import pytest

from tests.conftest import run_tap, tap_executable
from tests.emulator.dataset import PackageBuilder, sample_dataset
from tests.emulator.proxy import Faults


def keyed(run, stream):
    out = {}
    for record in run.records(stream):
        out[json.dumps(record, sort_keys=True)] = record
    return set(out)


def list_pages(log):
    return [e for e in log if e["path"].split("?")[0].endswith(("/packages", "/versions"))]


def test_no_change_sync_is_all_304_and_no_registry_request(world, tmp_path, fault_proxy):
    proxy = fault_proxy(world.registry.url)
    first = run_tap(world.config(registry_url=proxy.url), tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    rest_before, registry_before = len(world.github.log), len(proxy.log)
    second = run_tap(world.config(registry_url=proxy.url), tmp_path, state=first.final_state)
    assert second.returncode == 0, second.stderr[-2000:]
    rest = world.github.log[rest_before:]
    assert rest and len(list_pages(rest)) == len(rest), "only list pages are requested"
    assert {e["status"] for e in rest} == {304}
    assert all("If-None-Match" in e["headers"] for e in rest)
    assert len(proxy.log) == registry_before, "no registry request at all"
    assert sum(len(second.records(s)) for s in ("package_versions", "tags", "manifests")) == 0
    json.dumps(second.final_state)
    assert len(json.dumps(second.final_state)) < 20_000


def test_every_kind_of_change_is_picked_up_after_a_conditional_sync(fresh_world, tmp_path):
    world = fresh_world()
    config = world.config(include_deleted_versions=True)
    first = run_tap(config, tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    web = world.dataset.find("acme", "web")
    builder = PackageBuilder(world.dataset, web)
    new_index = builder.multiarch(tags=["v1.2"], attestations=False)
    v10 = next(v for v in web.versions if "v1.0" in v.tags)
    latest_before = web.tags["latest"]
    builder.retag("latest", v10.digest)  # a moved tag: both versions change
    cli = world.dataset.find("octo-admin", "cli")
    PackageBuilder(world.dataset, cli).retag("also-edge", cli.versions[0].digest)  # a retagged old version
    gone = next(v for v in web.versions if v.digest == latest_before)
    sig = next(v for v in web.versions if any(t.endswith(".sig") for t in v.tags))
    builder.delete_version(sig.digest)
    world.push(web)
    world.push(cli)
    second = run_tap(config, tmp_path, state=first.final_state)
    assert second.returncode == 0, second.stderr[-2000:]
    versions = {r["digest"]: r for r in second.records("package_versions")}
    assert new_index in versions and v10.digest in versions and gone.digest in versions
    assert cli.versions[0].digest in versions and versions[sig.digest]["deleted_at"]
    tags = {(r["package_name"], r["tag"]): r["digest"] for r in second.records("tags")}
    assert tags[("web", "latest")] == v10.digest and tags[("web", "v1.2")] == new_index
    assert tags[("cli", "also-edge")] == cli.versions[0].digest
    manifests = {r["digest"] for r in second.records("manifests")}
    new_children = world.dataset.find("acme", "web").manifests[new_index].expected["child_digests"]
    assert {new_index, *new_children} <= manifests
    third = run_tap(config, tmp_path, state=second.final_state)
    assert sum(len(third.records(s)) for s in ("package_versions", "tags", "manifests")) == 0


def test_faults_change_nothing_in_the_records(fresh_world, tmp_path, fault_proxy):
    world = fresh_world(sample_dataset(scale=8))
    clean = run_tap(world.config(), tmp_path)
    assert clean.returncode == 0, clean.stderr[-2000:]

    def reverse_pages(path, body):  # out-of-order pages: GitHub promises no order
        if path.split("?")[0].endswith("/versions") and body.startswith(b"["):
            return json.dumps(list(reversed(json.loads(body)))).encode()
        return body

    rest_faults = Faults(error_rate=0.04, drop_rate=0.03, slow_rate=0.03, slow_seconds=0.1,
                         primary_limit_once=True, secondary_limit_once=True, limit_wait=1, seed=11,
                         tamper=reverse_pages, scripted=["502", "drop"])
    registry_faults = Faults(error_rate=0.04, drop_rate=0.03, slow_rate=0.03, slow_seconds=0.1, seed=12,
                             scripted=["drop", "502"])
    rest_proxy = fault_proxy(world.github.url, rest_faults)
    registry_proxy = fault_proxy(world.registry.url, registry_faults)
    faulty = run_tap(world.config(api_url=rest_proxy.url, registry_url=registry_proxy.url), tmp_path)
    assert faulty.returncode == 0, faulty.stderr[-3000:]
    for stream in ("packages", "package_versions", "tags", "manifests"):
        assert keyed(faulty, stream) == keyed(clean, stream), stream
    assert rest_faults.injected.get("primary") == 1 and rest_faults.injected.get("secondary") == 1
    for faults in (rest_faults, registry_faults):
        assert faults.injected.get("502", 0) >= 1 and faults.injected.get("drop", 0) >= 1, faults.injected
    assert "primary rate limit: waiting" in faulty.stderr and "secondary rate limit: waiting" in faulty.stderr


@pytest.mark.parametrize("kill_after", [5, 25, 60])
def test_killed_sync_resumes_without_losing_records(fresh_world, tmp_path, kill_after):
    world = fresh_world(sample_dataset(scale=4))
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(world.config(state_interval=0, retry_base_seconds=0.02)))  # a STATE per package
    full = run_tap(world.config(), tmp_path)
    want = {s: {json.dumps(r, sort_keys=True) for r in full.records(s)} for s in
            ("packages", "package_versions", "tags", "manifests", "attestations", "sbom_packages")}
    got: dict[str, set] = {s: set() for s in want}
    state = None
    kills = 0
    for attempt in range(10):
        cmd = [tap_executable(), "--config", str(config_file)]
        if state is not None:
            (tmp_path / "state.json").write_text(json.dumps(state))
            cmd += ["--state", str(tmp_path / "state.json")]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        lines = 0
        killed = False
        for line in proc.stdout:
            message = json.loads(line)
            if message["type"] == "RECORD":
                got[message["stream"]].add(json.dumps(message["record"], sort_keys=True))
            elif message["type"] == "STATE":
                state = message["value"]
            lines += 1
            if attempt < 3 and lines == kill_after:
                proc.send_signal(signal.SIGKILL)
                killed = True
                kills += 1
                break
        proc.wait()
        if not killed:
            assert proc.returncode == 0
            break
    assert kills >= 2, "the sync must really have been killed mid-way"
    for stream, records in want.items():
        assert records <= got[stream], stream


def test_token_never_appears_in_any_output(world, tmp_path, fault_proxy):
    token = world.token
    faults = Faults(error_rate=0.1, seed=3)
    proxy = fault_proxy(world.registry.url, faults)
    run = run_tap(world.config(registry_url=proxy.url), tmp_path)
    assert run.returncode == 0
    failures = [
        run_tap(world.config(images=[f"https://me:{token}@ghcr.io/acme/web"]), tmp_path),
        run_tap(world.config(registry_url="http://127.0.0.1:9"), tmp_path),
        run_tap(world.config(token=token + "x"), tmp_path),
        run_tap(world.config(token=12345), tmp_path),
    ]
    for result in [run, *failures]:
        assert token not in result.stdout and token not in result.stderr
        assert token not in json.dumps(result.states)
    assert all(f.returncode == 1 for f in failures)


def test_token_without_read_packages_is_one_line(fresh_world, tmp_path):
    world = fresh_world(registry=False)
    world.dataset.scopeless_tokens.add("ghp_noscope000000000000000000000000000000")
    world.dataset.tokens["ghp_noscope000000000000000000000000000000"] = "octo-admin"
    run = run_tap(world.config(token="ghp_noscope000000000000000000000000000000"), tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    lines = [x for x in run.stderr.splitlines() if x.startswith("tap-ghcr: error:")]
    assert len(lines) == 1 and "read:packages" in lines[0] and "403" in lines[0]


def test_unreachable_registry_is_one_line(world, tmp_path):
    from tests.emulator.registry import refused_port

    with refused_port() as port:
        run = run_tap(world.config(registry_url=f"http://127.0.0.1:{port}"), tmp_path)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    lines = [x for x in run.stderr.splitlines() if x.startswith("tap-ghcr: error:")]
    assert len(lines) == 1 and "registry_url" in lines[0]


def test_low_rate_limit_budget_slows_down_before_github_says_no(fresh_world, tmp_path):
    import time

    world = fresh_world(registry=False)
    config = world.config()
    from tests.conftest import catalog_selecting

    catalog = catalog_selecting(config, tmp_path, {"packages", "package_versions"})
    state = world.github_state
    # 5 requests left for a sync that needs about 10, reset in 3 seconds: without pacing, the sixth
    # request gets GitHub's 403 (the emulator answers it once the budget is used up).
    state.remaining = 5
    state.reset_at = int(time.time()) + 3
    run = run_tap(config, tmp_path, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(world.github.log) > 6, "the sync needs more requests than the budget left"
    assert "GitHub rate limit low" in run.stderr and "pausing" in run.stderr
    assert all(e["status"] != 403 for e in world.github.log)


def test_state_messages_are_throttled_but_the_final_state_is_complete(fresh_world, tmp_path):
    world = fresh_world(sample_dataset(scale=6))
    every = run_tap(world.config(state_interval=0), tmp_path)
    throttled = run_tap(world.config(state_interval=3600), tmp_path)
    assert every.returncode == throttled.returncode == 0
    assert len(throttled.states) < len(every.states)
    assert len(throttled.stdout) < len(every.stdout)
    final = throttled.final_state["bookmarks"]["package_versions"]["partitions"]
    assert {p["context"]["package_name"] for p in final if p.get("replication_key_value")} == {
        p.name for p in world.dataset.packages}
    again = run_tap(world.config(), tmp_path, state=throttled.final_state)
    assert again.records("package_versions") == [] and again.records("manifests") == []


def test_package_vanishing_mid_sync_is_a_warning(fresh_world, tmp_path):
    world = fresh_world()
    world.github_state.vanished.add("worker")
    run = run_tap(world.config(), tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "acme/worker vanished during the sync" in run.stderr
    assert {r["package_name"] for r in run.records("package_versions")} == {"web", "tools/api", "cli"}
    assert "worker" in {r["name"] for r in run.records("packages")}
