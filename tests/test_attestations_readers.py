"""read_document for every envelope: bare statements, DSSE, sigstore bundles, simple signing, notation."""

from __future__ import annotations

import base64
import io
import json

import cbor2
import jsonschema
import pytest
from cryptography import x509

from tap_ghcr.attestations import (
    ATTESTATION_FIELDS,
    SBOM_PACKAGE_FIELDS,
    MalformedDocument,
    attestation_record,
    read_document,
)
from tap_ghcr.attestations.schema import (
    ATTESTATIONS_KEY,
    ATTESTATIONS_SCHEMA,
    SBOM_PACKAGES_KEY,
    SBOM_PACKAGES_SCHEMA,
)
from tests.attestations_support import (
    OCI,
    SUPPLY_CHAIN,
    der_b64,
    dsse,
    make_certificate,
    ref_for,
    statement,
)

pytestmark = pytest.mark.usefixtures("both_readers")  # every document read whole and streamed

BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
CUPDATE_PLATFORM = "sha256:29528c15c494f84b8a2f33e0faa6eaa8cb6966824cf2ff95791c234fc07c247a"
WHL = "sha256:49a3aa6075e0f49f82843e74b5baa614ad2a588e6675612bf108a0a008c5ac25"
SPDX = {"spdxVersion": "SPDX-2.3", "creationInfo": {"created": "2026-03-01T00:00:00Z"}, "packages": []}


def read(body: bytes, ref, want_packages: bool = False):
    result = read_document(ref, io.BytesIO(body), want_packages=want_packages)
    return result, result.record(ref)


def test_bare_buildx_statement_subject_agrees() -> None:
    body = (SUPPLY_CHAIN / "buildx_slsa_v0.2_mode-max_provenance_ghcr_cupdate.json").read_bytes()
    ref = ref_for(subject=CUPDATE_PLATFORM, kind="provenance", predicate_type="https://slsa.dev/provenance/v0.2")
    result, record = read(body, ref)
    assert result.warnings == []
    assert list(result.packages) == []
    assert (record["statement_type"], record["kind"], record["envelope"], record["signed"]) == (
        "https://in-toto.io/Statement/v0.1",
        "provenance",
        "none",
        False,
    )
    assert record["builder_id"] == "https://github.com/AlexGustafsson/cupdate/actions/runs/14008088422/attempts/1"
    assert record["created_at"] is None


@pytest.mark.parametrize(
    ("predicate_type", "where"),
    [
        ("https://slsa.dev/provenance/v0.2", ("materials",)),
        ("https://slsa.dev/provenance/v1", ("resolvedDependencies",)),
    ],
)
@pytest.mark.parametrize("count", [10_000, 10_001, 12_345])
def test_materials_past_ten_thousand_are_cut_with_a_warning(predicate_type: str, where: tuple, count: int) -> None:
    entries = [{"uri": f"pkg:generic/m{i}", "digest": {"sha256": f"{i:064x}"}} for i in range(count)]
    predicate = {"materials": entries} if where == ("materials",) else {"buildDefinition": {where[0]: entries}}
    body = json.dumps(statement(predicate_type, predicate, "0" * 64)).encode()
    ref = ref_for(kind="provenance", predicate_type=predicate_type)
    result, record = read(body, ref)
    assert len(record["materials"]) == 10_000
    assert record["materials"][-1] == {"uri": "pkg:generic/m9999", "digest": f"sha256:{9999:064x}"}
    cut = [f"{ref.name} statement: more than 10,000 materials; the first 10,000 are kept"]
    assert result.warnings == (cut if count > 10_000 else [])


