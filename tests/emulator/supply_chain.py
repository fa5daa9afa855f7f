"""Supply-chain documents pushed the way each tool stores them on ghcr.io.

- buildx / BuildKit: an attestation manifest per platform inside the image index, one in-toto statement
  per layer (SLSA provenance v0.2 from a real buildx sample re-targeted at the platform image, and an SPDX
  SBOM with generated packages); the legacy form (dummy image config) and BuildKit's OCI-artifact form
  (`artifactType`, empty config, `subject`).
- cosign: `sha256-<hex>.sig` (simple-signing layer with signature, Fulcio-like certificate and Rekor bundle
  annotations) and `sha256-<hex>.att` (a DSSE envelope layer holding an in-toto statement).
- GitHub `actions/attest-build-provenance` with push-to-registry: a sigstore bundle v0.3 manifest with a
  `subject`, listed by a referrers tag-schema index tagged `sha256-<hex>` (no suffix).

Each builder records, as literal values independent of the tap's parsing code, the `attestations` record
the tap should emit for every document (and the one made only of what the registry says), and the
`sbom_packages` records of every SBOM.
"""

from __future__ import annotations

import base64
import json
import typing as t
from pathlib import Path

from tests.emulator.dataset import INTOTO, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST, SIMPLESIGNING, Dataset, sha256

if t.TYPE_CHECKING:
    from tests.emulator.dataset import PackageBuilder

SUPPLY_CHAIN = Path(__file__).resolve().parent.parent / "data" / "supply-chain"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
DOCKER_ATTESTATION = "application/vnd.docker.attestation.manifest.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SLSA_02 = "https://slsa.dev/provenance/v0.2"
SLSA_1 = "https://slsa.dev/provenance/v1"
SPDX = "https://spdx.dev/Document"
VULN = "https://cosign.sigstore.dev/attestation/vuln/v1"
ISSUER = "https://token.actions.githubusercontent.com"
SBOM_CREATED = "2026-01-01T00:00:00Z"

#: The record fields read from the cupdate sample (copied from tests/test_attestations_provenance.py's literals).
CUPDATE_PROVENANCE = {
    "builder_id": "https://github.com/AlexGustafsson/cupdate/actions/runs/14008088422/attempts/1",
    "build_type": "https://mobyproject.org/buildkit@v1",
    "build_invocation_id": "uys57pb7mk5d2ho2yj3tfo85i",
    "build_started_at": "2025-03-22T11:23:15.39980189Z",
    "build_finished_at": "2025-03-22T11:26:10.631712748Z",
    "source_uri": "https://github.com/AlexGustafsson/cupdate",
    "source_revision": "2fbefbc45dd73e49c981e7a59c9b3d65314ed315",
    "source_ref": None,
    "build_config_path": "Dockerfile",
    "materials": [
        {"uri": "pkg:docker/docker/buildkit-syft-scanner@stable-1",
         "digest": "sha256:434b49272c090c4788e38c8d8d6008c3741c4a8d4638e62dff5cdc6409d7927a"},
        {"uri": "pkg:docker/golang@1.24.1?digest="
                "sha256:c5adecdb7b3f8c5ca3c88648a861882849cc8b02fed68ece31e25de88ad13418"
                "&platform=linux%2Famd64",
         "digest": "sha256:c5adecdb7b3f8c5ca3c88648a861882849cc8b02fed68ece31e25de88ad13418"},
        {"uri": "pkg:docker/node@22.14.0?digest="
                "sha256:cfef4432ab2901fd6ab2cb05b177d3c6f8a7f48cb22ad9d7ae28bb6aa5f8b471"
                "&platform=linux%2Famd64",
         "digest": "sha256:cfef4432ab2901fd6ab2cb05b177d3c6f8a7f48cb22ad9d7ae28bb6aa5f8b471"},
    ],
}
PROVENANCE_NULLS = dict.fromkeys(CUPDATE_PROVENANCE)
SIGNER_NULLS = dict.fromkeys(("signer_identity", "signer_issuer", "signer_workflow", "signer_repository",
                              "signer_revision", "signer_ref", "signer_trigger", "signer_run"))
