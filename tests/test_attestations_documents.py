"""describe_documents on real manifests, the selection rule, kinds and envelopes."""

from __future__ import annotations

import json

import pytest

from tap_ghcr.attestations import attestation_record, describe_documents, download_decision
from tap_ghcr.attestations.media import envelope_for, kind_for_predicate
from tests.attestations_support import OCI, SUPPLY_CHAIN, load, make_certificate, pem, ref_for

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
SIG_TAG = "sha256-" + "a" * 64 + ".sig"


def describe(document: dict, digest: str = "sha256:" + "f" * 64, **kw) -> list:
    return describe_documents(
        owner_login="octo",
        package_name="app",
        digest=digest,
        media_type=document.get("mediaType", OCI_MANIFEST),
        document=document,
        **kw,
    )


def test_buildx_attestation_manifest_in_index() -> None:
    index = load(OCI / "oci_index_buildx_attestation.ghcr.gpoulios-testpkg.json")
    manifest = load(OCI / "oci_manifest_attestation_provenance.ghcr.gpoulios-testpkg.json")
    (ref,) = describe(
        manifest,
        "sha256:0b99212f395833227bbb3fdf0e821efd8ce8af3cca65ce9e00fc96c683af7076",
        descriptor=index["manifests"][1],
    )
    assert attestation_record(ref) == {
        "owner_login": "octo",
        "package_name": "app",
        "digest": "sha256:63f574b1d103c131d7e8f18b3c78df741e07a22ed9f2adfdc1303763f69a4305",
        "media_type": "application/vnd.in-toto+json",
        "size": 5572,
        "manifest_digest": "sha256:0b99212f395833227bbb3fdf0e821efd8ce8af3cca65ce9e00fc96c683af7076",
        "layer_index": 0,
        "subject_digest": "sha256:0e026e48c72f503a89f1299d8d6a768f1e516740017b8dd29d290c234ec889b4",
        "source": "buildx",
        "kind": "provenance",
        "predicate_type": "https://slsa.dev/provenance/v0.2",
        "statement_type": None,
        "envelope": "none",
        "signed": False,
        "signer_identity": None,
        "signer_issuer": None,
        "signer_workflow": None,
        "signer_repository": None,
        "signer_revision": None,
        "signer_ref": None,
        "signer_trigger": None,
        "signer_run": None,
        "signed_at": None,
        "tlog_index": None,
        "builder_id": None,
        "build_type": None,
        "build_invocation_id": None,
        "build_started_at": None,
        "build_finished_at": None,
        "source_uri": None,
        "source_revision": None,
        "source_ref": None,
        "build_config_path": None,
        "materials": None,
        "sbom_format": None,
        "sbom_spec_version": None,
        "sbom_package_count": None,
        "created_at": None,
    }


def test_buildx_sbom_and_provenance_layers() -> None:
    index = load(OCI / "oci_index_buildx_attestations.ghcr.mchmarny-debug-tools.json")
    manifest = load(OCI / "oci_manifest_attestation_spdx_slsa.ghcr.mchmarny-debug-tools.json")
    sbom, slsa = describe(manifest, "sha256:49fc79", descriptor=index["manifests"][3])
    subject = "sha256:775966c9516a426a1c55a37a96554bc262deb01550986cd11cde3c2bd5e432a0"
    assert (sbom.layer_index, sbom.kind, sbom.predicate_type, sbom.size, sbom.subject_digest) == (
        0,
        "sbom",
        "https://spdx.dev/Document",
        7434213,
        subject,
    )
    assert sbom.digest == "sha256:618f763df8b0bc534dbc513a32d9563c6b13994fdf6bc7cf686e33356c1b06f6"
    assert (slsa.layer_index, slsa.kind, slsa.size) == (1, "provenance", 11770)
    assert slsa.digest == "sha256:2205730e8243c2f26e8d8b4911af75454fb73c4756804abd03ab4e6178ddaf8e"