@pytest.mark.parametrize(
    ("predicate_type", "predicate"),
    [
        (
            "https://slsa.dev/provenance/v1",
            {"runDetails": {"metadata": {"invocationId": {"a": 1}, "invocationID": "x"}}},
        ),
        ("https://slsa.dev/provenance/v0.2", {"metadata": {"buildInvocationID": ["a"], "buildInvocationId": "x"}}),
    ],
)
def test_an_invocation_id_that_is_not_a_string_gives_way_to_its_other_spelling(predicate_type, predicate) -> None:
    """Found by review: the streamed reader keeps such a container empty, the whole one keeps it whole;
    an `or` on the raw values then gave `x` in one and null in the other."""
    body = json.dumps(statement(predicate_type, predicate, "0" * 64)).encode()
    _, record = read(body, ref_for(kind="provenance", predicate_type=predicate_type))
    assert record["build_invocation_id"] == "x"


def test_subject_disagreement_is_a_warning_and_registry_wins() -> None:
    body = (SUPPLY_CHAIN / "buildx_slsa_v0.2_mode-max_provenance_ghcr_cupdate.json").read_bytes()
    ref = ref_for(subject="sha256:" + "e" * 64)
    result, record = read(body, ref)
    assert record["subject_digest"] == "sha256:" + "e" * 64
    (warning,) = result.warnings
    assert CUPDATE_PLATFORM in warning and "sha256:" + "e" * 64 in warning and "registry-side link wins" in warning
    assert warning.startswith("octo/app@sha256:dddd")


def test_statement_subject_fills_a_missing_registry_subject() -> None:
    body = (SUPPLY_CHAIN / "buildx_slsa_v0.2_mode-max_provenance_ghcr_cupdate.json").read_bytes()
    result, record = read(body, ref_for(subject=None))
    assert record["subject_digest"] == CUPDATE_PLATFORM
    assert result.warnings == []


def test_predicate_type_annotation_disagreeing_with_statement() -> None:
    body = (SUPPLY_CHAIN / "buildx_slsa_v0.2_mode-max_provenance_ghcr_cupdate.json").read_bytes()
    ref = ref_for(subject=CUPDATE_PLATFORM, kind="sbom", predicate_type="https://spdx.dev/Document")
    result, record = read(body, ref)
    assert (record["kind"], record["predicate_type"]) == ("provenance", "https://slsa.dev/provenance/v0.2")
    assert len(result.warnings) == 1 and "https://spdx.dev/Document" in result.warnings[0]


def test_cosign_att_dsse_statement_keeps_registry_signer() -> None:
    doc = statement("https://cosign.sigstore.dev/attestation/vuln/v1", {"scanner": {"uri": "trivy"}}, "ab" * 32)
    ref = ref_for(
        "dsse",
        media_type="application/vnd.dsse.envelope.v1+json",
        subject="sha256:" + "ab" * 32,
        source="cosign",
        signer_identity="dev@example.com",
        signed_at="2023-11-14T22:13:20Z",
        tlog_index=7,
    )
    result, record = read(dsse(doc), ref)
    assert result.warnings == []
    assert (record["kind"], record["statement_type"], record["envelope"], record["signed"]) == (
        "vulnerability-scan",
        "https://in-toto.io/Statement/v1",
        "dsse",
        True,
    )
    assert (record["signer_identity"], record["signed_at"], record["tlog_index"], record["created_at"]) == (
        "dev@example.com",
        "2023-11-14T22:13:20Z",
        7,
        "2023-11-14T22:13:20Z",
    )


def test_dsse_wrapped_sbom_streams_packages_from_the_decoded_payload() -> None:
    predicate = {
        **SPDX,
        "packages": [{"SPDXID": f"SPDXRef-{i}", "name": f"p{i}", "versionInfo": "1"} for i in range(500)],
    }
    doc = statement("https://spdx.dev/Document", predicate, "0" * 64)
    ref = ref_for("dsse", media_type="application/vnd.dsse.envelope.v1+json", source="cosign", kind="sbom")
    result, record = read(dsse(doc), ref, want_packages=True)
    assert (record["sbom_format"], record["sbom_package_count"], record["created_at"]) == (
        "spdx",
        500,
        "2026-03-01T00:00:00Z",
    )
    packages = list(result.packages)
    assert [p["package_ref"] for p in packages[:2]] == ["SPDXRef-0", "SPDXRef-1"] and len(packages) == 500


