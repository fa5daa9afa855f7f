"""Small documents are decoded whole, larger ones streamed: the two readers must give the same answer.

The reader tests run in both modes (`both_readers`); here, a differential test
over real samples, generated documents and invalid JSON, the size rule, and
the documented cases where the whole reader reads the JSON as written.
"""

from __future__ import annotations

import copy
import io
import json
import random
import sys
import typing as t

import msgspec
import pytest

from tap_ghcr.attestations import MalformedDocument, jsonstream, read_document, sbom, whole
from tests.attestations_support import SUPPLY_CHAIN, ref_for, spdx_package, statement

SUBJECT = "ab" * 32


def outcome(body: bytes, mode: str, monkeypatch: pytest.MonkeyPatch, **ref_args: t.Any) -> tuple:
    """What `read_document` makes of `body` (record, packages, warnings; or the error), read in `mode`:
    "whole" (SPDX packages by their JSON text, mapped once), "whole-general" (every package decoded and
    mapped, as before the texts were kept) or "streamed"."""
    monkeypatch.setattr(whole, "WHOLE_MAX_BYTES", -1 if mode == "streamed" else 1 << 30)
    monkeypatch.setattr(whole, "spdx_packages", _no_texts if mode == "whole-general" else _spdx_packages)
    ref = ref_for(subject=None, **ref_args)
    try:
        result = read_document(ref, io.BytesIO(body), want_packages=True)
        return result.record(ref), list(result.packages), result.warnings
    except MalformedDocument as exc:
        return ("malformed", str(exc))


_spdx_packages = whole.spdx_packages


def _no_texts(fileobj: t.BinaryIO, base: str) -> None:
    return None


def assert_same(body: bytes, monkeypatch: pytest.MonkeyPatch, **ref_args: t.Any) -> tuple:
    """The same outcome read whole (with no package text seen before, then seen once, then kept),
    read whole the general way, and streamed."""
    monkeypatch.setattr(sbom, "_seen_spdx", sbom.SeenPackages())
    got = outcome(body, "whole", monkeypatch, **ref_args)
    for _ in range(2):  # the second reading keeps the package texts' fields, the third reads them
        assert got == outcome(body, "whole", monkeypatch, **ref_args), body[:300]
    assert got == outcome(body, "whole-general", monkeypatch, **ref_args), body[:300]
    assert got == outcome(body, "streamed", monkeypatch, **ref_args), body[:300]
    return got


def cyclonedx(rng: random.Random, depth: int) -> dict:
    comps = []
    for i in range(rng.randint(0, 4)):
        comp: dict[str, t.Any] = {"type": rng.choice(["library", "application", 3]), "name": f"c{depth}-{i}",
                                  "version": rng.choice(["1.0", 2, 2.5, None, True]), "bom-ref": f"ref-{depth}-{i}"}
        if rng.random() < 0.5:
            comp["purl"] = f"pkg:npm/%40scope/c{depth}-{i}@1.0"
        if rng.random() < 0.3:
            comp["licenses"] = [{"license": {"id": "MIT"}}, {"expression": "Apache-2.0 OR MIT"}, "junk"]
        if rng.random() < 0.3:
            comp["supplier"] = rng.choice([{"name": "Organization: Acme"}, "Acme", None])
        if depth < 3 and rng.random() < 0.5:
            comp["components"] = cyclonedx(rng, depth + 1)["components"]
        comps.append(comp)
    if rng.random() < 0.2:
        comps.insert(rng.randint(0, len(comps)), rng.choice([1, "x", None, []]))
    return {"bomFormat": rng.choice(["CycloneDX", "cyclonedx", "other"]), "specVersion": rng.choice(["1.5", 1.6, None]),
            "metadata": rng.choice([{"timestamp": "2026-01-01T00:00:00Z"}, {"timestamp": 5}, [], None]),
            "components": comps}


