"""SLSA provenance (v0.2 and v1) as BuildKit and GitHub write it -> the contract's provenance fields.

Precedence (contract): `source_uri` / `source_revision` from the verified
config source where there is one (v0.2 `invocation.configSource`, v1
`externalParameters.configSource`, GitHub's `externalParameters.workflow` and
`resolvedDependencies[0]`), else BuildKit's unverified `vcs` hint;
`source_ref` from GitHub's `workflow.ref`, else the `#ref` fragment of the
config source URI; `build_config_path` from GitHub's `workflow.path`, v0.2
`configSource.entryPoint`, v1 `configSource.path`. Empty strings (BuildKit
writes `builder.id: ""` outside CI) are null. `source_uri` is the config
source URI without its `#ref` fragment (the fragment is `source_ref`).
"""

from __future__ import annotations

import typing as t

from tap_ghcr.attestations.jsonstream import ITEMS, Shape
from tap_ghcr.oci import as_object

PROVENANCE_FIELDS = (
    "builder_id",
    "build_type",
    "build_invocation_id",
    "build_started_at",
    "build_finished_at",
    "source_uri",
    "source_revision",
    "source_ref",
    "build_config_path",
    "materials",
)
BUILDKIT_V02_METADATA = "https://mobyproject.org/buildkit@v1#metadata"
# A provenance predicate kept at most this many materials (resolved dependencies); BuildKit and GitHub
# write a handful. A longer list is cut, with a warning: a record stays a record.
MAX_MATERIALS = 10_000
_DIGEST: Shape = {"*": {}}
_SOURCE: Shape = {"uri": {}, "digest": _DIGEST, "path": {}, "entryPoint": {}}
_DEPENDENCIES: Shape = {ITEMS: {"uri": {}, "digest": _DIGEST}}
_VCS: Shape = {"vcs": {"source": {}, "revision": {}}}
# What `provenance_fields` reads of a predicate, and nothing else: a large predicate is streamed keeping
# only this (`jsonstream.prune`).
SHAPE: Shape = {
    "builder": {"id": {}},
    "buildType": {},
    "metadata": {
        "buildInvocationID": {},
        "buildInvocationId": {},
        "buildStartedOn": {},
        "buildFinishedOn": {},
        BUILDKIT_V02_METADATA: _VCS,
    },
    "invocation": {"configSource": _SOURCE},
    "materials": _DEPENDENCIES,
    "buildDefinition": {
        "buildType": {},
        "externalParameters": {"workflow": {"repository": {}, "path": {}, "ref": {}}, "configSource": _SOURCE},
        "resolvedDependencies": _DEPENDENCIES,
    },
    "runDetails": {
        "builder": {"id": {}},
        "metadata": {
            "invocationId": {},
            "invocationID": {},
            "startedOn": {},
            "finishedOn": {},
            "buildkit_metadata": _VCS,
        },
    },
}
_REVISION_ALGS = ("sha1", "gitCommit", "sha256")


def _get(obj: t.Any, *path: str) -> t.Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _str(value: t.Any) -> str | None:
    return value if isinstance(value, str) and value else None


def digest_string(digest: t.Any) -> str | None:
    """`alg:hex` of an in-toto DigestSet: sha256 if present, else its first entry."""
    if not isinstance(digest, dict) or not digest:
        return None
    alg = "sha256" if "sha256" in digest else next(iter(digest))
    return f"{alg}:{digest[alg]}" if _str(digest[alg]) else None


def _revision(digest: t.Any) -> str | None:
    """The bare commit of a config source DigestSet (sha1, gitCommit, sha256, else the first)."""
    if not isinstance(digest, dict) or not digest:
        return None
    for alg in (*_REVISION_ALGS, *digest):
        if _str(digest.get(alg)):
            return digest[alg]
    return None


def _materials(entries: t.Any) -> list[dict[str, t.Any]] | None:
    if not isinstance(entries, list):
        return None
    return [
        {"uri": _str(e.get("uri")), "digest": digest_string(e.get("digest"))}
        for e in entries[:MAX_MATERIALS]
        if isinstance(e, dict)
    ]