def test_dsse_url_safe_unpadded_payload() -> None:
    doc = json.dumps(statement("https://slsa.dev/provenance/v1", {"x": ">>>???>>>???~~~"}, "0" * 64)).encode()
    assert set(base64.urlsafe_b64encode(doc).decode()) & {"-", "_"}
    envelope = {
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64.urlsafe_b64encode(doc).decode().rstrip("="),
    }
    _, record = read(json.dumps(envelope).encode(), ref_for("dsse", media_type="application/vnd.dsse.envelope.v1+json"))
    assert record["kind"] == "provenance"


def test_dsse_non_intoto_payload_is_a_warning() -> None:
    ref = ref_for("dsse", media_type="application/vnd.dsse.envelope.v1+json", kind="other")
    result, record = read(dsse(b"hello", payload_type="text/plain"), ref)
    assert record["statement_type"] is None
    assert "text/plain" in result.warnings[0]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"payloadType": "application/vnd.in-toto+json", "payload": "!!!"}', "base64"),
        (b'{"payloadType": "application/vnd.in-toto+json"}', "no payload"),
        (b'{"payloadType": "application/vnd.in-toto+json", "payload": "e30=', "not valid JSON"),
    ],
)
def test_malformed_dsse(body: bytes, message: str) -> None:
    with pytest.raises(MalformedDocument, match=message):
        read_document(ref_for("dsse", media_type="application/vnd.dsse.envelope.v1+json"), io.BytesIO(body))


REUSABLE = "https://github.com/github/artifact-attestations-workflows/.github/workflows/attest.yml@09b495c3f12c7881b3cc17209a327792065c1a1d"


def test_github_bundle_reusable_workflow() -> None:
    # Expected signer values copied from ..._reusable-workflow.DECODED.DERIVED.json; time from `date -u -d @1716578064`.
    body = (SUPPLY_CHAIN / "github_attestation_sigstore_bundle_v0.3_reusable-workflow.sigstore.json").read_bytes()
    ref = ref_for("sigstore-bundle", media_type=BUNDLE, subject=WHL, source="referrer", kind="provenance")
    result, record = read(body, ref)
    assert result.warnings == []
    assert {
        k: record[k] for k in ATTESTATION_FIELDS if k.startswith("signer_") or k in ("signed_at", "tlog_index")
    } == {
        "signer_identity": REUSABLE,
        "signer_issuer": "https://token.actions.githubusercontent.com",
        "signer_workflow": REUSABLE,
        "signer_repository": "https://github.com/malancas/attest-demo",
        "signer_revision": "95baf27389e83e6a5c48f42e190d48d7abcea19e",
        "signer_ref": "refs/heads/main",
        "signer_trigger": "workflow_dispatch",
        "signer_run": "https://github.com/malancas/attest-demo/actions/runs/9228858953/attempts/1",
        "signed_at": "2024-05-24T19:14:24Z",
        "tlog_index": 96764485,
    }
    assert (record["statement_type"], record["predicate_type"], record["kind"], record["envelope"]) == (
        "https://in-toto.io/Statement/v1",
        "https://slsa.dev/provenance/v1",
        "provenance",
        "sigstore-bundle",
    )
    assert record["source_uri"] == "https://github.com/malancas/attest-demo"
    assert record["created_at"] == "2024-05-24T19:14:24Z"  # no manifest annotation: signed_at
    with_annotation = ref_for(
        "sigstore-bundle", media_type=BUNDLE, subject=WHL, manifest_created="2025-04-07T14:08:20.999Z"
    )
    assert read(body, with_annotation)[1]["created_at"] == "2025-04-07T14:08:20.999Z"


