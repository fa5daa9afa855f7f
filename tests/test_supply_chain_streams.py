"""`attestations` and `sbom_packages` end to end: the real tap against the real registry.

The documents are generated (tests/emulator/supply_chain.py) in every storage form ghcr.io holds, and
the expected records are the literal values the builders recorded, not the tap's parsers' output.
Request counts are taken at the registry (a fault proxy in front of it, and its blob host's log),
never from the tap's own counters.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import traceback
import typing as t
from pathlib import Path

import pytest

from tap_ghcr.inventory import DocumentOptions, PackageFetch, RegistryFetcher
from tap_ghcr.models import FetchJob
from tests.attestations_support import write_spdx_statement
from tests.conftest import FAST_RETRY_BASE, catalog_selecting, run_tap, tap_executable
from tests.emulator.dataset import PackageBuilder, expected_attestations, expected_sbom_packages
from tests.emulator.proxy import Faults
from tests.emulator.supply_chain import supply_chain_dataset
from tests.emulator.world import World, start_world

BOTH = {"packages", "manifests", "attestations", "sbom_packages"}
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def chain() -> t.Iterator[World]:
    """The supply-chain organisation on a real registry. Read-only."""
    w = start_world(supply_chain_dataset())
    yield w
    w.stop()


def by_key(records: list[dict]) -> dict[tuple, dict]:
    return {(r["owner_login"], r["package_name"], r["manifest_digest"], r["layer_index"]): r for r in records}


def sbom_by_key(records: list[dict]) -> dict[tuple, dict]:
    return {(r["owner_login"], r["package_name"], r["sbom_digest"], r["package_ref"]): r for r in records}


def document_digests(world: World) -> dict[str, dict]:
    """Every document's layer digest -> its expected record."""
    return {r["digest"]: r for r in expected_attestations(world.dataset).values()}


def blob_gets(log: list[dict], digests: t.Iterable[str]) -> dict[str, int]:
    """GETs of each blob at the registry (the request the registry answers with a redirect to its blob host)."""
    counts = dict.fromkeys(digests, 0)
    for entry in log:
        if entry["method"] == "GET" and "/blobs/" in entry["path"]:
            digest = entry["path"].split("/blobs/")[1].split("?")[0]
            if digest in counts:
                counts[digest] += 1
    return counts


def expected_mix(world: World, registry_only: t.Callable[[dict], bool]) -> dict[tuple, dict]:
    """The full record of each document, or what the registry says where `registry_only(record)`."""
    full = expected_attestations(world.dataset)
    says = expected_attestations(world.dataset, registry_only=True)
    return {key: says[key] if registry_only(record) else record for key, record in full.items()}


def problems(stderr: str) -> list[str]:
    """WARNING and ERROR lines, but the one about the hidden test setting `retry_base_seconds`."""
    return [line for line in stderr.splitlines()
            if ("WARNING" in line or "ERROR" in line) and "`retry_base_seconds`" not in line]