def spdx(rng: random.Random) -> dict:
    packages: list[t.Any] = [spdx_package(i, rng.choice(["PACKAGE-MANAGER", "PACKAGE_MANAGER", "OTHER"]))
                             for i in range(rng.randint(0, 6))]
    for pkg in packages:
        if rng.random() < 0.3:
            pkg["versionInfo"] = rng.choice([3, 1.5, None, False, " padded "])
        if rng.random() < 0.2:
            pkg["externalRefs"] = rng.choice(["not a list", [None, 1], {"item": {}}])
        if rng.random() < 0.2:
            pkg["primaryPackagePurpose"] = "LIBRARY"
    if rng.random() < 0.2:
        packages.insert(rng.randint(0, len(packages)), rng.choice([1, "x", None, [1]]))
    doc: dict[str, t.Any] = {"spdxVersion": rng.choice(["SPDX-2.3", "SPDX-2.2", 2.3, True, None]),
                             "creationInfo": rng.choice([{"created": "2026-01-01T00:00:00Z"}, {"created": 7}, "x"]),
                             "packages": rng.choice([packages, packages, packages, {"p": 1}, None])}
    return doc


def shuffled(rng: random.Random, value: t.Any) -> t.Any:
    """The same JSON with every object's keys in a random order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(rng, v) for k, v in items}
    if isinstance(value, list):
        return [shuffled(rng, v) for v in value]
    return value


def generated(seed: int) -> bytes:
    rng = random.Random(seed)
    sbom = spdx(rng) if rng.random() < 0.5 else cyclonedx(rng, 0)
    if rng.random() < 0.15:
        sbom.update(spdx(rng))  # both an SPDX and a CycloneDX document's keys
    form = rng.random()
    if form < 0.3:
        doc: t.Any = sbom  # a bare SBOM
        if rng.random() < 0.3:  # whose first key is an in-toto one
            doc = {rng.choice(["subject", "predicateType"]): "x", **sbom}
    elif form < 0.9:
        doc = statement(rng.choice(["https://spdx.dev/Document", "https://cyclonedx.org/bom", "x"]), sbom, SUBJECT,
                        rng.choice(["v0.1", "v1"]))
        if rng.random() < 0.2:
            doc["predicate"] = rng.choice([[sbom], "x", None])
        if rng.random() < 0.2:
            del doc[rng.choice(["_type", "predicateType", "subject"])]
        if rng.random() < 0.2:
            doc = {"zzz": 1, **doc}  # a first key that is not an in-toto one
    else:
        doc = rng.choice([[sbom], "text", 3, None, {}])
    if rng.random() < 0.5:
        doc = shuffled(rng, doc)
    return json.dumps(doc, indent=rng.choice([None, 1])).encode()


@pytest.mark.parametrize("name", sorted(p.name for p in SUPPLY_CHAIN.glob("*.json")))
def test_every_real_sample_reads_the_same_whole_and_streamed(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    body = (SUPPLY_CHAIN / name).read_bytes()
    for envelope in ("none", "dsse"):
        from tests.attestations_support import dsse

        assert_same(body if envelope == "none" else dsse(body), monkeypatch, envelope=envelope)


def test_provenance_reads_the_same_whole_and_streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("buildkit_doc_slsa_v1_mode-max_provenance_statement.json",
                 "buildx_slsa_v0.2_mode-max_provenance_ghcr_cupdate.json"):
        record, _, _ = assert_same((SUPPLY_CHAIN / name).read_bytes(), monkeypatch)
        assert record["kind"] == "provenance" and record["build_type"] and record["materials"], record


def test_generated_documents_read_the_same_whole_and_streamed(monkeypatch: pytest.MonkeyPatch) -> None:
    kinds: dict[str, int] = {}
    for seed in range(600):
        got = assert_same(generated(seed), monkeypatch)
        kind = "malformed" if got[0] == "malformed" else f"{got[0]['kind']}:{got[0]['sbom_format']}:{bool(got[1])}"
        kinds[kind] = kinds.get(kind, 0) + 1
    # The generator reaches every outcome: errors, and SBOMs of both formats with and without packages.
    assert {"malformed", "sbom:spdx:True", "sbom:cyclonedx:True", "sbom:spdx:False"} <= set(kinds), kinds


@pytest.mark.parametrize(
    "body",
    [
        b"", b"   ", b"{", b'{"a": NaN}', b'{"a": Infinity}', b"\xef\xbb\xbf{}", b'{"a": "\xff"}', b'{"a": 1} x',
        b"{}{}", b'{"a": 1e400}', b'{"_type": "x", "predicate": {"spdxVersion": "\\ud800"}}',
        b'{"spdxVersion": "SPDX-2.3", "packages": [], "note": "\\udc00"}', b'{"a": "\xed\xa0\x80"}',
        b'{"spdxVersion": "SPDX-2.3", "packages": [{"name": "p"}], "x": ' + b"[" * 995 + b"]" * 995 + b"}",
        b'{"predicate": ' + b"[" * 5000 + b"]" * 5000 + b"}", b'{"a": "\\q"}', b'["predicate"]', b"null",
        *(b'{"spdxVersion": "SPDX-2.3", "packages": [{"name": "p", "x": ' + b"[" * n + b"]" * n + b"}]}"
          for n in (994, 995, 996, 997, 998, 1000)),
        b'{"spdxVersion": "SPDX-2.3", "packages": [{"name": "p", "x": "\\ud800"}, {"name": "q"}]}',
        b'{"spdxVersion": "SPDX-2.3", "packages": [{"name": "p"}], "note": "\\udc00"}',
        b'{"spdxVersion": "SPDX-2.3", "packages": [{"name": "p"}, 7, {"name": "p"}, {"name": "\\u0070"}]}',
        b'{"spdxVersion": "SPDX-2.3", "packages": {"name": "p"}}', b'{"spdxVersion": "SPDX-2.3", "packages": "p"}',
        b'{"spdxVersion": "SPDX-2.3", "p\\u0061ckages": [{"name": "p"}]}',
        b'{"_type": "https://in-toto.io/Statement/v1", "predicateType": "https://spdx.dev/Document", '
        b'"predic\\u0061te": {"spdxVersion": "SPDX-2.3", "packages": [{"n\\u0061me": "p"}]}}',
        json.dumps(statement("https://spdx.dev/Document",
                             {"spdxVersion": "SPDX-2.3", "packages": [{"name": "é\u2603"}]}, SUBJECT)).encode("utf-16"),
    ],
)
def test_invalid_or_odd_json_reads_the_same_whole_and_streamed(body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    assert_same(body, monkeypatch)
    if body.startswith(b'{"spdxVersion"'):  # and as an in-toto statement's predicate (the other base)
        assert_same(_as_predicate(body), monkeypatch)


def _spdx_statement(packages: list[t.Any]) -> bytes:
    return json.dumps(statement("https://spdx.dev/Document", {"spdxVersion": "SPDX-2.3", "packages": packages},
                                SUBJECT)).encode()


def _as_predicate(sbom_body: bytes) -> bytes:
    """An in-toto statement whose predicate is `sbom_body`, byte for byte (the other base)."""
    head = json.dumps(statement("https://spdx.dev/Document", {}, SUBJECT)).encode()[:-len(b"{}}")]
    return head + sbom_body + b"}"


def _packages_read(body: bytes) -> list[dict]:
    return list(read_document(ref_for(), io.BytesIO(body), want_packages=True).packages)


def test_an_spdx_package_seen_before_is_mapped_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Builds of one repository list mostly the same packages in the same words: a package's JSON text
    seen in an earlier SBOM gives the fields it gave then, without decoding or mapping it again."""
    monkeypatch.setattr(whole, "WHOLE_MAX_BYTES", 1 << 30)
    monkeypatch.setattr(sbom, "_seen_spdx", sbom.SeenPackages())
    mapped: list[t.Any] = []
    real = sbom.spdx_package
    monkeypatch.setattr(sbom, "spdx_package", lambda pkg: mapped.append(pkg["name"]) or real(pkg))

    def document(numbers: range) -> bytes:
        return _spdx_statement([spdx_package(i) for i in numbers])

    first = _packages_read(document(range(0, 4)))
    second = _packages_read(document(range(2, 6)))
    assert mapped == [f"pkg-{i}" for i in [0, 1, 2, 3, 2, 3, 4, 5]]  # seen twice: kept from then on
    third = _packages_read(document(range(2, 6)))
    assert mapped[8:] == ["pkg-4", "pkg-5"] and third == second  # pkg-2 and pkg-3 not mapped again
    assert _packages_read(document(range(2, 6))) == second and len(mapped) == 10
    assert second[:2] == first[2:] and [p["name"] for p in second] == ["pkg-2", "pkg-3", "pkg-4", "pkg-5"]
    assert second[0]["purl"] == "pkg:npm/pkg-2@1.2.0" and second[0]["supplier"] == "Example Corp"
    # The same package in other words (another key order) is another text: mapped, to the same fields.
    reordered = _spdx_statement([dict(reversed(spdx_package(2).items()))])
    assert _packages_read(reordered) == first[2:3] and mapped[-1] == "pkg-2"