SIGSTORE_JS = {
    "signer_identity": "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main",
    "signer_issuer": "https://token.actions.githubusercontent.com",
    "signer_workflow": "https://github.com/sigstore/sigstore-js/.github/workflows/release.yml@refs/heads/main",
    "signer_repository": "https://github.com/sigstore/sigstore-js",
    "signer_revision": "26d16513386ffaa790b1c32f927544f1322e4194",
    "signer_ref": "refs/heads/main",
    "signer_trigger": "push",
    "signer_run": "https://github.com/sigstore/sigstore-js/actions/runs/6014488666/attempts/1",
}


@pytest.mark.parametrize(
    "media_type",
    [
        "application/vnd.dev.sigstore.bundle.v0.3+json",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
    ],
)
def test_bundle_media_type_spellings_and_certificate_chain(media_type: str) -> None:
    # Expected values from `openssl x509 -text` of the bundle's certificate; `date -u -d @1693323623`.
    bundle = json.loads((SUPPLY_CHAIN / "github_attestation_sigstore_bundle_v0.3_sigstore-js-2.1.0.json").read_bytes())
    bundle["mediaType"] = media_type
    if not media_type.endswith("v0.3+json"):
        cert = bundle["verificationMaterial"].pop("certificate")
        bundle["verificationMaterial"]["x509CertificateChain"] = {"certificates": [cert]}
    ref = ref_for("sigstore-bundle", media_type=media_type, subject="sha256:" + "0" * 64)
    result, record = read(json.dumps(bundle).encode(), ref)
    assert {k: record[k] for k in SIGSTORE_JS} == SIGSTORE_JS
    assert (record["signed_at"], record["tlog_index"]) == ("2023-08-29T15:40:23Z", 33351527)
    # The npm statement names a sha512 subject: it disagrees with the registry's link.
    (warning,) = result.warnings
    assert (
        "sha512:90f223f992e4c88dd068cd2a5fc57f9d2b30798343dd6e38f29c240e04ba090ef831f84490847c4e82b9232c78e8a25"
        in warning
    )


def test_cosign_v3_sign_bundle_is_a_signature() -> None:
    leaf, _ = make_certificate(uri="https://github.com/o/r/.github/workflows/sign.yml@refs/heads/main")
    doc = statement("https://sigstore.dev/cosign/sign/v1", {}, "c" * 64)
    inner = json.loads(dsse(doc))
    bundle = {
        "mediaType": BUNDLE,
        "verificationMaterial": {
            "certificate": {"rawBytes": der_b64(leaf)},
            "tlogEntries": [{"logIndex": "123456789012", "integratedTime": "1760000000"}],
        },
        "dsseEnvelope": inner,
    }
    ref = ref_for("sigstore-bundle", media_type=BUNDLE, subject="sha256:" + "c" * 64, kind="signature")
    result, record = read(json.dumps(bundle).encode(), ref)
    assert result.warnings == []
    assert (record["kind"], record["predicate_type"]) == ("signature", "https://sigstore.dev/cosign/sign/v1")
    assert (record["tlog_index"], record["signed_at"]) == (
        123456789012,
        "2025-10-09T08:53:20Z",
    )  # date -u -d @1760000000
    assert record["signer_identity"] == "https://github.com/o/r/.github/workflows/sign.yml@refs/heads/main"


def test_message_signature_bundle() -> None:
    subject_hex = "5" * 64
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "verificationMaterial": {"publicKey": {"hint": "abc"}},
        "messageSignature": {
            "messageDigest": {"algorithm": "SHA2_256", "digest": base64.b64encode(bytes.fromhex(subject_hex)).decode()},
            "signature": "MEUC",
        },
    }
    ref = ref_for("sigstore-bundle", media_type=bundle["mediaType"], subject="sha256:" + subject_hex)
    result, record = read(json.dumps(bundle).encode(), ref)
    assert result.warnings == []
    assert (record["kind"], record["predicate_type"], record["statement_type"], record["signer_identity"]) == (
        "signature",
        None,
        None,
        None,
    )
    other = ref_for("sigstore-bundle", media_type=bundle["mediaType"], subject="sha256:" + "6" * 64)
    assert "sha256:" + subject_hex in read(json.dumps(bundle).encode(), other)[0].warnings[0]