SBOM_NULLS = {"sbom_format": None, "sbom_spec_version": None, "sbom_package_count": None}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unix_iso(seconds: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def spdx_package(prefix: str, i: int) -> tuple[dict, dict]:
    """An SPDX package and the `sbom_packages` fields it should give (three shapes, by i % 3)."""
    spdxid = f"SPDXRef-Package-{prefix}-{i}"
    if i % 3 == 0:  # npm scoped (percent-encoded namespace), CPE, LIBRARY purpose
        purl = f"pkg:npm/%40acme/{prefix}-util-{i}@1.{i}.0"
        package = {
            "name": f"@acme/{prefix}-util-{i}", "SPDXID": spdxid, "versionInfo": f"1.{i}.0",
            "supplier": "Organization: Acme Corp", "downloadLocation": "NOASSERTION",
            "licenseConcluded": "MIT", "licenseDeclared": "NOASSERTION", "primaryPackagePurpose": "LIBRARY",
            "externalRefs": [
                {"referenceCategory": "SECURITY", "referenceType": "cpe23Type",
                 "referenceLocator": f"cpe:2.3:a:acme:{prefix}-util-{i}:1.{i}.0:*:*:*:*:*:*:*"},
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl},
            ],
        }
        fields = {"package_ref": spdxid, "name": f"@acme/{prefix}-util-{i}", "version": f"1.{i}.0", "purl": purl,
                  "purl_type": "npm", "purl_namespace": "@acme", "purl_name": f"{prefix}-util-{i}",
                  "cpe": f"cpe:2.3:a:acme:{prefix}-util-{i}:1.{i}.0:*:*:*:*:*:*:*", "license_concluded": "MIT",
                  "license_declared": None, "supplier": "Acme Corp", "package_type": "library"}
    elif i % 3 == 1:  # Debian packages, the first two shared by every SBOM; SPDX 2.2 category spelling
        name, version = {1: ("libssl3", "3.0.11"), 4: ("zlib1g", "1:1.2.13")}.get(i, (f"lib{prefix}{i}", "1.0"))
        purl = f"pkg:deb/debian/{name}@{version.replace(':', '%3A')}?arch=amd64"
        package = {
            "name": name, "SPDXID": spdxid, "versionInfo": version, "supplier": "Person: Debian Maintainers",
            "downloadLocation": "NOASSERTION", "licenseConcluded": "NONE", "licenseDeclared": "Apache-2.0",
            "externalRefs": [{"referenceCategory": "PACKAGE_MANAGER", "referenceType": "purl",
                              "referenceLocator": purl}],
        }
        fields = {"package_ref": spdxid, "name": name, "version": version, "purl": purl, "purl_type": "deb",
                  "purl_namespace": "debian", "purl_name": name, "cpe": None, "license_concluded": None,
                  "license_declared": "Apache-2.0", "supplier": "Debian Maintainers", "package_type": None}
    else:  # no references at all
        package = {"name": f"{prefix}-blob-{i}", "SPDXID": spdxid, "versionInfo": f"0.{i}",
                   "supplier": "NOASSERTION", "downloadLocation": "NOASSERTION",
                   "primaryPackagePurpose": "FILE"}
        fields = {"package_ref": spdxid, "name": f"{prefix}-blob-{i}", "version": f"0.{i}", "purl": None,
                  "purl_type": None, "purl_namespace": None, "purl_name": None, "cpe": None,
                  "license_concluded": None, "license_declared": None, "supplier": None, "package_type": "file"}
    return package, fields