def test_buildkit_oci_artifact_attestation_manifest_without_descriptor() -> None:
    manifest = load(SUPPLY_CHAIN / "buildkit_doc_attestation_storage_attestation_manifest_oci-artifact.json")
    (ref,) = describe(manifest)
    assert (ref.source, ref.kind, ref.subject_digest) == (
        "buildx",
        "sbom",
        "sha256:23678f31b3b3586c4fb318aecfe64a96a1f0916ba8faf9b2be2abee63fa9e827",
    )


def test_cosign_sig_with_fulcio_certificate_and_rekor_bundle() -> None:
    manifest = load(SUPPLY_CHAIN / "cosign_sig_manifest_go-bazel-github-workflow.DERIVED.json")
    (ref,) = describe(manifest, tags=("latest-is-not-a-cosign-tag", SIG_TAG))
    record = attestation_record(ref)
    repo = "https://github.com/salrashid123/go-bazel-github-workflow"
    assert {k: v for k, v in record.items() if v is not None} == {
        "owner_login": "octo",
        "package_name": "app",
        "digest": "sha256:d8a030716080e45139ff0d6d8de7649cc500dc34ff2b9d699200c0a5d550464b",
        "media_type": "application/vnd.dev.cosign.simplesigning.v1+json",
        "size": 257,
        "manifest_digest": "sha256:" + "f" * 64,
        "layer_index": 0,
        "subject_digest": "sha256:" + "a" * 64,
        "source": "cosign",
        "kind": "signature",
        "envelope": "simplesigning",
        "signed": True,
        "signer_identity": f"{repo}/.github/workflows/release.yaml@refs/tags/v0.0.30",
        "signer_issuer": "https://token.actions.githubusercontent.com",
        "signer_workflow": f"{repo}/.github/workflows/release.yaml@refs/tags/v0.0.30",
        "signer_repository": repo,
        "signer_revision": "7624bd5f279fb5d4700ea72c1b2373ee33960700",
        "signer_ref": "refs/tags/v0.0.30",
        "signer_trigger": "push",
        "signer_run": f"{repo}/actions/runs/22498294485/attempts/1",
        "signed_at": "2026-02-27T18:20:46Z",  # integratedTime 1772216446
        "tlog_index": 1004096555,
        "created_at": "2026-02-27T18:20:46Z",
    }


def test_cosign_sig_two_signers_one_record_per_layer() -> None:
    manifest = load(OCI / "cosign_signature_manifest.gcr.dlorenc-demo.json")
    refs = describe(manifest, tags=(SIG_TAG,))
    assert [(r.layer_index, r.digest, r.size, r.kind, r.signed) for r in refs] == [
        (0, "sha256:1119abab63e605dcc281019bad0424744178b6f61ba57378701fe7391994c999", 210, "signature", True),
        (1, "sha256:583246418c2afd5bfe29694793d07da37ffd552aadf8879b1d98047178b80398", 219, "signature", True),
    ]
    assert refs[0].signer_identity is None and refs[0].signed_at is None


def test_cosign_att_layers_kind_from_predicate_type_annotation() -> None:
    leaf, _ = make_certificate(email="dev@example.com", der={8: "https://github.com/login/oauth"})
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:c", "size": 2},
        "layers": [
            {
                "mediaType": "application/vnd.dsse.envelope.v1+json",
                "digest": "sha256:" + "1" * 64,
                "size": 900,
                "annotations": {
                    "predicateType": "https://cosign.sigstore.dev/attestation/vuln/v1",
                    "dev.cosignproject.cosign/signature": "",
                    "dev.sigstore.cosign/certificate": pem(leaf),
                    "dev.sigstore.cosign/bundle": json.dumps(
                        {"Payload": {"integratedTime": 1700000000, "logIndex": 7}}
                    ),
                },
            },
            {
                "mediaType": "application/vnd.dsse.envelope.v1+json",
                "digest": "sha256:" + "2" * 64,
                "size": 800,
                "annotations": {"predicateType": "https://openvex.dev/ns/v0.2.0"},
            },
        ],
    }
    vuln, vex = describe(manifest, tags=("sha256-" + "b" * 64 + ".att",))
    assert (vuln.source, vuln.envelope, vuln.kind, vuln.subject_digest) == (
        "cosign",
        "dsse",
        "vulnerability-scan",
        "sha256:" + "b" * 64,
    )
    assert (vuln.signer_identity, vuln.signer_issuer, vuln.signed_at, vuln.tlog_index) == (
        "dev@example.com",
        "https://github.com/login/oauth",
        "2023-11-14T22:13:20Z",  # date -u -d @1700000000
        7,
    )
    assert (vex.kind, vex.predicate_type, vex.layer_index) == ("vex", "https://openvex.dev/ns/v0.2.0", 1)


