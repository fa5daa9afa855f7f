"""Which layers of a manifest are supply-chain documents, and what the registry says about each.

`describe_documents` reads one manifest (no download) and returns one
`DocumentRef` per document layer; `download_decision` applies the
selection rule and `max_document_mb`.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass, field

from tap_ghcr.attestations import cosign
from tap_ghcr.attestations.certificates import SIGNER_FIELDS
from tap_ghcr.attestations.media import (
    BUNDLE_CONTENT,
    BUNDLE_PREDICATE_TYPE,
    COSIGN_SIMPLESIGNING,
    CYCLONEDX_JSON,
    DSSE,
    IMAGE_CREATED,
    INTOTO,
    LAYER_PREDICATE_TYPE,
    NOTARY_SIGNATURE,
    SPDX_JSON,
    envelope_for,
    kind_for_predicate,
)
from tap_ghcr.oci import (
    COSIGN_TAG,
    DOCKER_ATTESTATION_ARTIFACT,
    REFERENCE_TYPE,
    as_object,
    as_size,
    as_text,
    cosign_subject,
    is_index,
    stated_subject,
)
from tap_ghcr.registry.digest import well_formed

MIB = 1024 * 1024
SOURCES = ("buildx", "cosign", "referrer")
READABLE_ENVELOPES = frozenset({"none", "dsse", "simplesigning", "sigstore-bundle", "notation"})


@dataclass(frozen=True)
class DocumentRef:
    """One supply-chain document (a manifest layer) and what the registry says about it.

    Signer fields say what a certificate claims; nothing is verified.
    `manifest_created` is the manifest's `org.opencontainers.image.created`
    annotation; `bundle_content` the bundle manifest's
    `dev.sigstore.bundle.content`; `warnings` what could not be read from
    the annotations (the caller logs them).
    """

    owner_login: str
    package_name: str
    digest: str
    media_type: str
    size: int | None
    manifest_digest: str
    layer_index: int
    subject_digest: str | None
    source: str
    kind: str | None
    predicate_type: str | None
    envelope: str
    signed: bool
    signer_identity: str | None = None
    signer_issuer: str | None = None
    signer_workflow: str | None = None
    signer_repository: str | None = None
    signer_revision: str | None = None
    signer_ref: str | None = None
    signer_trigger: str | None = None
    signer_run: str | None = None
    signed_at: str | None = None
    tlog_index: int | None = None
    manifest_created: str | None = None
    bundle_content: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def name(self) -> str:
        """`owner/package@digest`, the way warnings name a document."""
        return f"{self.owner_login}/{self.package_name}@{self.digest}"

    @property
    def created_at(self) -> str | None:
        """What the registry says: the manifest's annotation, else the transparency log's time."""
        return self.manifest_created or self.signed_at

    def signer(self) -> dict[str, t.Any]:
        """The signer fields, keyed by the contract's names."""
        return {name: getattr(self, name) for name in SIGNER_FIELDS}


@dataclass(frozen=True)
class DownloadDecision:
    """Whether to download a document; `reason` is `read`, `not-selected`, `too-large` or `unreadable`."""

    download: bool
    reason: str
    warning: str | None = None


def _source(document: dict, descriptor_annotations: dict, tags: t.Iterable[str]) -> str | None:
    if descriptor_annotations.get(REFERENCE_TYPE) == "attestation-manifest":
        return "buildx"
    if document.get("artifactType") == DOCKER_ATTESTATION_ARTIFACT:
        return "buildx"
    if any(isinstance(tag, str) and (m := COSIGN_TAG.match(tag)) and m["suffix"] in ("sig", "att") for tag in tags):
        return "cosign"
    if isinstance(document.get("subject"), dict) and document["subject"].get("digest"):
        return "referrer"
    return None


def _subject(document: dict, descriptor_annotations: dict, tags: t.Iterable[str]) -> str | None:
    """What the manifest states, else what its cosign tag names (as `oci.classify` reads it)."""
    stated = stated_subject(descriptor_annotations, document)
    if stated:
        return stated
    cosign = cosign_subject(tags)
    return cosign[0] if cosign else None


def _accepts(source: str, media_type: str) -> bool:
    if source == "buildx":  # BuildKit: "unknown mediaTypes should be ignored"
        return media_type == INTOTO
    if source == "cosign":
        return media_type in (COSIGN_SIMPLESIGNING, DSSE)
    return True


