"""One declarative dataset feeding the REST emulator and the registry.

The builder makes real OCI content (configs, layers, manifests, indexes,
buildx attestations, cosign signatures) and records, independently of the
tap's own parsing code, the `manifests` record each should produce. As on
ghcr.io, every manifest pushed (index, platform image, attestation,
signature) is a package version of its own; only the top-level ones carry tags.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import typing as t
from dataclasses import dataclass, field

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
INTOTO = "application/vnd.in-toto+json"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical(doc: dict) -> bytes:
    return json.dumps(doc, indent=2).encode()  # indented on purpose: digests are over exact bytes


@dataclass
class Owner:
    login: str
    id: int
    type: str = "Organization"  # or "User"


@dataclass
class Version:
    id: int
    digest: str
    tags: list[str]
    created_at: str
    updated_at: str
    deleted_at: str | None = None

    @property
    def state(self) -> str:
        return "deleted" if self.deleted_at else "active"


@dataclass
class Pushed:
    """A manifest as pushed, with the record the tap should emit for it."""

    digest: str
    media_type: str
    body: bytes
    expected: dict


@dataclass
class Package:
    id: int
    name: str
    owner: Owner
    visibility: str
    created_at: str
    updated_at: str
    repository: str | None = None
    versions: list[Version] = field(default_factory=list)
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, Pushed] = field(default_factory=dict)  # push order: children first
    tags: dict[str, str] = field(default_factory=dict)
    # Supply-chain documents, keyed (manifest_digest, layer_index): the `attestations` record the tap should emit
    # when it reads the document, and the one built from what the registry says (supply_chain.py).
    attestations: dict[tuple[str, int], dict] = field(default_factory=dict)
    attestations_registry: dict[tuple[str, int], dict] = field(default_factory=dict)
    sbom_packages: dict[tuple[str, str], dict] = field(default_factory=dict)  # (sbom_digest, package_ref)

    @property
    def registry_repository(self) -> str:
        return f"{self.owner.login.lower()}/{self.name}"


@dataclass
class Dataset:
    owners: dict[str, Owner] = field(default_factory=dict)
    packages: list[Package] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)  # token -> login
    scopeless_tokens: set[str] = field(default_factory=set)  # valid tokens without read:packages
    seed: int = 7
    _ids: int = 1000
    _clock: int = 0

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def tick(self, seconds: int = 60) -> str:
        self._clock += seconds
        return iso(EPOCH + dt.timedelta(seconds=self._clock))

    def owner(self, login: str, kind: str = "Organization") -> Owner:
        if login not in self.owners:
            self.owners[login] = Owner(login, self.next_id(), kind)
        return self.owners[login]

    def package(self, owner: str, name: str, *, visibility: str = "public", kind: str = "Organization",
                repository: str | None = None) -> PackageBuilder:
        stamp = self.tick()
        pkg = Package(self.next_id(), name, self.owner(owner, kind), visibility, stamp, stamp, repository)
        self.packages.append(pkg)
        return PackageBuilder(self, pkg)

    def find(self, owner: str, name: str) -> Package:
        return next(p for p in self.packages if p.owner.login == owner and p.name == name)

    def private(self, repository: str) -> bool:
        return any(p.registry_repository == repository and p.visibility != "public" for p in self.packages)

    def expected_manifests(self) -> dict[tuple[str, str, str], dict]:
        """Every record the tap should emit, by its key."""
        out = {}
        for pkg in self.packages:
            live = {v.digest for v in pkg.versions if v.state == "active"}
            for pushed in pkg.manifests.values():
                if pushed.digest in live or pushed.expected["index_digest"]:
                    out[(pkg.owner.login, pkg.name, pushed.digest)] = pushed.expected
        return out


class PackageBuilder:
    """Builds content for one package; every method pushes versions as ghcr.io lists them.

    The supply-chain builders (buildx attestations with real statements, cosign `.sig`/`.att`, referrers
    tag-schema indexes with sigstore bundles) are in supply_chain.py and reached through `supply_chain()`.
    """

    def __init__(self, dataset: Dataset, package: Package) -> None:
        self.dataset = dataset
        self.package = package
        self.rng = random.Random(f"{dataset.seed}-{package.owner.login}-{package.name}-{len(package.manifests)}")

    # low-level -----------------------------------------------------------------

    def _blob(self, data: bytes) -> str:
        digest = sha256(data)
        self.package.blobs[digest] = data
        return digest

    def _push(self, media_type: str, doc: dict, expected: dict, tags: t.Sequence[str] = (),
              version: bool = True) -> str:
        body = canonical(doc)
        digest = sha256(body)
        expected = {
            "owner_login": self.package.owner.login, "package_name": self.package.name,
            "digest": digest, "media_type": media_type, "size": len(body),
            "artifact_type": doc.get("artifactType"), "annotations": doc.get("annotations") or {},
            **expected,
        }
        self.package.manifests[digest] = Pushed(digest, media_type, body, expected)
        for tag in tags:
            self.package.tags[tag] = digest
        if version:
            stamp = self.dataset.tick()
            self.package.versions.append(Version(self.dataset.next_id(), digest, list(tags), stamp, stamp))
            self.package.updated_at = stamp
        return digest

    @staticmethod
    def _no_platform() -> dict:
        return {"platform_os": None, "platform_architecture": None, "platform_variant": None}

    # images --------------------------------------------------------------------

    def image(self, *, os: str = "linux", arch: str = "amd64", variant: str | None = None,
              labels: dict[str, str] | None = None, created: str | None = None, layers: int = 2,
              docker: bool = False, annotations: dict[str, str] | None = None, tags: t.Sequence[str] = (),
              index_digest: str | None = None, version: bool = True) -> str:
        created = created or self.dataset.tick(0)
        config_doc = {
            "created": created, "architecture": arch, "os": os,
            "config": {"Env": ["PATH=/usr/bin"], "Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
        if variant:
            config_doc["variant"] = variant
        layer_blobs = [self.rng.randbytes(self.rng.randint(200, 4000)) for _ in range(layers)]
        config = json.dumps(config_doc).encode()
        config_type, layer_type = (DOCKER_CONFIG, DOCKER_LAYER) if docker else (OCI_CONFIG, OCI_LAYER)
        doc: dict[str, t.Any] = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": self._blob(config), "size": len(config)},
            "layers": [{"mediaType": layer_type, "digest": self._blob(b), "size": len(b)} for b in layer_blobs],
        }
        if annotations:
            doc["annotations"] = annotations
        expected = {
            "kind": "image", "platform_os": os, "platform_architecture": arch, "platform_variant": variant,
            "index_digest": index_digest, "child_digests": None, "subject_digest": None,
            "config_digest": sha256(config), "config_media_type": config_type,
            "layers": [{"digest": sha256(b), "media_type": layer_type, "size": len(b)} for b in layer_blobs],
            "total_size": len(config) + sum(len(b) for b in layer_blobs),
            "image_created": created, "labels": labels or {},
        }
        return self._push(doc["mediaType"], doc, expected, tags, version)

    def attestation(self, subject: str, index_digest: str) -> tuple[str, int, str]:
        """A buildx attestation manifest (SLSA provenance); returns (digest, size, media type)."""
        statement = json.dumps({"_type": "https://in-toto.io/Statement/v0.1",
                                "predicateType": "https://slsa.dev/provenance/v0.2",
                                "subject": [{"name": "image", "digest": {"sha256": subject[7:]}}],
                                "predicate": {"builder": {"id": "https://github.com/actions"}}}).encode()
        config = json.dumps({"architecture": "unknown", "os": "unknown", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [sha256(statement)]}}).encode()
        doc = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self._blob(config), "size": len(config)},
            "layers": [{"mediaType": INTOTO, "digest": self._blob(statement), "size": len(statement),
                        "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}}],
        }
        expected = {
            # The index descriptor says unknown/unknown (see multiarch), and the record says what the registry says.
            "kind": "attestation", "platform_os": "unknown", "platform_architecture": "unknown",
            "platform_variant": None, "index_digest": index_digest, "child_digests": None,
            "subject_digest": subject, "config_digest": sha256(config), "config_media_type": OCI_CONFIG,
            "layers": [{"digest": sha256(statement), "media_type": INTOTO, "size": len(statement)}],
            "total_size": len(config) + len(statement), "image_created": None, "labels": None,
        }
        digest = self._push(OCI_MANIFEST, doc, expected)
        return digest, len(self.package.manifests[digest].body), OCI_MANIFEST

    def multiarch(self, platforms: t.Sequence[tuple[str, str, str | None]] = (("linux", "amd64", None),
                                                                            ("linux", "arm64", "v8")),
                  *, attestations: bool = True, docker: bool = False, tags: t.Sequence[str] = (),
                  labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None,
                  layers: int = 2, created: str | None = None) -> str:
        """An index (or Docker manifest list) over platform images, with buildx attestations.

        The index digest is not known until its children are, so children are
        built with a placeholder parent and patched once the index exists.
        """
        created = created or self.dataset.tick(0)
        descriptors, children = [], []
        for os_, arch, variant in platforms:
            digest = self.image(os=os_, arch=arch, variant=variant, labels=labels, created=created, docker=docker,
                                layers=layers)
            pushed = self.package.manifests[digest]
            platform = {"architecture": arch, "os": os_, **({"variant": variant} if variant else {})}
            descriptors.append({"mediaType": pushed.media_type, "digest": digest, "size": len(pushed.body),
                                "platform": platform})
            children.append(digest)
        if attestations and not docker:
            for image_digest in list(children):
                digest, size, media_type = self.attestation(image_digest, "")
                descriptors.append({
                    "mediaType": media_type, "digest": digest, "size": size,
                    "platform": {"architecture": "unknown", "os": "unknown"},
                    "annotations": {"vnd.docker.reference.digest": image_digest,
                                    "vnd.docker.reference.type": "attestation-manifest"},
                })
                children.append(digest)
        media_type = DOCKER_LIST if docker else OCI_INDEX
        doc: dict[str, t.Any] = {"schemaVersion": 2, "mediaType": media_type, "manifests": descriptors}
        if annotations:
            doc["annotations"] = annotations
        expected = {
            "kind": "index", **self._no_platform(), "index_digest": None, "child_digests": children,
            "subject_digest": None, "config_digest": None, "config_media_type": None, "layers": [],
            "total_size": None, "image_created": None, "labels": None,
        }
        index = self._push(media_type, doc, expected, tags)
        for child in children:
            self.package.manifests[child].expected["index_digest"] = index
        return index

    def cosign_signature(self, subject: str) -> str:
        """A classic cosign `.sig` manifest, tagged `sha256-<hex>.sig`."""
        payload = json.dumps({"critical": {"identity": {"docker-reference": "ghcr.io/x"},
                                           "image": {"docker-manifest-digest": subject},
                                           "type": "cosign container image signature"},
                              "optional": None}).encode()
        config = json.dumps({"architecture": "", "os": "", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [sha256(payload)]}}).encode()
        doc = {
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": self._blob(config), "size": len(config)},
            "layers": [{"mediaType": SIMPLESIGNING, "digest": self._blob(payload), "size": len(payload),
                        "annotations": {"dev.cosignproject.cosign/signature": "MEUCIQ=="}}],
        }
        expected = {
            "kind": "signature", **self._no_platform(), "index_digest": None, "child_digests": None,
            "subject_digest": subject, "config_digest": sha256(config), "config_media_type": OCI_CONFIG,
            "layers": [{"digest": sha256(payload), "media_type": SIMPLESIGNING, "size": len(payload)}],
            "total_size": len(config) + len(payload), "image_created": None, "labels": None,
        }
        return self._push(OCI_MANIFEST, doc, expected, tags=[f"sha256-{subject[7:]}.sig"])

    def supply_chain(self) -> t.Any:
        """This package's supply-chain builder (tests/emulator/supply_chain.py)."""
        from tests.emulator.supply_chain import SupplyChainBuilder

        return SupplyChainBuilder(self)

    # changes after the first sync ------------------------------------------------

    def retag(self, tag: str, digest: str) -> None:
        """Move `tag` to `digest`; both versions' `updated_at` move, as on GitHub."""
        stamp = self.dataset.tick()
        for v in self.package.versions:
            if tag in v.tags and v.digest != digest:
                v.tags.remove(tag)
                v.updated_at = stamp
            if v.digest == digest and tag not in v.tags:
                v.tags.append(tag)
                v.updated_at = stamp
        self.package.tags[tag] = digest
        self.package.updated_at = stamp

    def delete_version(self, digest: str) -> Version:
        stamp = self.dataset.tick()
        version = next(v for v in self.package.versions if v.digest == digest)
        version.deleted_at = stamp
        version.updated_at = stamp
        self.package.updated_at = stamp
        return version


