"""Signed envelopes: DSSE, sigstore bundles (v0.1-v0.3), notation JWS and COSE.

Each reader walks the envelope once. The DSSE `payload` (base64, possibly a
whole SBOM) never becomes one string: a `Diverter` hands ijson the envelope
with that string read as `""` and feeds its text, chunk by chunk, to a
base64 decoder writing a spooled temp file (in memory up to 1 MiB, then on
disk); the statement inside is then streamed from that file like a bare one.
A notation COSE signature (CBOR, a few KB) is read whole, up to 4 MiB.
"""

from __future__ import annotations

import json
import typing as t
from collections.abc import Mapping
from dataclasses import dataclass, field

from tap_ghcr.attestations import certificates, cosign
from tap_ghcr.attestations.errors import MalformedDocument
from tap_ghcr.attestations.jsonstream import Base64Sink, Diverter, Subtrees, b64decode_small, events
from tap_ghcr.attestations.media import INTOTO, SIGSTORE_BUNDLE
from tap_ghcr.oci import as_object

DSSE_PAYLOAD_TYPES = frozenset({INTOTO, "application/vnd.in-toto.statement+json"})
COSE_MAX_BYTES = 4 * 1024 * 1024
_COSE_SIGN1_TAG = 18
_COSE_X5CHAIN = 33


@dataclass
class Opened:
    """What an envelope says, and the payload it wraps (a temp file the caller closes), if any."""

    fields: dict[str, t.Any] = field(default_factory=dict)
    payload: t.BinaryIO | None = None
    payload_type: str | None = None
    subjects: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def close(self) -> None:
        """Close the payload temp file."""
        if self.payload is not None:
            self.payload.close()
            self.payload = None


def _divert_payload(fileobj: t.BinaryIO, path: tuple[str, ...], trees: Subtrees, what: str) -> Opened:
    """One pass: the small values into `trees`, the base64 payload at `path` decoded into a temp file."""
    sink = Base64Sink(f"{what} payload")
    fileobj.seek(0)
    diverter = Diverter(fileobj, path, sink.write)
    try:
        for prefix, event, value in events(diverter, what, rewind=False):
            trees.feed(prefix, event, value)
        if diverter.found > 1:
            raise MalformedDocument(f"{what} has {diverter.found} payloads")
        return Opened(payload=sink.finish() if diverter.found else None)
    except BaseException:
        sink.close()
        raise
    finally:
        if not diverter.found:
            sink.close()


def open_dsse(fileobj: t.BinaryIO, what: str) -> Opened:
    """A DSSE envelope `{payloadType, payload, signatures}`: its statement in a temp file."""
    trees = Subtrees(("payloadType",), what=what)
    opened = _divert_payload(fileobj, ("payload",), trees, what)
    opened.payload_type = trees.get("payloadType")
    _check_payload(opened, what)
    return opened


def _check_payload(opened: Opened, what: str) -> None:
    if opened.payload is None:
        raise MalformedDocument(f"{what}: DSSE envelope has no payload")
    if not isinstance(opened.payload_type, str) or opened.payload_type not in DSSE_PAYLOAD_TYPES:
        opened.warnings.append(
            f"{what}: DSSE payloadType {opened.payload_type!r} is not an in-toto statement; not read"
        )
        opened.close()


def bundle_signer(material: t.Any, what: str) -> tuple[dict[str, t.Any], list[str]]:
    """Signer and transparency-log fields of a bundle's `verificationMaterial`."""
    fields: dict[str, t.Any] = {}
    warnings: list[str] = []
    if not isinstance(material, dict):
        return fields, warnings
    cert = as_object(material.get("certificate")).get("rawBytes")
    if not cert:
        chain = as_object(material.get("x509CertificateChain")).get("certificates")
        cert = as_object(chain[0] if isinstance(chain, list) and chain else None).get("rawBytes")
    if isinstance(cert, str) and cert:
        try:
            fields.update(certificates.signer_from(b64decode_small(cert, "certificate")))
        except (certificates.CertificateError, MalformedDocument) as exc:
            warnings.append(f"{what}: verificationMaterial certificate: {exc}")
    entries = material.get("tlogEntries")
    if isinstance(entries, list) and entries and isinstance(entries[0], dict):
        fields["signed_at"] = cosign.unix_time(entries[0].get("integratedTime"))
        fields["tlog_index"] = cosign.as_int(entries[0].get("logIndex"))
    return fields, warnings