@pytest.mark.parametrize(
    ("bundle", "message"),
    [
        ({"mediaType": "application/json", "dsseEnvelope": {}}, "not a sigstore bundle"),
        ({"mediaType": BUNDLE, "verificationMaterial": {}}, "neither dsseEnvelope nor messageSignature"),
    ],
)
def test_malformed_bundle(bundle: dict, message: str) -> None:
    with pytest.raises(MalformedDocument, match=message):
        read_document(ref_for("sigstore-bundle", media_type=BUNDLE), io.BytesIO(json.dumps(bundle).encode()))


def test_bad_bundle_certificate_is_a_warning() -> None:
    bundle = json.loads((SUPPLY_CHAIN / "github_attestation_sigstore_bundle_v0.3_sigstore-js-2.1.0.json").read_bytes())
    bundle["verificationMaterial"]["certificate"]["rawBytes"] = base64.b64encode(b"garbage").decode()
    result, record = read(json.dumps(bundle).encode(), ref_for("sigstore-bundle", media_type=BUNDLE, subject=None))
    assert record["signer_identity"] is None and record["tlog_index"] == 33351527
    assert any("certificate" in w for w in result.warnings)


def test_simple_signing_payload_spec_spelling() -> None:
    body = (OCI / "cosign_simplesigning_payload.example.json").read_bytes()
    digest = "sha256:97fc222cee7991b5b061d4d4afdb5f3428fcb0c9054e1690313786befa1e4e36"
    ref = ref_for("simplesigning", media_type="application/vnd.dev.cosign.simplesigning.v1+json", subject=digest)
    result, record = read(body, ref)
    assert result.warnings == []
    assert (record["kind"], record["predicate_type"], record["statement_type"], record["envelope"]) == (
        "signature",
        None,
        None,
        "simplesigning",
    )
    wrong = ref_for("simplesigning", media_type=ref.media_type, subject="sha256:" + "1" * 64)
    assert digest in read(body, wrong)[0].warnings[0]


