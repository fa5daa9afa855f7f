"""Peak memory of SBOM parsing does not grow with the SBOM's size (a subprocess per measurement).

Linux carries a process's ru_maxrss across fork and exec: a child started
straight from pytest reports at least pytest's own RSS. So the parser runs
under `sh -c '...; exit $?'`: sh forks a small child that execs Python, and
that Python's ru_maxrss is its own (it matches /proc/self/status VmHWM).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.attestations_support import wrap_base64, write_cyclonedx_statement, write_spdx_statement

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB and /proc are Linux's")

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024

# Reads every package of the SBOM (fields pass + packages pass) and prints the package count and
# the peak RSS in KiB (Linux ru_maxrss), plus the RSS after imports for reference.
PARSE = """
import json, resource, sys
from tap_ghcr.attestations import DocumentRef, read_document
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
envelope = sys.argv[2]
ref = DocumentRef(owner_login="o", package_name="p", digest="sha256:x", media_type=sys.argv[3], size=0,
                  manifest_digest="sha256:m", layer_index=0, subject_digest="sha256:" + "0" * 64, source="buildx",
                  kind="sbom", predicate_type="https://spdx.dev/Document", envelope=envelope,
                  signed=envelope != "none")
with open(sys.argv[1], "rb") as f:
    result = read_document(ref, f, want_packages=True)
    count = sum(1 for _ in result.packages)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
hwm = next((int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")), None)
print(json.dumps({"count": count, "declared": result.fields["sbom_package_count"], "base_kib": base, "peak_kib": peak,
                  "vmhwm_kib": hwm}))
"""


def measure(path: Path, envelope: str = "none", media_type: str = "application/vnd.in-toto+json") -> dict:
    out = subprocess.run(
        ["sh", "-c", '"$0" -c "$1" "$2" "$3" "$4"; exit $?', sys.executable, PARSE, str(path), envelope, media_type],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return json.loads(out.stdout)


def spdx_file(path: Path, size: int) -> int:
    with path.open("wb") as out:
        return write_spdx_statement(out, size)


@pytest.fixture(scope="module")
def sboms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, int]]:
    root = tmp_path_factory.mktemp("sboms")
    small, large = root / "small.json", root / "large.json"
    return {"small": (small, spdx_file(small, 4 * MIB)), "large": (large, spdx_file(large, 40 * MIB))}


def test_spdx_statement_peak_rss_does_not_grow_with_size(sboms: dict[str, tuple[Path, int]]) -> None:
    (small_path, small_count), (large_path, large_count) = sboms["small"], sboms["large"]
    assert large_path.stat().st_size >= 40 * MIB
    small, large = measure(small_path), measure(large_path)
    assert (small["count"], small["declared"]) == (small_count, small_count)
    assert (large["count"], large["declared"]) == (large_count, large_count)
    print(f"\nSPDX statement 4 MiB: {small}\nSPDX statement 40 MiB: {large}")
    assert large["peak_kib"] < 200 * 1024
    assert large["peak_kib"] - small["peak_kib"] < 5 * 1024  # a few MB at most, for 10x the SBOM


def test_dsse_and_bundle_wrapped_sbom_peak_rss_does_not_grow_with_size(
    sboms: dict[str, tuple[Path, int]], tmp_path: Path
) -> None:
    """The base64 payload is diverted into a temp file as it is read: never one string in memory."""
    (small_path, small_count), (large_path, large_count) = sboms["small"], sboms["large"]
    small_dsse, large_dsse, large_bundle = tmp_path / "s.dsse", tmp_path / "l.dsse", tmp_path / "l.bundle"
    wrap_base64(small_path, small_dsse)
    wrap_base64(large_path, large_dsse)
    wrap_base64(large_path, large_bundle, bundle=True)
    assert large_dsse.stat().st_size > 53 * MIB
    dsse_type = "application/vnd.dsse.envelope.v1+json"
    small = measure(small_dsse, "dsse", dsse_type)
    large = measure(large_dsse, "dsse", dsse_type)
    bundle = measure(large_bundle, "sigstore-bundle", "application/vnd.dev.sigstore.bundle.v0.3+json")
    print(f"\nDSSE 4 MiB: {small}\nDSSE 40 MiB: {large}\nbundle 40 MiB: {bundle}")
    assert small["count"] == small_count and large["count"] == bundle["count"] == large_count
    assert max(large["peak_kib"], bundle["peak_kib"]) < 200 * 1024
    assert large["peak_kib"] - small["peak_kib"] < 5 * 1024
    assert bundle["peak_kib"] - small["peak_kib"] < 5 * 1024


def test_nested_cyclonedx_peak_rss_does_not_grow_with_size(sboms: dict[str, tuple[Path, int]], tmp_path: Path) -> None:
    small_path, _ = sboms["small"]
    large = tmp_path / "cyclonedx.json"
    with large.open("wb") as out:
        count = write_cyclonedx_statement(out, 16 * MIB)
    baseline, measured = measure(small_path), measure(large)
    print(f"\nCycloneDX 16 MiB: {measured}")
    assert (measured["count"], measured["declared"]) == (count, count)
    assert measured["peak_kib"] - baseline["peak_kib"] < 5 * 1024


# Reads a provenance statement and prints what became of its materials, its warnings and the peak RSS.
PROVENANCE = """
import json, resource, sys
from tap_ghcr.attestations import DocumentRef, read_document
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ref = DocumentRef(owner_login="o", package_name="p", digest="sha256:x", media_type="application/vnd.in-toto+json",
                  size=0, manifest_digest="sha256:m", layer_index=0, subject_digest="sha256:" + "0" * 64,
                  source="buildx", kind="provenance", predicate_type="https://slsa.dev/provenance/v0.2",
                  envelope="none", signed=False)
with open(sys.argv[1], "rb") as f:
    result = read_document(ref, f)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"materials": len(result.fields["materials"]), "first": result.fields["materials"][0],
                  "builder": result.fields["builder_id"], "warnings": result.warnings, "base_kib": base,
                  "peak_kib": peak}))