def test_the_package_texts_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """At most `max_entries` texts, none over `max_text` bytes: an organisation's packages, or one
    hostile SBOM of huge ones, cannot grow the tap's memory; what is dropped is only mapped again."""
    monkeypatch.setattr(whole, "WHOLE_MAX_BYTES", 1 << 30)
    seen = sbom.SeenPackages(max_entries=3, max_text=1024)
    monkeypatch.setattr(sbom, "_seen_spdx", seen)
    huge = {**spdx_package(99), "comment": "x" * 1024}
    body = _spdx_statement([spdx_package(i) for i in range(7)] + [huge])
    for reading in range(3):
        assert [p["name"] for p in _packages_read(body)] == [f"pkg-{i}" for i in range(7)] + ["pkg-99"]
        assert (reading > 0) <= len(seen.fields) <= 3 and all(len(text) <= 1024 for text in seen.fields)


def test_the_budget_counts_what_the_fields_hold_not_the_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 4 KiB text of escaped wide characters makes fields of four bytes a character, several times
    over (name, version, name@version): the budget counts those objects, not the text's length."""
    monkeypatch.setattr(whole, "WHOLE_MAX_BYTES", 1 << 30)
    seen = sbom.SeenPackages(max_bytes=400_000)
    monkeypatch.setattr(sbom, "_seen_spdx", seen)
    wide = [{"name": f"\U0001f600{i}" + "n" * 1990, "versionInfo": f"\U0001f600{i}" + "v" * 1990}
            for i in range(60)]
    body = _spdx_statement(wide)  # json.dumps writes the emoji as the escapes \ud83d\ude00
    _packages_read(body)  # seen once: nothing kept yet
    got = _packages_read(body)
    assert len(got) == 60 and got[0]["name"].startswith("\U0001f600")
    held = sum(sys.getsizeof(text) + sys.getsizeof(fields) + sum(map(sys.getsizeof, fields.values()))
               for text, fields in seen.fields.items() if fields)
    assert held == seen.size <= 400_000 and len(seen.fields) < 60