def describe_documents(
    *,
    owner_login: str,
    package_name: str,
    digest: str,
    media_type: str,
    document: dict,
    descriptor: dict | None = None,
    tags: t.Iterable[str] = (),
) -> list[DocumentRef]:
    """The supply-chain documents one manifest holds (empty for an index, an image, anything else).

    `document` is the parsed manifest, `media_type` the type it was served
    with, `digest` its own digest, `descriptor` the descriptor of the index
    that lists it (buildx attestation manifests are recognised by its
    `vnd.docker.reference.type` annotation), `tags` the tags pointing at it
    (cosign `sha256-<hex>.sig|.att`).
    """
    tags = tuple(tags)
    if not isinstance(document, dict) or is_index(media_type, document):
        return []
    desc_annotations = as_object(as_object(descriptor).get("annotations"))
    source = _source(document, desc_annotations, tags)
    if source is None:
        return []
    annotations = {**desc_annotations, **as_object(document.get("annotations"))}
    subject = _subject(document, desc_annotations, tags)
    notation = NOTARY_SIGNATURE in (document.get("artifactType"), as_object(document.get("config")).get("mediaType"))
    content = as_text(annotations.get(BUNDLE_CONTENT))
    refs = []
    layers = document.get("layers")
    for index, layer in enumerate(layers if isinstance(layers, list) else []):
        if not isinstance(layer, dict) or not well_formed(layer.get("digest")):
            continue
        layer_type = as_text(layer.get("mediaType")) or ""
        envelope = envelope_for(layer_type, notation=notation)
        if envelope is None or not _accepts(source, layer_type):
            continue
        layer_annotations = as_object(layer.get("annotations"))
        predicate_type = next((v for k in LAYER_PREDICATE_TYPE if (v := as_text(layer_annotations.get(k)))), None)
        if envelope == "sigstore-bundle" and not predicate_type and content != "message-signature":
            predicate_type = as_text(annotations.get(BUNDLE_PREDICATE_TYPE)) or None
        if envelope in ("simplesigning", "notation") or (
            envelope == "sigstore-bundle" and content == "message-signature"
        ):
            kind, predicate_type = "signature", None
        elif predicate_type:
            kind = kind_for_predicate(predicate_type)
        elif layer_type in SPDX_JSON or layer_type in CYCLONEDX_JSON:
            kind = "sbom"
        else:
            kind = None
        size = layer.get("size")
        ref_name = f"{owner_login}/{package_name}@{layer['digest']}"
        signer, warnings = cosign.annotation_fields(layer_annotations, ref_name)
        refs.append(
            DocumentRef(
                owner_login=owner_login,
                package_name=package_name,
                digest=layer["digest"],
                media_type=layer_type,
                size=as_size(size),
                manifest_digest=digest,
                layer_index=index,
                subject_digest=subject,
                source=source,
                kind=kind,
                predicate_type=predicate_type,
                envelope=envelope,
                signed=envelope != "none",
                manifest_created=as_text(annotations.get(IMAGE_CREATED)) or None,
                bundle_content=content if envelope == "sigstore-bundle" else None,
                warnings=tuple(warnings),
                **signer,
            )
        )
    return refs


def download_decision(
    ref: DocumentRef,
    *,
    attestations_selected: bool,
    sbom_packages_selected: bool,
    max_document_mb: float = 64,
) -> DownloadDecision:
    """Whether the document is downloaded under the selection rule and `max_document_mb`.

    Nothing is downloaded when neither stream is selected; an SBOM only when
    `sbom_packages` is; other kinds only when `attestations` is. A document
    whose kind the registry does not say is downloaded when either stream is
    selected (it may be an SBOM). A document over `max_document_mb` MiB by its descriptor's size is not
    downloaded, with a warning naming it.
    """
    if not (attestations_selected or sbom_packages_selected):
        return DownloadDecision(False, "not-selected")
    if ref.kind == "sbom" and not sbom_packages_selected:
        return DownloadDecision(False, "not-selected")
    if ref.kind not in (None, "sbom") and not attestations_selected:
        return DownloadDecision(False, "not-selected")
    if ref.envelope not in READABLE_ENVELOPES:
        return DownloadDecision(False, "unreadable")
    limit = max_document_mb * MIB
    if ref.size is not None and ref.size > limit:
        return DownloadDecision(
            False,
            "too-large",
            f"{ref.name}: {ref.size} bytes is over max_document_mb ({max_document_mb:g} MiB = {int(limit)} bytes); "
            "not downloaded, its record carries what the registry says",
        )
    return DownloadDecision(True, "read")
