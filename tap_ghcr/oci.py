"""Reading manifests, indexes and image configs into `manifests` records.

Pure functions over parsed JSON: no I/O, so every rule here is unit-tested on
the real ghcr.io samples in shared/reference.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import typing as t

from tap_ghcr.registry.digest import well_formed
from tap_ghcr.registry.media_types import IMAGE_CONFIG_TYPES, INDEX_TYPES

LOGGER = logging.getLogger("tap-ghcr")

REFERENCE_TYPE = "vnd.docker.reference.type"  # buildx: "attestation-manifest"
REFERENCE_DIGEST = "vnd.docker.reference.digest"  # buildx: the image it attests
DOCKER_ATTESTATION_ARTIFACT = "application/vnd.docker.attestation.manifest.v1+json"
INTOTO = "application/vnd.in-toto+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
NOTARY_SIGNATURE = "application/vnd.cncf.notary.signature"
SIGSTORE_BUNDLE = "application/vnd.dev.sigstore.bundle"
COSIGN_TAG = re.compile(r"^(?P<alg>sha256|sha512)-(?P<hex>[0-9a-f]{64,128})\.(?P<suffix>sig|att|sbom)$")
#: How cosign v3, `actions/attest*` and notation list referrers on a registry without the referrers API
#: (ghcr.io): an index tagged with the subject's digest, no suffix (OCI distribution-spec, "referrers tag schema").
REFERRERS_TAG = re.compile(r"^(?P<alg>sha256|sha512)-(?P<hex>[0-9a-f]{64,128})$")
_COSIGN_KIND = {"sig": "signature", "att": "attestation", "sbom": "artifact"}


def as_object(value: object) -> dict:
    """`value` if it is a JSON object, else an empty one: a manifest is the registry's word, not a promise
    (a `config` that is a string must not stop the sync)."""
    return value if isinstance(value, dict) else {}


def as_text(value: object) -> str | None:
    """`value` if it is a string, else None."""
    return value if isinstance(value, str) else None


#: Sizes are int64 in the OCI descriptor (and in a warehouse's BIGINT column).
MAX_SIZE = 2**63 - 1


def as_size(value: object) -> int | None:
    """A size: an int from 0 to int64's largest; not a bool, a float (NaN, 1e400) or a number of 4,300 digits."""
    return value if type(value) is int and 0 <= value <= MAX_SIZE else None


def _strings(value: object) -> dict[str, str]:
    """A string-to-string map (labels, annotations), without the entries whose value is not a string."""
    return {k: v for k, v in value.items() if isinstance(v, str)} if isinstance(value, dict) else {}


def _layers(document: dict) -> list[dict]:
    layers = document.get("layers")
    return [layer for layer in layers if isinstance(layer, dict)] if isinstance(layers, list) else []


def is_index(media_type: str, document: dict) -> bool:
    """An OCI index or Docker manifest list (by served type, else by its own field)."""
    return media_type in INDEX_TYPES or (
        not media_type and isinstance(document.get("manifests"), list)
    )


def child_descriptors(document: dict) -> list[dict]:
    """The descriptors an index lists, in order, skipping malformed entries."""
    manifests = document.get("manifests")
    return [d for d in manifests if isinstance(d, dict) and well_formed(d.get("digest"))] \
        if isinstance(manifests, list) else []


def cosign_subject(tags: t.Iterable[str]) -> tuple[str, str] | None:
    """(subject digest, kind) from a cosign `sha256-<hex>.sig|.att|.sbom` tag."""
    for tag in tags:
        if isinstance(tag, str) and (m := COSIGN_TAG.match(tag)):
            return f"{m['alg']}:{m['hex']}", _COSIGN_KIND[m["suffix"]]
    return None


def stated_subject(annotations: dict, document: dict) -> str | None:
    """The subject a manifest states: its descriptor's buildx annotation, else its OCI `subject`."""
    return as_text(annotations.get(REFERENCE_DIGEST)) or as_text(as_object(document.get("subject")).get("digest"))


def classify(
    media_type: str,
    document: dict,
    descriptor: dict | None = None,
    tags: t.Iterable[str] = (),
) -> tuple[str, str | None]:
    """(kind, subject_digest) of a manifest, from everything that can say it."""
    annotations = as_object(as_object(descriptor).get("annotations"))
    subject = stated_subject(annotations, document)
    cosign = cosign_subject(tags)
    if cosign and not subject:
        subject = cosign[0]
    if is_index(media_type, document):
        if not subject:
            subject = next((f"{m['alg']}:{m['hex']}" for tag in tags
                            if isinstance(tag, str) and (m := REFERRERS_TAG.match(tag))), None)
        return "index", subject
    if cosign:
        return cosign[1], subject
    artifact_type = as_text(document.get("artifactType")) or ""
    layer_types = {as_text(layer.get("mediaType")) for layer in _layers(document)}
    if annotations.get(REFERENCE_TYPE) == "attestation-manifest" or artifact_type == DOCKER_ATTESTATION_ARTIFACT:
        return "attestation", subject
    config_type = as_text(as_object(document.get("config")).get("mediaType"))
    # Before OCI 1.1's artifactType, notation put its type in the config descriptor.
    if NOTARY_SIGNATURE in (artifact_type, config_type) or COSIGN_SIMPLESIGNING in layer_types:
        return "signature", subject
    if artifact_type.startswith(SIGSTORE_BUNDLE) or layer_types & {INTOTO, DSSE}:
        return "attestation", subject
    if not artifact_type and config_type in IMAGE_CONFIG_TYPES:
        return "image", subject
    return "artifact", subject