def test_the_cheap_count_of_an_ascii_package_is_never_below_what_its_fields_hold() -> None:
    """For a plain ASCII text the budget does not ask `sys.getsizeof` of every field (a first sync's
    packages all cost that): three times the text bounds them. Checked on generated packages of every
    shape, odd values included, and on packages whose strings are long or made of escapes."""
    rng = random.Random(5)
    packages = [p for seed in range(300) for p in (spdx(random.Random(seed)).get("packages") or [])
                if isinstance(p, dict)]
    packages += [spdx_package(i, category) for i in range(50) for category in ("PACKAGE-MANAGER", "OTHER")]
    packages += [{"name": "n" * rng.randint(0, 900), "versionInfo": "v" * rng.randint(0, 900),
                  "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                    "referenceLocator": f"pkg:npm/%40{'s' * rng.randint(1, 300)}/x@1"}]}
                 for _ in range(200)]
    packages += [{"name": "a\\\"b\\/c\\n" * 50, "supplier": "Organization: " + "x" * 500}]
    for pkg in packages:
        text = json.dumps(pkg).encode()
        fields = sbom.spdx_package(json.loads(text))
        exact = sys.getsizeof(fields) + sum(map(sys.getsizeof, fields.values()))
        assert text.isascii() and b"\\u" not in text
        assert sbom._fields_bytes(text, fields) >= exact, pkg


def test_a_large_sbom_of_small_packages_is_mapped_a_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1 MiB SBOM can list 100,000 tiny packages: their fields are made a chunk at a time as the
    records are written, never all at once (the decoded document was about 20 MB; all fields, 70)."""
    monkeypatch.setattr(whole, "WHOLE_MAX_BYTES", 1 << 30)
    monkeypatch.setattr(sbom, "_seen_spdx", sbom.SeenPackages())
    mapped: list[str] = []
    real = sbom.spdx_package
    monkeypatch.setattr(sbom, "spdx_package", lambda pkg: mapped.append(pkg["name"]) or real(pkg))
    body = _spdx_statement([{"name": f"p{i}"} for i in range(1000)])
    packages = iter(read_document(ref_for(), io.BytesIO(body), want_packages=True).packages)
    assert next(packages)["name"] == "p0" and len(mapped) == sbom._CHUNK
    assert [p["name"] for p in packages] == [f"p{i}" for i in range(1, 1000)] and len(mapped) == 1000


def test_a_chunk_that_will_not_decode_reads_on_from_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not seen in practice (the first pass refuses what would not decode here), but if a later chunk's
    packages would not decode, the rest come from the general path: none lost, none given twice."""
    monkeypatch.setattr(whole, "WHOLE_MAX_BYTES", 1 << 30)
    monkeypatch.setattr(sbom, "_seen_spdx", sbom.SeenPackages())
    monkeypatch.setattr(sbom, "_CHUNK", 3)
    real_decode, calls = whole.decode, []

    def failing_second_chunk(data: bytes) -> t.Any:
        calls.append(data)
        if len(calls) == 2 and data.startswith(b"["):
            raise msgspec.DecodeError("as if nested too deep")
        return real_decode(data)

    monkeypatch.setattr(whole, "decode", failing_second_chunk)
    body = _spdx_statement([spdx_package(i) for i in range(8)] + [7, spdx_package(8)])
    assert [p["name"] for p in _packages_read(body)] == [f"pkg-{i}" for i in range(9)]
    assert len(calls) == 2  # the text path gave two chunks' worth; the general path the rest


@pytest.mark.parametrize("last", [b"null", b"[]", b'[{"name": "q"}]', b'{"name": "q"}', b"7"])
def test_a_repeated_packages_key_reads_the_same_by_text_as_decoded(last: bytes,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """As documented in `whole`, where the streaming reader differs: the last `packages` counts."""
    sbom_body = b'{"spdxVersion": "SPDX-2.3", "packages": [{"name": "p"}, 7, {"name": "p"}], "packages": ' + last + b"}"
    for body in (sbom_body, _as_predicate(sbom_body)):
        monkeypatch.setattr(sbom, "_seen_spdx", sbom.SeenPackages())
        got = outcome(body, "whole", monkeypatch)
        assert got == outcome(body, "whole-general", monkeypatch)
        assert [p["name"] for p in got[1]] == (["q"] if last.startswith(b"[{") else []), got[1]


def test_a_whole_document_is_not_kept_after_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """The file is left at its start for the next pass, and the decoded tree is not cached anywhere."""
    monkeypatch.setattr(whole, "WHOLE_MAX_BYTES", 1 << 30)
    body = json.dumps(statement("https://spdx.dev/Document", {"spdxVersion": "SPDX-2.3",
                                                               "packages": [spdx_package(i) for i in range(3)]},
                                SUBJECT)).encode()
    file = io.BytesIO(body)
    assert whole.load(file) == json.loads(body) and file.tell() == 0
    result = read_document(ref_for(), file, want_packages=True)
    file.seek(0)
    file.write(copy.copy(body).replace(b"pkg-0", b"pkg-X"))  # the packages pass reads the file again
    assert [p["name"] for p in result.packages] == ["pkg-X", "pkg-1", "pkg-2"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"spdxVersion": "SPDX-2.3", "packages": [], "x": ' + b"[" * 20000 + b"]" * 20000 + b"}",
        b'{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": ['
        + b'{"components": [' * 10000 + b"]}" * 10000 + b"]}",
        b'{"x": ' + b'{"a": ' * 1001 + b"1" + b"}" * 1002,
    ],
    ids=["arrays", "cyclonedx-components", "objects"],
)
def test_nesting_deeper_than_the_limit_is_malformed_in_both_readers(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ijson's prefixes spell out every level, so deep nesting cost memory and time with the square of
    the depth: 960 MB for the 40 KB of arrays here, a minute for the components. Now one error, early."""
    got = assert_same(body, monkeypatch)
    assert got[0] == "malformed" and f"nests deeper than {jsonstream.MAX_DEPTH} levels" in got[1], got