def test_cosign_bad_annotations_are_warnings() -> None:
    manifest = {
        "layers": [
            {
                "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                "digest": "sha256:" + "3" * 64,
                "size": 10,
                "annotations": {"dev.sigstore.cosign/certificate": "not a pem", "dev.sigstore.cosign/bundle": "{"},
            }
        ]
    }
    (ref,) = describe(manifest, tags=(SIG_TAG,))
    assert ref.signer_identity is None
    assert len(ref.warnings) == 2
    assert all(w.startswith("octo/app@sha256:3333") for w in ref.warnings)


def test_notation_signature_referrer() -> None:
    manifest = load(OCI / "oci_manifest_notation_signature.ghcr.gpoulios-testpkg.json")
    (ref,) = describe(manifest, "sha256:879fb0")
    assert (ref.source, ref.envelope, ref.signed, ref.kind, ref.predicate_type) == (
        "referrer",
        "notation",
        True,
        "signature",
        None,
    )
    assert ref.subject_digest == "sha256:138fc25e9aaf93251609d23a8a50e91d50462f5dccb53cffde8db7a46385cfec"
    assert ref.media_type == "application/jose+json"
    assert ref.created_at == "2025-04-09T16:53:00Z"


def test_sigstore_bundle_referrers() -> None:
    cosign_manifest = load(OCI / "oci_manifest_sigstore_bundle_cosign.ghcr.gpoulios-testpkg.json")
    (ref,) = describe(cosign_manifest)
    assert (ref.source, ref.envelope, ref.kind, ref.predicate_type, ref.created_at) == (
        "referrer",
        "sigstore-bundle",
        "provenance",
        "https://slsa.dev/provenance/v0.2",
        "2025-04-10T14:19:09Z",
    )
    assert (ref.digest, ref.size) == ("sha256:855097fd1ae34ad3e4101218738589ab56fbf41e455c34fc7f13229bdf470f64", 4553)
    assert ref.subject_digest == "sha256:7fe4940f551b5c1c58e815b882024e2eed6b60d2380a3134aa3bcf603f2dc350"
    github = load(OCI / "oci_manifest_sigstore_bundle_github_attestation.ghcr.gpoulios-testpkg.json")
    (ref,) = describe(github)
    assert (ref.kind, ref.predicate_type, ref.created_at, ref.subject_digest) == (
        "provenance",
        "https://slsa.dev/provenance/v1",
        "2025-04-07T14:08:20.999Z",
        "sha256:9c24ac7eca13411bee8f335f96442c0b5ef8de65ff1f85da6f16fcb0c046bd78",
    )
    assert ref.bundle_content == "dsse-envelope"


def test_message_signature_bundle_is_a_signature() -> None:
    manifest = load(OCI / "oci_manifest_sigstore_bundle_cosign.ghcr.gpoulios-testpkg.json")
    manifest["annotations"] = {"dev.sigstore.bundle.content": "message-signature"}
    (ref,) = describe(manifest)
    assert (ref.kind, ref.predicate_type) == ("signature", None)