def open_bundle(fileobj: t.BinaryIO, what: str) -> Opened:
    """A sigstore bundle: signer from `verificationMaterial`, tlog time and index, DSSE payload if any."""
    roots = ("mediaType", "verificationMaterial", "dsseEnvelope.payloadType", "messageSignature")
    trees = Subtrees(roots, skip=("verificationMaterial.tlogEntries.item.inclusionProof",), what=what)
    opened = _divert_payload(fileobj, ("dsseEnvelope", "payload"), trees, what)
    try:
        media_type = trees.get("mediaType")
        if not isinstance(media_type, str) or not media_type.startswith(SIGSTORE_BUNDLE):
            raise MalformedDocument(f"{what} is not a sigstore bundle (mediaType {media_type!r})")
        fields, warnings = bundle_signer(trees.get("verificationMaterial"), what)
        opened.fields.update(fields)
        opened.warnings.extend(warnings)
        message = trees.get("messageSignature")
        if opened.payload is not None:
            opened.payload_type = trees.get("dsseEnvelope.payloadType")
            _check_payload(opened, what)
        elif isinstance(message, dict):
            opened.fields.update(kind="signature", predicate_type=None)
            digest = as_object(message.get("messageDigest"))
            if isinstance(digest.get("digest"), str):
                alg = str(digest.get("algorithm") or "SHA2_256").lower()
                alg = {"sha2_256": "sha256", "sha2_384": "sha384", "sha2_512": "sha512"}.get(alg, alg)
                opened.subjects.append(f"{alg}:{b64decode_small(digest['digest'], 'messageDigest').hex()}")
        else:
            raise MalformedDocument(f"{what}: bundle has neither dsseEnvelope nor messageSignature")
    except BaseException:
        opened.close()
        raise
    return opened


def _notation(claims: t.Any, leaf: t.Any, what: str) -> Opened:
    """The subject a notation payload names and the identity its leaf certificate claims."""
    opened = Opened(fields={"kind": "signature", "predicate_type": None})
    target = claims.get("targetArtifact") if isinstance(claims, dict) else None
    if isinstance(target, dict) and isinstance(target.get("digest"), str):
        opened.subjects.append(target["digest"])
    if isinstance(leaf, bytes):
        try:
            opened.fields.update(certificates.signer_from(leaf, subject_fallback=True))
        except certificates.CertificateError as exc:
            opened.warnings.append(f"{what}: notation certificate: {exc}")
    return opened


def open_notation_cose(fileobj: t.BinaryIO, what: str) -> Opened:
    """A notation COSE_Sign1 signature: the signed target's digest and the x5chain leaf's identity."""
    fileobj.seek(0)
    data = fileobj.read(COSE_MAX_BYTES + 1)
    if len(data) > COSE_MAX_BYTES:
        raise MalformedDocument(f"{what}: over {COSE_MAX_BYTES} bytes, not a notation signature")
    import cbor2  # only notation signatures need it

    try:
        message = cbor2.loads(data)
    except (cbor2.CBORError, ValueError, TypeError, EOFError, RecursionError) as exc:
        raise MalformedDocument(f"{what} is not CBOR: {exc}") from exc
    if isinstance(message, cbor2.CBORTag) and message.tag == _COSE_SIGN1_TAG:
        message = message.value
    if not (isinstance(message, (list, tuple)) and len(message) == 4 and isinstance(message[2], bytes)):
        raise MalformedDocument(f"{what} is not a COSE_Sign1 message")
    protected, unprotected, payload, _signature = message
    try:
        claims = json.loads(payload)
        headers = cbor2.loads(protected) if isinstance(protected, bytes) and protected else {}
    except (cbor2.CBORError, ValueError, TypeError, EOFError, RecursionError) as exc:
        raise MalformedDocument(f"{what}: COSE payload or protected header cannot be read: {exc}") from exc
    chain = unprotected.get(_COSE_X5CHAIN) if isinstance(unprotected, Mapping) else None
    if chain is None and isinstance(headers, Mapping):
        chain = headers.get(_COSE_X5CHAIN)
    leaf = chain[0] if isinstance(chain, (list, tuple)) and chain else chain
    return _notation(claims, leaf, what)


def open_notation_jws(fileobj: t.BinaryIO, what: str) -> Opened:
    """A notation JWS signature: the signed target's digest and the leaf certificate's identity."""
    trees = Subtrees(("payload", "header"), what=what)
    for prefix, event, value in events(fileobj, what):
        trees.feed(prefix, event, value)
    payload = trees.get("payload")
    if not isinstance(payload, str):
        raise MalformedDocument(f"{what}: notation JWS has no payload")
    try:
        claims = json.loads(b64decode_small(payload, f"{what} payload"))
    except (ValueError, RecursionError) as exc:
        raise MalformedDocument(f"{what}: notation JWS payload is not JSON: {exc}") from exc
    header = trees.get("header")
    chain = header.get("x5c") if isinstance(header, dict) else None
    leaf = chain[0] if isinstance(chain, list) and chain and isinstance(chain[0], str) else None
    try:
        leaf_der = b64decode_small(leaf, "x5c") if leaf else None
    except MalformedDocument as exc:
        return _with_warning(_notation(claims, None, what), f"{what}: notation x5c certificate: {exc}")
    return _notation(claims, leaf_der, what)


def _with_warning(opened: Opened, warning: str) -> Opened:
    opened.warnings.append(warning)
    return opened