def assert_records(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for key, record in expected.items():
        assert got[key] == record, key


# fields -------------------------------------------------------------------------------------------


def test_every_field_of_both_streams(chain, tmp_path, fault_proxy):
    proxy = fault_proxy(chain.registry.url)
    config = chain.config(registry_url=proxy.url)
    run = run_tap(config, tmp_path, catalog=catalog_selecting(config, tmp_path, BOTH))
    assert run.returncode == 0, run.stderr[-3000:]
    expected = expected_attestations(chain.dataset)
    # Every storage form is there: buildx (both forms), cosign .sig and .att, a referrer bundle.
    assert {(r["source"], r["envelope"], r["kind"]) for r in expected.values()} == {
        ("buildx", "none", "provenance"), ("buildx", "none", "sbom"), ("cosign", "simplesigning", "signature"),
        ("cosign", "dsse", "vulnerability-scan"), ("referrer", "sigstore-bundle", "provenance"),
    }
    assert_records(by_key(run.records("attestations")), expected)
    assert_records(sbom_by_key(run.records("sbom_packages")), expected_sbom_packages(chain.dataset))
    assert not problems(run.stderr), run.stderr[-3000:]
    # Fetched once per digest.
    counts = blob_gets(proxy.log, document_digests(chain))
    assert set(counts.values()) == {1}, counts


# the selection rule -------------------------------------------------------------------------------


def test_nothing_of_the_documents_is_downloaded_when_neither_stream_is_selected(chain, tmp_path, fault_proxy):
    proxy = fault_proxy(chain.registry.url)
    config = chain.config(registry_url=proxy.url)
    blob_host_start = len(chain.registry.blob_host.log)
    run = run_tap(config, tmp_path, catalog=catalog_selecting(config, tmp_path, {"packages", "manifests"}))
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.records("manifests")
    assert not run.records("attestations") and not run.records("sbom_packages")
    documents = document_digests(chain)
    assert set(blob_gets(proxy.log, documents).values()) == {0}
    downloaded = {e["path"].rsplit("/", 1)[-1] for e in chain.registry.blob_host.log[blob_host_start:]}
    assert not any(d[7:] in path for d in documents for path in downloaded)


def test_sbom_is_not_downloaded_unless_sbom_packages_is_selected(chain, tmp_path, fault_proxy):
    proxy = fault_proxy(chain.registry.url)
    config = chain.config(registry_url=proxy.url)
    run = run_tap(config, tmp_path, catalog=catalog_selecting(config, tmp_path, {"packages", "attestations"}))
    assert run.returncode == 0, run.stderr[-3000:]
    assert not run.records("sbom_packages")
    # SBOMs carry what the registry says; every other document is read.
    assert_records(by_key(run.records("attestations")), expected_mix(chain, lambda r: r["kind"] == "sbom"))
    counts = blob_gets(proxy.log, document_digests(chain))
    sboms = {d for d, r in document_digests(chain).items() if r["kind"] == "sbom"}
    assert sboms and all(counts[d] == 0 for d in sboms), counts
    assert all(counts[d] == 1 for d in counts if d not in sboms), counts


def test_sbom_packages_alone(chain, tmp_path, fault_proxy):
    proxy = fault_proxy(chain.registry.url)
    config = chain.config(registry_url=proxy.url)
    run = run_tap(config, tmp_path, catalog=catalog_selecting(config, tmp_path, {"packages", "sbom_packages"}))
    assert run.returncode == 0, run.stderr[-3000:]
    assert not run.records("attestations")
    assert_records(sbom_by_key(run.records("sbom_packages")), expected_sbom_packages(chain.dataset))


# bad documents ------------------------------------------------------------------------------------


def test_tampered_document_gives_no_record_and_an_error_naming_it(fresh_world, fault_proxy, tmp_path):
    dataset = supply_chain_dataset()
    victim = next(r for r in expected_attestations(dataset).values() if r["kind"] == "provenance"
                  and r["source"] == "buildx")

    def tamper(path: str, body: bytes) -> bytes:
        return body.replace(b"buildkit", b"buildkiT", 1) if victim["digest"][7:] in path else body

    faults = Faults(tamper=tamper)
    world = fresh_world(dataset, blob_base_url=lambda url: fault_proxy(url, faults).url)
    config = world.config()
    run = run_tap(config, tmp_path, catalog=catalog_selecting(config, tmp_path, BOTH))
    assert run.returncode == 0, run.stderr[-3000:]
    key = (victim["owner_login"], victim["package_name"], victim["manifest_digest"], victim["layer_index"])
    expected = expected_attestations(dataset)
    assert_records(by_key(run.records("attestations")), {k: v for k, v in expected.items() if k != key})
    assert_records(sbom_by_key(run.records("sbom_packages")), expected_sbom_packages(dataset))
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert any(victim["digest"] in line and "acme/signed" in line for line in errors), run.stderr[-3000:]
    assert len(run.records("manifests")) == len(dataset.expected_manifests())


def test_malformed_document_is_a_warning_and_carries_what_the_registry_says(fresh_world, tmp_path):
    dataset = supply_chain_dataset()
    broken = dataset.package("acme", "broken")
    index = broken.multiarch(platforms=[("linux", "amd64", None)], attestations=False, tags=["1"])
    manifest, layer = broken.supply_chain().malformed_provenance(index)
    world = fresh_world(dataset)
    config = world.config()
    run = run_tap(config, tmp_path, catalog=catalog_selecting(config, tmp_path, BOTH))
    assert run.returncode == 0, run.stderr[-3000:]
    expected = expected_attestations(dataset)
    key = ("acme", "broken", manifest, 0)
    assert expected[key] == expected_attestations(dataset, registry_only=True)[key]
    assert expected[key]["kind"] == "provenance" and expected[key]["builder_id"] is None
    assert_records(by_key(run.records("attestations")), expected)
    warnings = [line for line in run.stderr.splitlines() if "WARNING" in line and layer in line]
    assert warnings and "acme/broken" in warnings[0], run.stderr[-3000:]


def test_document_larger_than_max_document_mb_is_not_downloaded(chain, tmp_path, fault_proxy):
    limit_mb = 0.001  # 1,048 bytes: the .sig payload and .att envelope are under it, the rest over
    proxy = fault_proxy(chain.registry.url)
    config = chain.config(registry_url=proxy.url, max_document_mb=limit_mb)
    run = run_tap(config, tmp_path, catalog=catalog_selecting(config, tmp_path, BOTH))
    assert run.returncode == 0, run.stderr[-3000:]
    limit = limit_mb * MIB
    over = {d for d, r in document_digests(chain).items() if r["size"] > limit}
    assert over and len(over) < len(document_digests(chain))
    counts = blob_gets(proxy.log, document_digests(chain))
    assert all(counts[d] == 0 for d in over) and all(counts[d] == 1 for d in counts if d not in over), counts
    assert_records(by_key(run.records("attestations")), expected_mix(chain, lambda r: r["size"] > limit))
    assert not run.records("sbom_packages")
    warnings = [line for line in problems(run.stderr) if "WARNING" in line]
    assert all(any(d in line for line in warnings) for d in over), run.stderr[-3000:]


# once per digest, only for new versions; failures -----------------------------------------------------


def test_second_sync_with_the_first_state_makes_no_registry_request(chain, tmp_path, fault_proxy):
    proxy = fault_proxy(chain.registry.url)
    config = chain.config(registry_url=proxy.url)
    catalog = catalog_selecting(config, tmp_path, BOTH)
    first = run_tap(config, tmp_path, catalog=catalog)
    assert first.returncode == 0 and first.records("attestations")
    before = len(proxy.log)
    second = run_tap(config, tmp_path, catalog=catalog, state=first.final_state)
    assert second.returncode == 0, second.stderr[-3000:]
    assert proxy.log[before:] == []
    assert not second.records("attestations") and not second.records("sbom_packages")


def test_registry_failure_on_a_document_leaves_the_package_uncommitted(chain, tmp_path, fault_proxy):
    victim = next(r for r in expected_attestations(chain.dataset).values() if r["source"] == "referrer")
    faults = Faults(error_rate=1.0, only_paths=lambda path: f"/blobs/{victim['digest']}" in path)
    broken = fault_proxy(chain.registry.url, faults)
    config = chain.config(registry_url=broken.url)
    catalog = catalog_selecting(config, tmp_path, BOTH)
    first = run_tap(config, tmp_path, catalog=catalog)
    assert faults.injected.get("502", 0) >= 1
    key = (victim["owner_login"], victim["package_name"], victim["manifest_digest"], victim["layer_index"])
    assert key not in by_key(first.records("attestations"))
    assert victim["package_name"] in first.stderr
    healthy = fault_proxy(chain.registry.url)
    second = run_tap(chain.config(registry_url=healthy.url), tmp_path, catalog=catalog, state=first.final_state)
    assert second.returncode == 0, second.stderr[-3000:]
    union = {**by_key(first.records("attestations")), **by_key(second.records("attestations"))}
    assert_records(union, expected_attestations(chain.dataset))
    sboms = {**sbom_by_key(first.records("sbom_packages")), **sbom_by_key(second.records("sbom_packages"))}
    assert_records(sboms, expected_sbom_packages(chain.dataset))
    # The uncommitted package is fetched again, the committed ones are not.
    assert {r["package_name"] for r in second.records("attestations")} == {victim["package_name"]}


# memory -------------------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="/proc/<pid>/status is Linux's")
def test_peak_rss_with_a_40_mib_sbom(fresh_world, tmp_path):
    dataset = supply_chain_dataset(sbom_packages=1)
    big = dataset.package("acme", "big")
    index = big.multiarch(platforms=[("linux", "amd64", None)], attestations=False, tags=["1"])
    image = big.package.manifests[index].expected["child_digests"][0]
    buffer = io.BytesIO()
    count = write_spdx_statement(buffer, 40 * MIB, subject_hex=image[7:])
    sbom = buffer.getvalue()
    del buffer
    assert len(sbom) >= 40 * MIB
    big.supply_chain().raw_sbom(index, sbom)
    world = fresh_world(dataset)
    config = {"retry_base_seconds": FAST_RETRY_BASE, **world.config(organizations=["acme"], users=[])}
    (tmp_path / "config.json").write_text(json.dumps(config))
    catalog = catalog_selecting(world.config(), tmp_path, BOTH)
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_TOKEN"}
    out_path = tmp_path / "out.jsonl"
    with out_path.open("wb") as out, (tmp_path / "err.txt").open("wb") as err:
        # Started straight from pytest: VmHWM belongs to the exec'd process's own memory, unlike ru_maxrss.
        proc = subprocess.Popen([tap_executable(), "--config", str(tmp_path / "config.json"),
                                 "--catalog", str(tmp_path / "catalog.json")], stdout=out, stderr=err, env=env)
        peak_kib = 0
        while proc.poll() is None:
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
            except OSError:
                break
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peak_kib = max(peak_kib, int(line.split()[1]))
            time.sleep(0.02)
        proc.wait(timeout=600)
    assert proc.returncode == 0, (tmp_path / "err.txt").read_text()[-3000:]
    packages = 0
    with out_path.open() as lines:
        for line in lines:
            if '"sbom_packages"' in line and '"RECORD"' in line and '"big"' in line:
                packages += 1
    assert packages == count
    print(f"\ntap-ghcr peak RSS (VmHWM) with a {len(sbom) / MIB:.1f} MiB SPDX SBOM ({count} packages): "
          f"{peak_kib / 1024:.1f} MiB")
    assert 0 < peak_kib < 200 * 1024


def test_a_later_sync_fetches_only_the_documents_of_new_versions(fresh_world, tmp_path, fault_proxy):
    dataset = supply_chain_dataset()
    world = fresh_world(dataset)
    proxy = fault_proxy(world.registry.url)
    config = world.config(registry_url=proxy.url)
    catalog = catalog_selecting(config, tmp_path, BOTH)
    first = run_tap(config, tmp_path, catalog=catalog)
    assert first.returncode == 0, first.stderr[-3000:]
    old = set(expected_attestations(dataset))
    old_documents = document_digests(world)
    # A new signed release of acme/signed, pushed after the first sync.
    signed = dataset.find("acme", "signed")
    builder = PackageBuilder(dataset, signed)
    builder.supply_chain().signed_release(tags=["1.1"], sbom_packages=2, signers=1)
    world.push(signed)
    new = {k: v for k, v in expected_attestations(dataset).items() if k not in old}
    assert len(new) == 5  # provenance, SBOM, one signature, the .att, the referrer bundle
    before = len(proxy.log)
    second = run_tap(config, tmp_path, catalog=catalog, state=first.final_state)
    assert second.returncode == 0, second.stderr[-3000:]
    assert_records(by_key(second.records("attestations")), new)
    counts = blob_gets(proxy.log[before:], document_digests(world))
    assert all(counts[d] == 0 for d in old_documents), counts
    assert all(counts[r["digest"]] == 1 for r in new.values()), counts


# the pipeline -------------------------------------------------------------------------------------


def assert_every_document(fetch: PackageFetch, documents: set[str]) -> None:
    """The package's fetch is complete, with one document record per expected digest (files closed)."""
    result = fetch.result()
    try:
        assert result.complete and {d.record["digest"] for d in result.documents} == documents
    finally:
        for document in result.documents:
            document.close()


def test_a_packages_documents_download_while_the_sync_core_is_busy_elsewhere(chain, fault_proxy):
    """Once a package's manifests are in, the pool plans and starts its document downloads itself: the
    sync core's thread may be writing an earlier package's SBOM packages for seconds meanwhile, and
    does not look at this package until then (here: never, until every document is in)."""
    proxy = fault_proxy(chain.registry.url)
    package = chain.dataset.find("acme", "signed")
    documents = {r["digest"] for k, r in expected_attestations(chain.dataset).items() if k[:2] == ("acme", "signed")}
    assert len(documents) > 3
    jobs = [FetchJob(v.digest, tuple(v.tags)) for v in package.versions if v.state == "active"]
    fetcher = RegistryFetcher(proxy.url, credentials=lambda: ("me", chain.token), max_workers=2)
    try:
        fetch = fetcher.start("acme/signed", "acme", "signed", jobs,
                              documents=DocumentOptions(attestations=True, sbom_packages=True))
        deadline = time.monotonic() + 30
        while min(blob_gets(proxy.log, documents).values()) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert set(blob_gets(proxy.log, documents).values()) == {1}, "downloads waited for the caller"
        assert_every_document(fetch, documents)
    finally:
        fetcher.close()


def test_a_first_manifest_that_ends_before_the_last_is_submitted_plans_nothing_early(chain, fault_proxy,
                                                                                      monkeypatch):
    """The documents are planned once every manifest is in, even when the first top manifest's fetch
    (a lone image, with no children to wait for) ends before the next top is submitted: here each top's
    fetch ends before the next is submitted."""
    proxy = fault_proxy(chain.registry.url)
    package = chain.dataset.find("acme", "signed")
    documents = {r["digest"] for k, r in expected_attestations(chain.dataset).items() if k[:2] == ("acme", "signed")}
    active = [v for v in package.versions if v.state == "active"]
    lone = [v for v in active if "index" not in package.manifests[v.digest].media_type]
    assert lone and len(active) > len(lone)
    jobs = [FetchJob(v.digest, tuple(v.tags)) for v in [*lone, *(v for v in active if v not in lone)]]
    fetcher = RegistryFetcher(proxy.url, credentials=lambda: ("me", chain.token), max_workers=2)
    submit = PackageFetch._submit

    def submit_and_wait(fetch: PackageFetch, digest: str, deleted: bool) -> None:
        submit(fetch, digest, deleted)
        if threading.current_thread() is threading.main_thread():  # a top: its fetch and callbacks end first
            ended = threading.Event()
            fetch.manifests[digest].add_done_callback(lambda _: ended.set())
            ended.wait()

    monkeypatch.setattr(PackageFetch, "_submit", submit_and_wait)
    try:
        fetch = fetcher.start("acme/signed", "acme", "signed", jobs,
                              documents=DocumentOptions(attestations=True, sbom_packages=True))
        assert_every_document(fetch, documents)
        assert set(blob_gets(proxy.log, documents).values()) == {1}
    finally:
        fetcher.close()


def test_a_failure_while_planning_the_documents_reaches_the_caller(chain, monkeypatch):
    """Planning runs on a worker, where an exception would only be logged by `concurrent.futures`; the
    caller gets it instead (with its traceback), and does not wait forever for documents never planned."""
    def broken(self: t.Any) -> None:
        raise RuntimeError("a bug in planning")

    monkeypatch.setattr(PackageFetch, "_plan_documents", broken)
    package = chain.dataset.find("acme", "signed")
    jobs = [FetchJob(v.digest, tuple(v.tags)) for v in package.versions if v.state == "active"]
    fetcher = RegistryFetcher(chain.registry.url, credentials=lambda: ("me", chain.token), max_workers=2)
    try:
        fetch = fetcher.start("acme/signed", "acme", "signed", jobs, documents=DocumentOptions(attestations=True))
        raised: list[BaseException] = []

        def wait_for_result() -> None:
            try:
                fetch.result()
            except BaseException as exc:
                raised.append(exc)

        waiter = threading.Thread(target=wait_for_result, daemon=True)  # a hang fails the test, not the suite
        waiter.start()
        waiter.join(30)
        assert not waiter.is_alive(), "the caller waits forever"
        assert [str(e) for e in raised] == ["a bug in planning"]
        depths = []
        for _ in range(3):  # each call raises the one stored error: its traceback must not grow with the calls
            with pytest.raises(RuntimeError) as again:
                fetch.done()
            depths.append(len(traceback.extract_tb(again.value.__traceback__)))
        assert depths[0] == depths[1] == depths[2], depths
        assert any(frame.name == "broken" for frame in traceback.extract_tb(again.value.__traceback__))
    finally:
        fetcher.close()