def test_no_documents() -> None:
    image = load(OCI / "oci_manifest_image.ghcr.gpoulios-testpkg.json")
    index = load(OCI / "oci_index_buildx_attestation.ghcr.gpoulios-testpkg.json")
    assert describe(image) == []
    assert describe(index) == []
    sbom_tag = {"layers": [{"mediaType": "text/spdx+json", "digest": "sha256:9", "size": 1}]}
    assert describe(sbom_tag, tags=("sha256-" + "c" * 64 + ".sbom",)) == []
    other = {"layers": [{"mediaType": "application/vnd.in-toto+json", "digest": "sha256:9", "size": 1}]}
    assert describe(other, descriptor={"annotations": {"vnd.docker.reference.type": "something-else"}}) == []


def test_buildx_ignores_unknown_layer_types_and_keeps_positions() -> None:
    manifest = {
        "artifactType": "application/vnd.docker.attestation.manifest.v1+json",
        "subject": {"digest": "sha256:s"},
        "layers": [
            {"mediaType": "application/vnd.example+json", "digest": "sha256:x", "size": 1},
            {"mediaType": "application/vnd.in-toto+json", "digest": "sha256:y", "size": 2},
        ],
    }
    (ref,) = describe(manifest)
    assert (ref.layer_index, ref.kind, ref.predicate_type) == (1, None, None)


def test_plain_sbom_referrer_artifact() -> None:
    manifest = {
        "artifactType": "application/spdx+json",
        "subject": {"digest": "sha256:s"},
        "layers": [{"mediaType": "application/spdx+json", "digest": "sha256:y", "size": 2}],
    }
    (ref,) = describe(manifest)
    assert (ref.source, ref.kind, ref.envelope, ref.signed) == ("referrer", "sbom", "none", False)


@pytest.mark.parametrize(
    ("kind", "attestations", "sbom_packages", "expected"),
    [
        ("provenance", False, False, (False, "not-selected")),
        ("sbom", False, False, (False, "not-selected")),
        ("sbom", True, False, (False, "not-selected")),
        ("sbom", False, True, (True, "read")),
        ("sbom", True, True, (True, "read")),
        ("provenance", True, False, (True, "read")),
        ("provenance", False, True, (False, "not-selected")),
        ("signature", False, True, (False, "not-selected")),
        (None, False, True, (True, "read")),
        (None, True, False, (True, "read")),
    ],
)
def test_selection_rule(kind: str | None, attestations: bool, sbom_packages: bool, expected: tuple) -> None:
    decision = download_decision(
        ref_for(kind=kind), attestations_selected=attestations, sbom_packages_selected=sbom_packages
    )
    assert (decision.download, decision.reason) == expected
    assert decision.warning is None


def test_max_document_mb_by_descriptor_size() -> None:
    at_limit = ref_for(kind="sbom", size=2 * 1048576)
    over = ref_for(kind="sbom", size=2 * 1048576 + 1)
    assert download_decision(
        at_limit, attestations_selected=True, sbom_packages_selected=True, max_document_mb=2
    ).download
    decision = download_decision(over, attestations_selected=True, sbom_packages_selected=True, max_document_mb=2)
    assert (decision.download, decision.reason) == (False, "too-large")
    assert (
        decision.warning is not None
        and "octo/app@sha256:dddd" in decision.warning
        and "2097153 bytes" in decision.warning
    )
    default = ref_for(kind="provenance", size=64 * 1048576 + 1)
    assert download_decision(default, attestations_selected=True, sbom_packages_selected=False).reason == "too-large"


def test_notation_cose_is_downloaded() -> None:
    ref = ref_for("notation", media_type="application/cose", kind="signature")
    assert download_decision(ref, attestations_selected=True, sbom_packages_selected=True).reason == "read"
    assert download_decision(ref, attestations_selected=False, sbom_packages_selected=True).reason == "not-selected"