def many_versions(ds: Dataset, owner: str = "bigorg", name: str = "many", count: int = 250) -> Package:
    """A package with `count` single-layer images (every tenth tagged): several pages of versions."""
    builder = ds.package(owner, name)
    for n in range(count):
        builder.image(tags=[f"v{n}"] if n % 10 == 0 else [], layers=1)
    return builder.package


def _live_documents(ds: Dataset, attr: str) -> dict:
    out = {}
    for pkg in ds.packages:
        live = {v.digest for v in pkg.versions if v.state == "active"}
        for (manifest, index), record in getattr(pkg, attr).items():
            pushed = pkg.manifests[manifest]
            if manifest in live or pushed.expected["index_digest"] in live:
                out[(pkg.owner.login, pkg.name, manifest, index)] = record
    return out


def expected_attestations(ds: Dataset, *, registry_only: bool = False) -> dict[tuple[str, str, str, int], dict]:
    """Every `attestations` record the tap should emit, by key; `registry_only`: what the registry says."""
    return _live_documents(ds, "attestations_registry" if registry_only else "attestations")


def expected_sbom_packages(ds: Dataset) -> dict[tuple[str, str, str, str], dict]:
    """Every `sbom_packages` record the tap should emit, by key."""
    return {(p.owner.login, p.name, *key): record for p in ds.packages for key, record in p.sbom_packages.items()}