def _material_entries(predicate: dict, predicate_type: str | None) -> t.Any:
    """The predicate's materials as written: v1 `buildDefinition.resolvedDependencies`, v0.2 `materials`."""
    if is_v1(predicate, predicate_type):
        return _get(predicate, "buildDefinition", "resolvedDependencies")
    return predicate.get("materials")


def materials_warning(predicate: t.Any, predicate_type: str | None, what: str) -> list[str]:
    """A warning when `provenance_fields` cut the predicate's materials at MAX_MATERIALS."""
    if not isinstance(predicate, dict):
        return []
    entries = _material_entries(predicate, predicate_type)
    if not isinstance(entries, list) or len(entries) <= MAX_MATERIALS:
        return []
    return [f"{what}: more than {MAX_MATERIALS:,} materials; the first {MAX_MATERIALS:,} are kept"]


def _split_fragment(uri: str | None) -> tuple[str | None, str | None]:
    if not uri:
        return None, None
    base, _, fragment = uri.partition("#")
    return base or None, fragment or None


def is_v1(predicate: dict, predicate_type: str | None) -> bool:
    """SLSA v1 shape (buildDefinition / runDetails)."""
    return "buildDefinition" in predicate or "runDetails" in predicate or (predicate_type or "").endswith("/v1")


def provenance_fields(predicate: t.Any, predicate_type: str | None = None) -> dict[str, t.Any]:
    """The contract's provenance fields of a SLSA predicate (every key present)."""
    if not isinstance(predicate, dict):
        return dict.fromkeys(PROVENANCE_FIELDS)
    workflow: dict = {}
    if is_v1(predicate, predicate_type):
        build, run = as_object(predicate.get("buildDefinition")), as_object(predicate.get("runDetails"))
        meta = as_object(run.get("metadata"))
        builder_id, build_type = _get(run, "builder", "id"), _get(build, "buildType")
        invocation = _str(meta.get("invocationId")) or _str(meta.get("invocationID"))
        started, finished = meta.get("startedOn"), meta.get("finishedOn")
        external = as_object(build.get("externalParameters"))
        dependencies = _get(build, "resolvedDependencies")
        vcs = as_object(_get(meta, "buildkit_metadata", "vcs"))
        if isinstance(external.get("workflow"), dict):  # GitHub Actions build types
            workflow = external["workflow"]
            first = dependencies[0] if isinstance(dependencies, list) and dependencies else {}
            config_uri, config_digest = _str(workflow.get("repository")), _get(first, "digest")
            config_path = workflow.get("path")
        else:
            source = as_object(external.get("configSource"))
            config_uri, config_digest, config_path = _str(source.get("uri")), source.get("digest"), source.get("path")
    else:
        meta = as_object(predicate.get("metadata"))
        builder_id, build_type = _get(predicate, "builder", "id"), predicate.get("buildType")
        invocation = _str(meta.get("buildInvocationID")) or _str(meta.get("buildInvocationId"))
        started, finished = meta.get("buildStartedOn"), meta.get("buildFinishedOn")
        source = as_object(_get(predicate, "invocation", "configSource"))
        config_uri, config_digest, config_path = _str(source.get("uri")), source.get("digest"), source.get("entryPoint")
        vcs = as_object(_get(meta, BUILDKIT_V02_METADATA, "vcs"))
    config_base, fragment = _split_fragment(config_uri)
    return {
        "builder_id": _str(builder_id),
        "build_type": _str(build_type),
        "build_invocation_id": _str(invocation),
        "build_started_at": _str(started),
        "build_finished_at": _str(finished),
        "source_uri": config_base or _str(vcs.get("source")),
        "source_revision": (_revision(config_digest) if config_uri else None) or _str(vcs.get("revision")),
        "source_ref": _str(workflow.get("ref")) or fragment,
        "build_config_path": _str(config_path),
        "materials": _materials(_material_entries(predicate, predicate_type)),
    }