@pytest.mark.parametrize(
    ("predicate_type", "kind"),
    [
        ("https://slsa.dev/provenance/v0.2", "provenance"),
        ("https://slsa.dev/provenance/v1", "provenance"),
        ("https://spdx.dev/Document", "sbom"),
        ("https://spdx.dev/Document/v2.3", "sbom"),
        ("https://spdx.dev/Documentation", "other"),
        ("https://cyclonedx.org/bom", "sbom"),
        ("https://cyclonedx.org/bom/v1.5", "sbom"),
        ("https://cyclonedx.org/schema", "sbom"),
        ("https://openvex.dev/ns", "vex"),
        ("https://openvex.dev/ns/v0.2.0", "vex"),
        ("https://cosign.sigstore.dev/attestation/vuln/v1", "vulnerability-scan"),
        ("https://sigstore.dev/cosign/sign/v1", "signature"),
        ("https://in-toto.io/attestation/test-result/v0.1", "other"),
        (None, None),
    ],
)
def test_kind_for_predicate(predicate_type: str | None, kind: str | None) -> None:
    assert kind_for_predicate(predicate_type) == kind


def test_envelope_for() -> None:
    assert envelope_for("application/vnd.in-toto+json") == "none"
    assert envelope_for("application/vnd.dsse.envelope.v1+json") == "dsse"
    assert envelope_for("application/vnd.dev.cosign.simplesigning.v1+json") == "simplesigning"
    for spelling in (
        "application/vnd.dev.sigstore.bundle+json;version=0.1",
        "application/vnd.dev.sigstore.bundle+json;version=0.2",
        "application/vnd.dev.sigstore.bundle+json;version=0.3",
        "application/vnd.dev.sigstore.bundle.v0.3+json",
    ):
        assert envelope_for(spelling) == "sigstore-bundle"
    assert envelope_for("application/jose+json") is None
    assert envelope_for("application/jose+json", notation=True) == "notation"
    assert envelope_for("application/cose", notation=True) == "notation"
    assert envelope_for("application/vnd.oci.image.layer.v1.tar+gzip") is None


def test_cosign_bundle_annotation_odd_values() -> None:
    from tap_ghcr.attestations.cosign import annotation_fields

    fields, warnings = annotation_fields(
        {"dev.sigstore.cosign/bundle": json.dumps({"Payload": {"integratedTime": "1e400", "logIndex": "x"}})}, "doc"
    )
    assert (fields, warnings) == ({"signed_at": None, "tlog_index": None}, [])
    fields, _ = annotation_fields(
        {"dev.sigstore.cosign/bundle": '{"Payload": {"integratedTime": 99999999999999}}'}, "d"
    )
    assert fields["signed_at"] is None


def test_malformed_manifest_shapes_give_no_documents_or_skip_fields() -> None:
    assert describe({"subject": {"digest": "sha256:s"}, "layers": {"not": "a list"}}) == []
    odd = {
        "subject": {"digest": "sha256:s"},
        "annotations": ["not", "a", "dict"],
        "config": "nope",
        "layers": [None, {"mediaType": "application/vnd.in-toto+json", "digest": "sha256:y", "annotations": []}],
    }
    (ref,) = describe(odd, descriptor={"annotations": "x"})
    assert (ref.layer_index, ref.source, ref.size, ref.kind) == (1, "referrer", None, None)


@pytest.mark.parametrize(
    ("value", "number", "time"),
    [
        (1712345678, 1712345678, "2024-04-05T19:34:38Z"),
        ("1712345678", 1712345678, "2024-04-05T19:34:38Z"),  # protobuf-JSON int64
        ("-5", -5, "1969-12-31T23:59:55Z"),
        (True, None, None),  # not 1, not 1970-01-01T00:00:01Z
        (1e400, None, None),  # the float JSON's `1e400` becomes: int() of it raised OverflowError
        (float("nan"), None, None),
        (1.0, None, None),
        (2**63, None, None),
        ("9" * 30, None, None),
        (" 12", None, None),
        ("1_000", None, None),
        ([1], None, None),
        (None, None, None),
    ],
)
def test_transparency_log_numbers_are_int64_or_nothing(value, number, time) -> None:
    from tap_ghcr.attestations.cosign import as_int, unix_time

    assert as_int(value) == number and type(as_int(value)) is (int if number is not None else type(None))
    assert unix_time(value) == time