def sample_dataset(scale: int = 1) -> Dataset:
    """The bundled sample organisation: every kind of manifest the tap knows."""
    ds = Dataset()
    ds.tokens["ghp_testtoken0000000000000000000000000001"] = "octo-admin"
    ds.owner("octo-admin", "User")
    web = ds.package("acme", "web", repository="acme/web")
    first = web.multiarch(tags=["v1.0"], labels={"org.opencontainers.image.source": "https://github.com/acme/web"})
    latest = web.multiarch(tags=["v1.1", "latest"], annotations={"org.opencontainers.image.version": "1.1"},
                           labels={"org.opencontainers.image.source": "https://github.com/acme/web"})
    web.cosign_signature(latest)
    del first
    api = ds.package("acme", "tools/api", visibility="private", repository="acme/api")
    api.image(tags=["2.0"], docker=True, labels={"maintainer": "acme"})
    api.multiarch(platforms=[("linux", "amd64", None), ("linux", "arm", "v7")], docker=True, tags=["2.1"])
    worker = ds.package("acme", "worker", visibility="private")
    worker.image(tags=["stable"], labels={"team": "jobs"}, annotations={"org.opencontainers.image.title": "worker"})
    old = worker.image(tags=["old"])
    worker.delete_version(old)
    tools = ds.package("octo-admin", "cli", kind="User")
    tools.image(os="linux", arch="arm64", variant="v8", tags=["edge"])
    for n in range(2, scale + 1):
        extra = ds.package("acme", f"svc-{n}")
        for k in range(3):
            extra.multiarch(tags=[f"1.{k}"])
    return ds