def _platform(descriptor: dict | None, config: dict | None) -> tuple[str | None, str | None, str | None]:
    # As the registry says it: a buildx attestation's descriptor says `unknown/unknown`, and that is kept.
    platform = as_object(as_object(descriptor).get("platform"))
    if as_text(platform.get("os")):
        return as_text(platform.get("os")), as_text(platform.get("architecture")), as_text(platform.get("variant"))
    config = as_object(config)
    if as_text(config.get("os")) and config.get("os") != "unknown":
        return as_text(config.get("os")), as_text(config.get("architecture")), as_text(config.get("variant"))
    return None, None, None


def describe(
    *,
    owner_login: str,
    package_name: str,
    digest: str,
    media_type: str,
    size: int,
    document: dict,
    descriptor: dict | None = None,
    index_digest: str | None = None,
    tags: t.Iterable[str] = (),
    config: dict | None = None,
) -> dict:
    """The `manifests` record of one manifest, per the contract's field list."""
    kind, subject = classify(media_type, document, descriptor, tags)
    os_, arch, variant = _platform(descriptor, config)
    record: dict[str, t.Any] = {
        "owner_login": owner_login,
        "package_name": package_name,
        "digest": digest,
        "media_type": media_type or as_text(document.get("mediaType")),
        "artifact_type": as_text(document.get("artifactType")),
        "size": size,
        "kind": kind,
        "platform_os": os_,
        "platform_architecture": arch,
        "platform_variant": variant,
        "index_digest": index_digest,
        "child_digests": None,
        "subject_digest": subject,
        "config_digest": None,
        "config_media_type": None,
        "layers": [],
        "total_size": None,
        "image_created": None,
        "labels": None,
        "annotations": _strings(document.get("annotations")),
    }
    if kind == "index":
        record["child_digests"] = [d["digest"] for d in child_descriptors(document)]
        return record
    config_descriptor = as_object(document.get("config"))
    layers = [
        {"digest": as_text(layer.get("digest")), "media_type": as_text(layer.get("mediaType")),
         "size": as_size(layer.get("size"))}
        for layer in _layers(document)
    ]
    record["config_digest"] = as_text(config_descriptor.get("digest"))
    record["config_media_type"] = as_text(config_descriptor.get("mediaType"))
    record["layers"] = layers
    record["total_size"] = as_size((as_size(config_descriptor.get("size")) or 0) + sum(x["size"] or 0 for x in layers))
    if config is not None:
        config = as_object(config)
        record["image_created"] = utc_timestamp(config.get("created"))
        if record["image_created"] is None and config.get("created") not in (None, ""):
            LOGGER.warning("%s/%s@%s: image config `created` %r is not a timestamp; image_created is null",
                           owner_login, package_name, digest, config.get("created"))
        record["labels"] = _strings(as_object(config.get("config")).get("Labels"))
    return record


def wants_config(kind: str, document: dict) -> bool:
    """Only images need their config blob (platform, created, labels)."""
    config = as_object(document.get("config"))
    return kind == "image" and as_text(config.get("mediaType")) in IMAGE_CONFIG_TYPES \
        and well_formed(config.get("digest"))


# Go writes `created` as RFC 3339 with up to 9 fraction digits and any offset; Python 3.10's
# fromisoformat reads neither, so the parts are taken apart here.
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)


def utc_timestamp(value: object) -> str | None:
    """`value` as UTC ISO 8601 (`...Z`, microseconds at most), or None when it is no timestamp.

    Image configs carry whatever the builder wrote (offsets, nanoseconds); one form in the
    warehouse keeps `image_created` comparable. A value without an offset is taken as UTC.
    """
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.fullmatch(value.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, _z, sign, off_h, off_m = match.groups()
    try:
        moment = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                             int((fraction or "0")[:6].ljust(6, "0")), tzinfo=dt.timezone.utc)
        if sign:
            offset = dt.timedelta(hours=int(off_h), minutes=int(off_m))
            moment -= offset if sign == "+" else -offset
    except (ValueError, OverflowError):
        return None
    m = moment
    text = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    return f"{text}.{moment.microsecond:06d}Z" if moment.microsecond else f"{text}Z"