class SupplyChainBuilder:
    """Supply-chain content for one package (see the module docstring)."""

    def __init__(self, builder: PackageBuilder) -> None:
        self.b = builder
        self.pkg = builder.package

    # records ---------------------------------------------------------------------------------------

    def _record(self, manifest: str, index: int, layer: dict, *, subject: str, source: str, kind: str | None,
                predicate_type: str | None, envelope: str, read: dict, registry: dict | None = None) -> None:
        """Record the expected `attestations` record of one layer, read and as the registry says it."""
        base = {
            "owner_login": self.pkg.owner.login, "package_name": self.pkg.name, "digest": layer["digest"],
            "media_type": layer["mediaType"], "size": layer["size"], "manifest_digest": manifest,
            "layer_index": index, "subject_digest": subject, "source": source, "kind": kind,
            "predicate_type": predicate_type, "statement_type": None, "envelope": envelope,
            "signed": envelope != "none", **SIGNER_NULLS, "signed_at": None, "tlog_index": None,
            **PROVENANCE_NULLS, **SBOM_NULLS, "created_at": None,
        }
        says = {**base, **(registry or {})}
        self.pkg.attestations_registry[(manifest, index)] = says
        self.pkg.attestations[(manifest, index)] = {**says, **read}

    # buildx --------------------------------------------------------------------------------------

    def provenance_statement(self, subject: str) -> bytes:
        statement = json.loads((SUPPLY_CHAIN / "buildx_slsa_v0.2_mode-max_provenance_ghcr_cupdate.json").read_bytes())
        repo = f"ghcr.io/{self.pkg.registry_repository}"
        statement["subject"] = [{"name": f"pkg:docker/{repo}@latest?platform=linux%2Famd64",
                                 "digest": {"sha256": subject[7:]}}]
        return json.dumps(statement).encode()

    def sbom_statement(self, subject: str, count: int, prefix: str) -> tuple[bytes, list[dict]]:
        packages, fields = zip(*(spdx_package(prefix, i) for i in range(count)), strict=True) if count else ((), ())
        statement = {
            "_type": "https://in-toto.io/Statement/v0.1", "predicateType": SPDX,
            "subject": [{"name": f"pkg:docker/ghcr.io/{self.pkg.registry_repository}@latest?platform=linux%2Famd64",
                         "digest": {"sha256": subject[7:]}}],
            "predicate": {"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
                          "name": f"sbom-{prefix}", "documentNamespace": f"https://example.com/{prefix}",
                          "creationInfo": {"created": SBOM_CREATED, "creators": ["Tool: buildkit-v0.20.1"]},
                          "packages": list(packages)},
        }
        return json.dumps(statement).encode(), list(fields)

    def _sbom_packages(self, sbom_digest: str, subject: str, fields: list[dict]) -> None:
        for f in fields:
            self.pkg.sbom_packages[(sbom_digest, f["package_ref"])] = {
                "owner_login": self.pkg.owner.login, "package_name": self.pkg.name, "sbom_digest": sbom_digest,
                "subject_digest": subject, "sbom_format": "spdx", **f,
            }

    def buildx_attestation(self, subject: str, *, sbom_packages: int, oci_artifact: bool,
                           created: str | None = None) -> tuple[str, int]:
        """One platform's attestation manifest: provenance (layer 0) and SPDX SBOM (layer 1)."""
        provenance = self.provenance_statement(subject)
        sbom, fields = self.sbom_statement(subject, sbom_packages, self.pkg.name.replace("/", "-"))
        layers = [
            {"mediaType": INTOTO, "digest": self.b._blob(provenance), "size": len(provenance),
             "annotations": {"in-toto.io/predicate-type": SLSA_02}},
            {"mediaType": INTOTO, "digest": self.b._blob(sbom), "size": len(sbom),
             "annotations": {"in-toto.io/predicate-type": SPDX}},
        ]
        doc: dict[str, t.Any] = {"schemaVersion": 2, "mediaType": OCI_MANIFEST}
        if oci_artifact:
            self.b._blob(b"{}")
            doc["artifactType"] = DOCKER_ATTESTATION
            config = {"mediaType": EMPTY_CONFIG, "digest": sha256(b"{}"), "size": 2, "data": "e30="}
            subject_pushed = self.pkg.manifests[subject]
            doc["subject"] = {"mediaType": subject_pushed.media_type, "digest": subject,
                              "size": len(subject_pushed.body)}
        else:
            config_bytes = json.dumps({"architecture": "unknown", "os": "unknown", "config": {},
                                       "rootfs": {"type": "layers", "diff_ids": [sha256(provenance), sha256(sbom)]}
                                       }).encode()
            config = {"mediaType": OCI_CONFIG, "digest": self.b._blob(config_bytes), "size": len(config_bytes)}
        doc["config"] = config
        doc["layers"] = layers
        if created:
            doc["annotations"] = {"org.opencontainers.image.created": created}
        expected = {
            "kind": "attestation", "platform_os": "unknown", "platform_architecture": "unknown",
            "platform_variant": None, "index_digest": "", "child_digests": None, "subject_digest": subject,
            "config_digest": config["digest"], "config_media_type": config["mediaType"],
            "layers": [{k: x[k] for k in ("digest", "mediaType", "size")} for x in layers],
            "total_size": config["size"] + len(provenance) + len(sbom), "image_created": None, "labels": None,
        }
        manifest = self.b._push(OCI_MANIFEST, doc, expected)
        common = {"subject": subject, "source": "buildx", "envelope": "none"}
        registry = {"created_at": created}
        self._record(manifest, 0, layers[0], kind="provenance", predicate_type=SLSA_02, registry=registry,
                     read={"statement_type": "https://in-toto.io/Statement/v0.1", **CUPDATE_PROVENANCE}, **common)
        self._record(manifest, 1, layers[1], kind="sbom", predicate_type=SPDX, registry=registry,
                     read={"statement_type": "https://in-toto.io/Statement/v0.1", "sbom_format": "spdx",
                           "sbom_spec_version": "SPDX-2.3", "sbom_package_count": sbom_packages,
                           "created_at": created or SBOM_CREATED}, **common)
        self._sbom_packages(layers[1]["digest"], subject, fields)
        return manifest, len(self.pkg.manifests[manifest].body)

    def _raw_attestation(self, subject: str, statement: bytes, predicate_type: str) -> tuple[str, dict]:
        """A legacy buildx attestation manifest with one layer holding `statement` as is (not indexed)."""
        config = json.dumps({"architecture": "unknown", "os": "unknown", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [sha256(statement)]}}).encode()
        layer = {"mediaType": INTOTO, "digest": self.b._blob(statement), "size": len(statement),
                 "annotations": {"in-toto.io/predicate-type": predicate_type}}
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
               "config": {"mediaType": OCI_CONFIG, "digest": self.b._blob(config), "size": len(config)},
               "layers": [layer]}
        expected = {
            "kind": "attestation", "platform_os": None, "platform_architecture": None, "platform_variant": None,
            "index_digest": None, "child_digests": None, "subject_digest": subject, "config_digest": sha256(config),
            "config_media_type": OCI_CONFIG, "layers": [{"digest": layer["digest"], "media_type": INTOTO,
                                                         "size": len(statement)}],
            "total_size": len(config) + len(statement), "image_created": None, "labels": None,
        }
        return self.b._push(OCI_MANIFEST, doc, expected), layer

    def _attach(self, index: str, manifest: str, subject: str) -> str:
        """Re-push `index` with `manifest` added as the attestation of `subject` (a new index, tags moved)."""
        pushed = self.pkg.manifests[index]
        doc = json.loads(pushed.body)
        doc["manifests"].append({"mediaType": OCI_MANIFEST, "digest": manifest,
                                 "size": len(self.pkg.manifests[manifest].body),
                                 "platform": {"architecture": "unknown", "os": "unknown"},
                                 "annotations": {"vnd.docker.reference.digest": subject,
                                                 "vnd.docker.reference.type": "attestation-manifest"}})
        tags = [tag for tag, digest in self.pkg.tags.items() if digest == index]
        expected = {k: v for k, v in pushed.expected.items()
                    if k not in ("owner_login", "package_name", "digest", "media_type", "size", "artifact_type",
                                 "annotations")}
        expected["child_digests"] = [*expected["child_digests"], manifest]
        # The old index goes: its version is deleted, as a re-push of the same tags would leave it untagged.
        for version in self.pkg.versions:
            if version.digest == index:
                version.tags = []
        self.pkg.versions = [v for v in self.pkg.versions if v.digest != index]
        del self.pkg.manifests[index]
        new = self.b._push(OCI_INDEX, doc, expected, tags)
        for child in expected["child_digests"]:
            self.pkg.manifests[child].expected["index_digest"] = new
        return new

    def malformed_provenance(self, index: str) -> tuple[str, str]:
        """Add to `index` a buildx attestation whose provenance statement is cut short (not JSON).

        Returns (attestation manifest digest, layer digest); its expected record is what the registry says.
        """
        subject = self.pkg.manifests[index].expected["child_digests"][0]
        statement = self.provenance_statement(subject)[:200]
        manifest, layer = self._raw_attestation(subject, statement, SLSA_02)
        self._record(manifest, 0, layer, subject=subject, source="buildx", kind="provenance", predicate_type=SLSA_02,
                     envelope="none", read={})
        self._attach(index, manifest, subject)
        return manifest, layer["digest"]

    def raw_sbom(self, index: str, statement: bytes) -> str:
        """Add to `index` a buildx SBOM attestation holding `statement` as is (no expected records kept)."""
        subject = self.pkg.manifests[index].expected["child_digests"][0]
        manifest, _ = self._raw_attestation(subject, statement, SPDX)
        return self._attach(index, manifest, subject)

    def attested_index(self, *, tags: t.Sequence[str] = (), sbom_packages: int = 4, oci_artifact: bool = False,
                       platforms: t.Sequence[tuple[str, str]] = (("linux", "amd64"),), created: str | None = None,
                       labels: dict[str, str] | None = None) -> str:
        """An image index with one platform image per platform and buildx attestations for each."""
        created = created or self.b.dataset.tick(0)
        descriptors, children = [], []
        for os_, arch in platforms:
            digest = self.b.image(os=os_, arch=arch, created=created, layers=1, labels=labels)
            pushed = self.pkg.manifests[digest]
            descriptors.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(pushed.body),
                                "platform": {"architecture": arch, "os": os_}})
            children.append(digest)
        for image in list(children):
            digest, size = self.buildx_attestation(image, sbom_packages=sbom_packages, oci_artifact=oci_artifact,
                                                   created=created if oci_artifact else None)
            descriptors.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": size,
                                **({"artifactType": DOCKER_ATTESTATION} if oci_artifact else {}),
                                "platform": {"architecture": "unknown", "os": "unknown"},
                                "annotations": {"vnd.docker.reference.digest": image,
                                                "vnd.docker.reference.type": "attestation-manifest"}})
            children.append(digest)
        expected = {
            "kind": "index", **self.b._no_platform(), "index_digest": None, "child_digests": children,
            "subject_digest": None, "config_digest": None, "config_media_type": None, "layers": [],
            "total_size": None, "image_created": None, "labels": None,
        }
        index = self.b._push(OCI_INDEX, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors},
                             expected, tags)
        for child in children:
            self.pkg.manifests[child].expected["index_digest"] = index
        return index

    # cosign --------------------------------------------------------------------------------------

    def signer(self, workflow: str = "release.yml", ref: str = "refs/heads/main", revision: str = "c0ffee" * 6 + "c0ff",
               trigger: str = "push", run: int = 42) -> tuple[str, dict, str]:
        """A Fulcio-like certificate for a GitHub workflow of this package's repository: PEM, fields, base64 DER."""
        from tests.attestations_support import der_b64, make_certificate, pem

        repo = f"https://github.com/{self.pkg.repository or self.pkg.registry_repository}"
        identity = f"{repo}/.github/workflows/{workflow}@{ref}"
        fields = {
            "signer_identity": identity, "signer_issuer": ISSUER, "signer_workflow": identity,
            "signer_repository": repo, "signer_revision": revision, "signer_ref": ref, "signer_trigger": trigger,
            "signer_run": f"{repo}/actions/runs/{run}/attempts/1",
        }
        leaf, _ = make_certificate(uri=identity, raw={1: ISSUER}, der={
            8: ISSUER, 9: fields["signer_workflow"], 12: repo, 13: revision, 14: ref, 20: trigger,
            21: fields["signer_run"]})
        return pem(leaf), fields, der_b64(leaf)

    @staticmethod
    def rekor_bundle(integrated: int, log_index: int) -> str:
        return json.dumps({"SignedEntryTimestamp": "MEUCIQ==",
                           "Payload": {"body": b64(b'{"kind":"hashedrekord"}'), "integratedTime": integrated,
                                       "logIndex": log_index, "logID": "c0d23d6ad406973f" * 4}})

    def _cosign_manifest(self, layers: list[dict], payload: bytes, subject: str, suffix: str, kind: str) -> str:
        config = json.dumps({"architecture": "", "os": "", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [sha256(payload)] * len(layers)}}).encode()
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
               "config": {"mediaType": OCI_CONFIG, "digest": self.b._blob(config), "size": len(config)},
               "layers": layers}
        expected = {
            "kind": kind, **self.b._no_platform(), "index_digest": None, "child_digests": None,
            "subject_digest": subject, "config_digest": sha256(config), "config_media_type": OCI_CONFIG,
            "layers": [{"digest": x["digest"], "media_type": x["mediaType"], "size": x["size"]} for x in layers],
            "total_size": len(config) + len(payload) * len(layers), "image_created": None, "labels": None,
        }
        return self.b._push(OCI_MANIFEST, doc, expected, tags=[f"sha256-{subject[7:]}.{suffix}"])

    def cosign_sig(self, subject: str, *, integrated: int = 1767225600, log_index: int = 170001,
                   signers: int = 1) -> str:
        """`sha256-<hex>.sig`: a simple-signing payload signed keyless (certificate + Rekor bundle annotations).

        With `signers` > 1, as when several identities sign one image: one layer each, all with the same
        payload (one digest) and different certificates and log entries.
        """
        payload = json.dumps({"critical": {"identity": {"docker-reference": f"ghcr.io/{self.pkg.registry_repository}"},
                                           "image": {"docker-manifest-digest": subject},
                                           "type": "cosign container image signature"},
                              "optional": None}).encode()
        digest = self.b._blob(payload)
        layers, records = [], []
        for n in range(signers):
            cert, signer, _ = self.signer(workflow="release.yml" if n == 0 else f"sign-{n}.yml", run=42 + n)
            layers.append({"mediaType": SIMPLESIGNING, "digest": digest, "size": len(payload),
                           "annotations": {"dev.cosignproject.cosign/signature": f"MEUCIQDx{n}" + "A" * 59 + "==",
                                           "dev.sigstore.cosign/certificate": cert, "dev.sigstore.cosign/chain": cert,
                                           "dev.sigstore.cosign/bundle": self.rekor_bundle(integrated + n,
                                                                                           log_index + 10 * n)}})
            records.append({**signer, "signed_at": unix_iso(integrated + n), "tlog_index": log_index + 10 * n,
                            "created_at": unix_iso(integrated + n)})
        manifest = self._cosign_manifest(layers, payload, subject, "sig", "signature")
        for n, (layer, says) in enumerate(zip(layers, records, strict=True)):
            self._record(manifest, n, layer, subject=subject, source="cosign", kind="signature", predicate_type=None,
                         envelope="simplesigning", registry=says, read={})
        return manifest

    def cosign_att(self, subject: str, *, integrated: int = 1767225660, log_index: int = 170002) -> str:
        """`sha256-<hex>.att`: a DSSE envelope holding an in-toto statement (a cosign vulnerability scan)."""
        statement = {"_type": "https://in-toto.io/Statement/v1", "predicateType": VULN,
                     "subject": [{"name": f"ghcr.io/{self.pkg.registry_repository}",
                                  "digest": {"sha256": subject[7:]}}],
                     "predicate": {"scanner": {"uri": "pkg:github/aquasecurity/trivy@0.50.0", "result": {}},
                                   "metadata": {"scanStartedOn": "2026-01-01T00:00:00Z",
                                                "scanFinishedOn": "2026-01-01T00:01:00Z"}}}
        envelope = json.dumps({"payloadType": "application/vnd.in-toto+json",
                               "payload": b64(json.dumps(statement).encode()),
                               "signatures": [{"keyid": "", "sig": "MEUCIQ=="}]}).encode()
        cert, signer, _ = self.signer()
        layer = {"mediaType": DSSE, "digest": self.b._blob(envelope), "size": len(envelope),
                 "annotations": {"dev.cosignproject.cosign/signature": "", "predicateType": VULN,
                                 "dev.sigstore.cosign/certificate": cert,
                                 "dev.sigstore.cosign/bundle": self.rekor_bundle(integrated, log_index)}}
        manifest = self._cosign_manifest([layer], envelope, subject, "att", "attestation")
        says = {**signer, "signed_at": unix_iso(integrated), "tlog_index": log_index,
                "created_at": unix_iso(integrated)}
        self._record(manifest, 0, layer, subject=subject, source="cosign", kind="vulnerability-scan",
                     predicate_type=VULN, envelope="dsse", registry=says,
                     read={"statement_type": "https://in-toto.io/Statement/v1"})
        return manifest

    # referrers (actions/attest-build-provenance) ------------------------------------------------

    def github_provenance(self, subject: str, *, integrated: int = 1767225720, log_index: int = 170003,
                          created: str = "2026-01-01T00:02:30.123Z") -> str:
        """A sigstore bundle v0.3 (DSSE SLSA v1 statement) referring to `subject`, and its tag-schema index."""
        repo = f"https://github.com/{self.pkg.repository or self.pkg.registry_repository}"
        revision, ref, path = "feedface" * 5, "refs/tags/v1.0.0", ".github/workflows/release.yml"
        run = f"{repo}/actions/runs/314/attempts/1"
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": f"ghcr.io/{self.pkg.registry_repository}", "digest": {"sha256": subject[7:]}}],
            "predicateType": SLSA_1,
            "predicate": {
                "buildDefinition": {
                    "buildType": "https://actions.github.io/buildtypes/workflow/v1",
                    "externalParameters": {"workflow": {"ref": ref, "repository": repo, "path": path}},
                    "internalParameters": {"github": {"event_name": "release", "repository_id": "1",
                                                      "repository_owner_id": "2", "runner_environment":
                                                      "github-hosted"}},
                    "resolvedDependencies": [{"uri": f"git+{repo}@{ref}", "digest": {"gitCommit": revision}}],
                },
                "runDetails": {"builder": {"id": "https://github.com/actions/runner/github-hosted"},
                               "metadata": {"invocationId": run}},
            },
        }
        _, signer, der = self.signer(ref=ref, revision=revision, trigger="release", run=314)
        bundle = json.dumps({
            "mediaType": BUNDLE,
            "verificationMaterial": {
                "certificate": {"rawBytes": der},
                "tlogEntries": [{"logIndex": str(log_index),
                                 "logId": {"keyId": "wNI9atQGlz+VWfO6LRygH4QUfY/8W4RFwiT5i5WRgB0="},
                                 "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                                 "integratedTime": str(integrated)}],
            },
            "dsseEnvelope": {"payload": b64(json.dumps(statement).encode()),
                             "payloadType": "application/vnd.in-toto+json",
                             "signatures": [{"sig": "MEUCIQ=="}]},
        }).encode()
        self.b._blob(b"{}")
        layer = {"mediaType": BUNDLE, "digest": self.b._blob(bundle), "size": len(bundle)}
        pushed_subject = self.pkg.manifests[subject]
        annotations = {"dev.sigstore.bundle.content": "dsse-envelope", "dev.sigstore.bundle.predicateType": SLSA_1,
                       "org.opencontainers.image.created": created}
        doc = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE,
               "config": {"mediaType": EMPTY_CONFIG, "digest": sha256(b"{}"), "size": 2},
               "layers": [layer],
               "subject": {"mediaType": pushed_subject.media_type, "digest": subject, "size": len(pushed_subject.body)},
               "annotations": annotations}
        expected = {
            "kind": "attestation", **self.b._no_platform(), "index_digest": "", "child_digests": None,
            "subject_digest": subject, "config_digest": sha256(b"{}"), "config_media_type": EMPTY_CONFIG,
            "layers": [{"digest": layer["digest"], "media_type": BUNDLE, "size": len(bundle)}],
            "total_size": 2 + len(bundle), "image_created": None, "labels": None,
        }
        manifest = self.b._push(OCI_MANIFEST, doc, expected)
        body = self.pkg.manifests[manifest].body
        tag_index = {"schemaVersion": 2, "mediaType": OCI_INDEX,
                     "manifests": [{"mediaType": OCI_MANIFEST, "digest": manifest, "size": len(body),
                                    "artifactType": BUNDLE, "annotations": annotations}]}
        index_expected = {
            "kind": "index", **self.b._no_platform(), "index_digest": None, "child_digests": [manifest],
            "subject_digest": subject, "config_digest": None, "config_media_type": None, "layers": [],
            "total_size": None, "image_created": None, "labels": None,
        }
        index = self.b._push(OCI_INDEX, tag_index, index_expected, tags=[f"sha256-{subject[7:]}"])
        self.pkg.manifests[manifest].expected["index_digest"] = index
        provenance = {
            "builder_id": "https://github.com/actions/runner/github-hosted",
            "build_type": "https://actions.github.io/buildtypes/workflow/v1",
            "build_invocation_id": run, "build_started_at": None, "build_finished_at": None,
            "source_uri": repo, "source_revision": revision, "source_ref": ref, "build_config_path": path,
            "materials": [{"uri": f"git+{repo}@{ref}", "digest": f"gitCommit:{revision}"}],
        }
        self._record(manifest, 0, layer, subject=subject, source="referrer", kind="provenance", predicate_type=SLSA_1,
                     envelope="sigstore-bundle", registry={"created_at": created},
                     read={"statement_type": "https://in-toto.io/Statement/v1", **signer,
                           "signed_at": unix_iso(integrated), "tlog_index": log_index, **provenance})
        return manifest

    def signed_release(self, *, tags: t.Sequence[str], sbom_packages: int = 4, oci_artifact: bool = False,
                       labels: dict[str, str] | None = None, created: str | None = None, signers: int = 2) -> str:
        """An attested index, signed with cosign (.sig, .att) and with GitHub build provenance (referrer)."""
        index = self.attested_index(tags=tags, sbom_packages=sbom_packages, oci_artifact=oci_artifact,
                                    labels=labels, created=created)
        self.cosign_sig(index, signers=signers)
        self.cosign_att(index)
        self.github_provenance(index)
        return index


def supply_chain_dataset(sbom_packages: int = 4) -> Dataset:
    """A small organisation with every storage form of supply-chain documents, for the end-to-end tests.

    - acme/signed: a buildx index (legacy attestation form) signed with cosign (.sig, .att) and with GitHub
      build provenance as a referrer;
    - acme/artifact: a buildx index with BuildKit's OCI-artifact attestation form, nothing else;
    - acme/plain: an image with no document at all.
    """
    ds = Dataset(seed=13)
    ds.tokens["ghp_supplychain00000000000000000000000001"] = "octo-admin"
    signed = ds.package("acme", "signed", repository="acme/signed")
    signed.supply_chain().signed_release(tags=["1.0", "latest"], sbom_packages=sbom_packages,
                                         labels={"org.opencontainers.image.source": "https://github.com/acme/signed"})
    artifact = ds.package("acme", "artifact", repository="acme/artifact")
    artifact.supply_chain().attested_index(tags=["2.0"], sbom_packages=sbom_packages, oci_artifact=True,
                                           created="2026-01-02T03:04:05Z")
    plain = ds.package("acme", "plain")
    plain.image(tags=["0.1"])
    return ds