def bench_dataset(scale: int = 1, packages: int = 20, images: int = 50, documents: int = 0) -> Dataset:
    """The benchmark's organisation: mostly multi-arch indexes with attestations.

    20 packages x 50 indexes x (index + 2 images + 2 attestations) = 5,000 manifests at scale 1,
    each a package version as on ghcr.io; a few plain images and cosign signatures for variety.
    `documents`: each platform image's buildx attestation holds a SLSA provenance statement and an
    SPDX SBOM listing this many packages (supply_chain.py); 0 is the plain attestation of old.
    """
    ds = Dataset(seed=42)
    ds.tokens["ghp_bench00000000000000000000000000000000"] = "bench-bot"
    for p in range(packages * scale):
        builder = ds.package("bench-org", f"service-{p:03d}", visibility="private" if p % 3 == 0 else "public")
        for i in range(images):
            if i % 10 == 9:
                digest = builder.image(tags=[f"1.{i}"], layers=1, labels={"build": str(i)})
                builder.cosign_signature(digest)
                builder.image(tags=[f"1.{i}-debug"], layers=1)
                builder.image(layers=1)
            elif documents:
                builder.supply_chain().attested_index(
                    tags=[f"1.{i}"] + (["latest"] if i == images - 1 else []), sbom_packages=documents,
                    platforms=(("linux", "amd64"), ("linux", "arm64")),
                    labels={"org.opencontainers.image.source": f"https://github.com/bench/{p}"})
            else:
                builder.multiarch(tags=[f"1.{i}"] + (["latest"] if i == images - 1 else []), layers=1,
                                  labels={"org.opencontainers.image.source": f"https://github.com/bench/{p}"})
    return ds


def demo_dataset() -> Dataset:
    """The sample organisation plus images built in the last days, so a report has fresh and stale tags."""
    ds = sample_dataset()
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    payments = ds.package("acme", "payments", visibility="private", repository="acme/payments")
    payments.multiarch(tags=["3.0"], created=iso(now - dt.timedelta(days=40)),
                       labels={"org.opencontainers.image.source": "https://github.com/acme/payments"})
    latest = payments.multiarch(tags=["3.1", "latest"], created=iso(now - dt.timedelta(days=2)),
                                platforms=(("linux", "amd64", None), ("linux", "arm64", "v8"),
                                           ("linux", "s390x", None)),
                                labels={"org.opencontainers.image.source": "https://github.com/acme/payments"})
    payments.cosign_signature(latest)
    # Supply-chain documents in each storage form (tests/emulator/supply_chain.py).
    shop = ds.package("acme", "shop", repository="acme/shop")
    shop.supply_chain().signed_release(tags=["4.2", "latest"], sbom_packages=9,
                                       created=iso(now - dt.timedelta(days=1)),
                                       labels={"org.opencontainers.image.source": "https://github.com/acme/shop"})
    search = ds.package("acme", "search", repository="acme/search")
    search.supply_chain().attested_index(tags=["0.9"], sbom_packages=6, oci_artifact=True,
                                         platforms=(("linux", "amd64"), ("linux", "arm64")),
                                         created=iso(now - dt.timedelta(days=3)))
    return ds