def test_simple_signing_real_lowercase_payload_and_malformed() -> None:
    digest = "sha256:" + "4" * 64
    payload = {
        "critical": {
            "identity": {"docker-reference": "ghcr.io/o/p"},
            "image": {"docker-manifest-digest": digest},
            "type": "cosign container image signature",
        },
        "optional": None,
    }
    ref = ref_for("simplesigning", media_type="application/vnd.dev.cosign.simplesigning.v1+json", subject=digest)
    assert read(json.dumps(payload).encode(), ref)[0].warnings == []
    with pytest.raises(MalformedDocument, match="docker-manifest-digest"):
        read_document(ref, io.BytesIO(b'{"optional": {}}'))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_notation_jws_signature() -> None:
    leaf, ca = make_certificate(common_name="wabbit-networks.io")
    subject = "sha256:138fc25e9aaf93251609d23a8a50e91d50462f5dccb53cffde8db7a46385cfec"
    target = {
        "targetArtifact": {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": subject, "size": 856}
    }
    jws = {
        "payload": _b64url(json.dumps(target).encode()),
        "protected": _b64url(
            json.dumps({"alg": "PS256", "cty": "application/vnd.cncf.notary.payload.v1+json"}).encode()
        ),
        "header": {"x5c": [der_b64(leaf), der_b64(ca)], "io.cncf.notary.signingAgent": "notation-go/1.3.0"},
        "signature": "c2ln",
    }
    ref = ref_for("notation", media_type="application/jose+json", subject=subject, source="referrer", kind="signature")
    result, record = read(json.dumps(jws).encode(), ref)
    assert result.warnings == []
    assert (record["kind"], record["envelope"], record["signed"], record["signer_identity"]) == (
        "signature",
        "notation",
        True,
        "CN=wabbit-networks.io",
    )
    other = ref_for("notation", media_type="application/jose+json", subject="sha256:" + "2" * 64)
    assert subject in read(json.dumps(jws).encode(), other)[0].warnings[0]
    with pytest.raises(MalformedDocument, match="payload"):
        read_document(ref, io.BytesIO(b'{"header": {}}'))


def test_notation_cose_signature() -> None:
    leaf, ca = make_certificate(email="signer@example.com", common_name="ignored when there is a SAN")
    subject = "sha256:" + "7" * 64
    target = {"targetArtifact": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": subject}}
    protected = cbor2.dumps({1: -37, 3: "application/vnd.cncf.notary.payload.v1+json"})
    chain = [base64.b64decode(der_b64(leaf)), base64.b64decode(der_b64(ca))]
    message = cbor2.dumps(cbor2.CBORTag(18, [protected, {33: chain}, json.dumps(target).encode(), b"sig"]))
    ref = ref_for("notation", media_type="application/cose", subject=subject, kind="signature", source="referrer")
    result, record = read(message, ref)
    assert result.warnings == []
    assert (record["kind"], record["envelope"], record["signer_identity"], record["predicate_type"]) == (
        "signature",
        "notation",
        "signer@example.com",
        None,
    )
    other = ref_for("notation", media_type="application/cose", subject="sha256:" + "8" * 64)
    assert subject in read(message, other)[0].warnings[0]
    with pytest.raises(MalformedDocument, match="not a COSE_Sign1"):
        read_document(ref, io.BytesIO(cbor2.dumps([1, 2])))
    with pytest.raises(MalformedDocument, match="not CBOR"):
        read_document(ref, io.BytesIO(b"\xd2\x84"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"_type": "https://in-toto.io/Statement/v1", "subject": [], "predicate": {', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"_type": "https://in-toto.io/Statement/v1", "predicate": {}}', "predicateType"),
        (b'{"_type": "https://in-toto.io/Statement/v1", "predicateType": "x"}', "no `predicate`"),
        (b'{"hello": "world"}', "neither an in-toto statement nor"),
        (b'{"_type": "x", "predicateType": "https://slsa.dev/provenance/v1", "predicate": []}', "not an object"),
    ],
)
def test_malformed_statements(body: bytes, message: str) -> None:
    with pytest.raises(MalformedDocument, match=message):
        read_document(ref_for(), io.BytesIO(body))


def test_sbom_predicate_that_is_not_spdx2_or_cyclonedx() -> None:
    doc = statement(
        "https://spdx.dev/Document/v3", {"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"}, "0" * 64
    )
    result, record = read(json.dumps(doc).encode(), ref_for())
    assert (record["kind"], record["sbom_format"], record["sbom_package_count"]) == ("sbom", None, None)
    assert list(result.packages) == [] and "neither SPDX 2.x" in result.warnings[0]


def test_attestation_record_shape_and_overlay_rules() -> None:
    ref = ref_for(kind="sbom")
    bare = attestation_record(ref)
    assert tuple(bare) == ATTESTATION_FIELDS
    overlay = attestation_record(
        ref, {"digest": "sha256:evil", "layer_index": 9, "kind": "provenance", "signer_identity": None, "nope": 1}
    )
    assert (overlay["digest"], overlay["layer_index"], overlay["kind"]) == (ref.digest, 0, "provenance")
    assert tuple(overlay) == ATTESTATION_FIELDS


def test_schemas_have_exactly_the_contract_fields() -> None:
    assert tuple(ATTESTATIONS_SCHEMA["properties"]) == ATTESTATION_FIELDS
    assert tuple(SBOM_PACKAGES_SCHEMA["properties"]) == SBOM_PACKAGE_FIELDS
    assert set(ATTESTATIONS_KEY) <= set(ATTESTATION_FIELDS) and set(SBOM_PACKAGES_KEY) <= set(SBOM_PACKAGE_FIELDS)
    for name in ("signer_identity", "signer_issuer", "signer_run", "signed", "signed_at", "tlog_index"):
        assert "not verified" in ATTESTATIONS_SCHEMA["properties"][name]["description"].lower()


def _records() -> tuple[list[dict], list[dict]]:
    """One record per representative document, and the packages of two SBOMs."""
    records, packages = [], []
    prov = (SUPPLY_CHAIN / "buildx_slsa_v0.2_mode-max_provenance_ghcr_cupdate.json").read_bytes()
    records.append(read(prov, ref_for(subject=CUPDATE_PLATFORM))[1])
    gh = (SUPPLY_CHAIN / "github_attestation_sigstore_bundle_v0.3_reusable-workflow.sigstore.json").read_bytes()
    records.append(read(gh, ref_for("sigstore-bundle", media_type=BUNDLE, subject=WHL))[1])
    remote = {
        "buildType": "https://mobyproject.org/buildkit@v1",
        "invocation": {"configSource": {"uri": "https://github.com/o/r.git#main", "digest": {"sha1": "ab"}}},
    }
    records.append(
        read(json.dumps(statement("https://slsa.dev/provenance/v0.2", remote, "0" * 64)).encode(), ref_for())[1]
    )
    for name in ("buildx_spdx-2.3_sbom_statement_ghcr_cupdate_trimmed.json", "cyclonedx-1.4_bom_laravel-7.12.0.json"):
        result, record = read((SUPPLY_CHAIN / name).read_bytes(), ref_for(), want_packages=True)
        records.append(record)
        packages.extend(result.packages)
    spdx = {
        **SPDX,
        "packages": [
            {
                "SPDXID": "SPDXRef-x",
                "name": "x",
                "licenseConcluded": "MIT",
                "supplier": "Organization: X",
                "primaryPackagePurpose": "OPERATING-SYSTEM",
            }
        ],
    }
    result, record = read(json.dumps(statement("https://spdx.dev/Document", spdx, "0" * 64)).encode(), ref_for(), True)
    packages.extend(result.packages)
    return records, packages


def test_every_contract_field_is_filled_by_some_document_and_records_match_schemas() -> None:
    records, packages = _records()
    for record in records:
        jsonschema.validate(record, ATTESTATIONS_SCHEMA)
    for package in packages:
        jsonschema.validate(package, SBOM_PACKAGES_SCHEMA)
        assert tuple(package) == SBOM_PACKAGE_FIELDS
    filled = {k for r in records for k, v in r.items() if v is not None}
    assert set(ATTESTATION_FIELDS) - filled == set()
    filled = {k for p in packages for k, v in p.items() if v is not None}
    assert set(SBOM_PACKAGE_FIELDS) - filled == set()


def _duplicate_extension_certificate() -> bytes:
    """A leaf whose Fulcio extension 1.3.6.1.4.1.57264.1.8 is rewritten into a second 1.9."""
    from cryptography.hazmat.primitives import serialization

    leaf, _ = make_certificate(uri="https://x", der={8: "a", 9: "b"})
    der = leaf.public_bytes(serialization.Encoding.DER)
    oid8 = bytes.fromhex("060a2b0601040183bf300108")
    assert der.count(oid8) == 1
    return der.replace(oid8, oid8[:-1] + b"\x09")


def _x400_san_certificate() -> bytes:
    from cryptography.hazmat.primitives import serialization

    san = x509.UnrecognizedExtension(x509.ObjectIdentifier("2.5.29.17"), b"\x30\x03\xa3\x01\x00")
    return make_certificate(extra=[san])[0].public_bytes(serialization.Encoding.DER)


def _bundle(material: object = None, message: object = None) -> bytes:
    doc: dict = {"mediaType": BUNDLE, "messageSignature": message if message is not None else {}}
    if material is not None:
        doc["verificationMaterial"] = material
    return json.dumps(doc).encode()


HOSTILE = [  # (envelope, body, what is expected: "malformed" or a warning's words, "" for none)
    ("dsse", b'{"payloadType": "application/vnd.in-toto+json", "payload": "\\uZZZZ"}', "malformed"),
    ("dsse", b'{"payloadType": "x", "\\q": 1, "payload": "AA=="}', "malformed"),
    ("dsse", b'{"payloadType": "x", "a\x01": 1, "payload": "AA=="}', "malformed"),
    ("dsse", b'{"payloadType": [], "payload": "e30="}', "not an in-toto statement"),
    ("dsse", b'{"payloadType": {"a": 1}, "payload": "e30="}', "not an in-toto statement"),
    ("sigstore-bundle", _bundle({"certificate": "x"}), ""),
    ("sigstore-bundle", _bundle({"x509CertificateChain": 5}), ""),
    ("sigstore-bundle", _bundle({"x509CertificateChain": {"certificates": 1.5}}), ""),
    ("sigstore-bundle", _bundle({"x509CertificateChain": {"certificates": {"a": 1}}}), ""),
    ("sigstore-bundle", _bundle({"x509CertificateChain": {"certificates": ["x"]}}), ""),
    ("sigstore-bundle", _bundle(message={"messageDigest": "x"}), ""),
    ("sigstore-bundle", _bundle(message={"messageDigest": {"digest": "AA==", "algorithm": [1]}}), ""),
    ("sigstore-bundle", _bundle({"certificate": {"rawBytes": base64.b64encode(_duplicate_extension_certificate())
                                                 .decode()}}), "Duplicate"),
    ("sigstore-bundle", _bundle({"certificate": {"rawBytes": base64.b64encode(_x400_san_certificate()).decode()}}),
     "x400Address"),
]


@pytest.mark.parametrize(("envelope", "body", "expected"), HOSTILE)
def test_a_hostile_envelope_is_a_malformed_document_or_a_warning_never_another_error(
    envelope: str, body: bytes, expected: str
) -> None:
    """Found by a fuzzing review: each of these raised ValueError, JSONDecodeError, TypeError, AttributeError,
    KeyError or a cryptography exception out of the reader, and the sync, which catches MalformedDocument,
    failed with an internal error."""
    media_type = BUNDLE if envelope == "sigstore-bundle" else "application/vnd.dsse.envelope.v1+json"
    ref = ref_for(envelope, media_type=media_type)
    if expected == "malformed":
        with pytest.raises(MalformedDocument):
            read_document(ref, io.BytesIO(body))
        return
    result = read_document(ref, io.BytesIO(body))
    assert not expected or any(expected in w for w in result.warnings), result.warnings


def test_a_hostile_cosign_bundle_annotation_is_a_warning_at_most() -> None:
    from tap_ghcr.attestations.cosign import annotation_fields
    from tap_ghcr.attestations.media import COSIGN_BUNDLE, COSIGN_CERTIFICATE

    for bundle in ('{"Payload": "x"}', "[1]", '{"Payload": [1]}', "5"):
        fields, _ = annotation_fields({COSIGN_BUNDLE: bundle}, "layer")
        assert fields == {"signed_at": None, "tlog_index": None}, bundle
    der = _duplicate_extension_certificate()
    pem = "-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der).decode() + "-----END CERTIFICATE-----\n"
    _, warnings = annotation_fields({COSIGN_CERTIFICATE: pem}, "layer")
    assert "Duplicate" in warnings[0]


def test_the_payload_search_does_not_rebuild_the_path_at_every_string(monkeypatch: pytest.MonkeyPatch) -> None:
    """A string 999 levels deep made the DSSE payload search rebuild a 999-key path: 10,000 strings
    took 20 s, 500,000 took 38-93 s. Only a string at the payload's depth can be the payload."""
    from tap_ghcr.attestations.jsonstream import Diverter

    calls = []
    real = Diverter._value_path
    monkeypatch.setattr(Diverter, "_value_path", lambda self: calls.append(1) or real(self))
    body = (b'{"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "x": ' + b"[" * 999
            + b'"",' * 10_000 + b'""' + b"]" * 999 + b"}")
    with pytest.raises(MalformedDocument):  # the payload `{}` is no statement; the walk is what is measured
        read_document(ref_for("dsse"), io.BytesIO(body))
    assert len(calls) < 10, len(calls)