"""


def test_a_large_provenance_statement_keeps_only_what_the_contract_reads(tmp_path: Path) -> None:
    """A streamed predicate is pruned to the fields read, and its materials are cut at 10,000: 10 MiB of
    empty materials and unknown keys took 650 MB when the predicate was built whole."""
    path = tmp_path / "provenance.json"
    material = {"uri": "pkg:docker/alpine", "digest": {"sha256": "a" * 64}, "annotations": {"x": [1] * 40}}
    with path.open("w") as out:
        out.write('{"_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://slsa.dev/provenance/v0.2",')
        out.write(' "subject": [], "predicate": {"builder": {"id": "https://b"}, "unknown": [')
        out.write(",".join(['{"a": [{}, {}, {}]}'] * 200_000))
        out.write('], "materials": [' + json.dumps(material) + "," + ",".join(["{}"] * 2_000_000) + "]}}")
    assert path.stat().st_size > 9 * MIB
    measured = subprocess.run(
        ["sh", "-c", '"$0" -c "$1" "$2"; exit $?', sys.executable, PROVENANCE, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result = json.loads(measured.stdout)
    print(f"\nprovenance 10 MiB: {result}")
    assert result["builder"] == "https://b"
    assert result["first"] == {"uri": "pkg:docker/alpine", "digest": "sha256:" + "a" * 64}
    assert result["materials"] == 10_000
    assert result["warnings"] == [
        "o/p@sha256:x statement: more than 10,000 materials; the first 10,000 are kept"
    ], result["warnings"]
    assert result["peak_kib"] - result["base_kib"] < 40 * 1024


MALFORMED = """
import json, resource, sys
from tap_ghcr.attestations import DocumentRef, MalformedDocument, read_document
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
ref = DocumentRef(owner_login="o", package_name="p", digest="sha256:x", media_type="application/vnd.in-toto+json",
                  size=0, manifest_digest="sha256:m", layer_index=0, subject_digest=None, source="buildx",
                  kind="provenance", predicate_type=None, envelope="none", signed=False)
try:
    with open(sys.argv[1], "rb") as f:
        read_document(ref, f)
    error = None
except MalformedDocument as exc:
    error = str(exc)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"error": error, "base_kib": base, "peak_kib": peak}))
"""


def test_long_keys_nested_deep_are_malformed_before_they_cost_memory(tmp_path: Path) -> None:
    """Found by review: 300 levels of 20 KB keys under `predicate` (6 MB) took 1.8 GB in the first pass."""
    path = tmp_path / "deep-keys.json"
    keys = [chr(ord("a") + i % 26) * 20_000 for i in range(300)]
    with path.open("w") as out:
        out.write('{"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/provenance/v1", '
                  '"subject": [], "predicate": ')
        out.write("".join(f'{{"{k}": ' for k in keys) + "1" + "}" * len(keys) + "}")
    measured = subprocess.run(
        ["sh", "-c", '"$0" -c "$1" "$2"; exit $?', sys.executable, MALFORMED, str(path)],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=600,
    )
    result = json.loads(measured.stdout)
    assert "has a key path longer than 16,384 characters" in (result["error"] or ""), result
    assert result["peak_kib"] - result["base_kib"] < 40 * 1024, result


def test_a_huge_subject_list_or_many_top_level_keys_are_bounded(tmp_path: Path) -> None:
    """Found by review: the first pass built the whole `subject` list (64 MiB: 1.9 GB) and kept every
    top-level key (64 MiB of them: 434 MB)."""
    subjects, keys = tmp_path / "subjects.json", tmp_path / "keys.json"
    with subjects.open("w") as out:
        out.write('{"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/provenance/v1", '
                  '"predicate": {}, "subject": [')
        out.write(",".join(f'{{"name": "f{i}", "digest": {{"sha256": "{i:064x}"}}}}' for i in range(150_000)))
        out.write("]}")
    with keys.open("w") as out:
        out.write('{"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://slsa.dev/provenance/v1", '
                  '"subject": [], "predicate": {}, ')
        out.write(",".join(f'"k{i:07d}": 0' for i in range(600_000)))
        out.write("}")
    for path, error in ((subjects, "holds more than 400,000 parse events"), (keys, None)):
        measured = subprocess.run(
            ["sh", "-c", '"$0" -c "$1" "$2"; exit $?', sys.executable, MALFORMED, str(path)],
            cwd=ROOT, capture_output=True, text=True, check=True, timeout=600,
        )
        result = json.loads(measured.stdout)
        assert (error or "") in (result["error"] or ""), result
        assert result["error"] is None or error, result
        assert result["peak_kib"] - result["base_kib"] < 40 * 1024, (path.name, result)


def test_the_tap_imports_no_supply_chain_library_before_a_document_needs_it() -> None:
    """`cryptography` alone is 8-9 MB resident: a sync without signatures, or with the streams deselected, never
    loads it; cbor2 (notation) and packageurl (SBOM purls) likewise wait for their first document."""
    libraries = "('cryptography', 'cbor2', 'packageurl')"
    code = f"import sys, tap_ghcr.tap; print(' '.join(m for m in {libraries} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout.split() == []
