"""Reading real manifests from ghcr.io and other registries (tests/data/oci/samples)."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tap_ghcr import oci
from tap_ghcr.registry import DigestMismatchError
from tap_ghcr.registry import digest as digests
from tests.reference import OCI_SAMPLES, OCI_SCHEMAS

SAMPLES = OCI_SAMPLES
SCHEMAS = OCI_SCHEMAS

# The samples SOURCES.md marks as hashing to their real registry digest.
MATCHING = {
    "oci_manifest_attestation_spdx_slsa.ghcr.mchmarny-debug-tools.json":
        "sha256:49fc792fe19f8e694bce1579f8fab6697294455f878a1b095487093c99b3884c",
    "oci_index_buildx_attestation.ghcr.gpoulios-testpkg.json":
        "sha256:138fc25e9aaf93251609d23a8a50e91d50462f5dccb53cffde8db7a46385cfec",
    "oci_manifest_image.ghcr.gpoulios-testpkg.json":
        "sha256:0e026e48c72f503a89f1299d8d6a768f1e516740017b8dd29d290c234ec889b4",
    "oci_manifest_attestation_provenance.ghcr.gpoulios-testpkg.json":
        "sha256:0b99212f395833227bbb3fdf0e821efd8ce8af3cca65ce9e00fc96c683af7076",
}


def load(name: str) -> tuple[bytes, dict]:
    raw = (SAMPLES / name).read_bytes()
    return raw, json.loads(raw)


@pytest.mark.parametrize(("name", "expected"), sorted(MATCHING.items()))
def test_real_ghcr_manifests_verify_byte_for_byte(name, expected):
    raw, _ = load(name)
    digests.verify(raw, expected, name)  # raises on mismatch
    tampered = raw.replace(b"amd64", b"amd65") if b"amd64" in raw else raw + b" "
    with pytest.raises(DigestMismatchError):
        digests.verify(tampered, expected, name)


def test_index_descriptor_sizes_match_the_real_children():
    _, index = load("oci_index_buildx_attestation.ghcr.gpoulios-testpkg.json")
    by_digest = {d["digest"]: d for d in index["manifests"]}
    for name, found in MATCHING.items():
        if found in by_digest:
            assert len(load(name)[0]) == by_digest[found]["size"]


BUILDKIT_SPEC_SUBJECT = "sha256:23678f31b3b3586c4fb318aecfe64a96a1f0916ba8faf9b2be2abee63fa9e827"
GPOULIOS_INDEX = "sha256:7fe4940f551b5c1c58e815b882024e2eed6b60d2380a3134aa3bcf603f2dc350"
GPOULIOS_DOCKER_MANIFEST = "sha256:9c24ac7eca13411bee8f335f96442c0b5ef8de65ff1f85da6f16fcb0c046bd78"


@pytest.mark.parametrize(("name", "kind", "subject"), [
    ("oci_index_buildx_attestation.ghcr.gpoulios-testpkg.json", "index", None),
    ("oci_index_buildx_attestations.ghcr.mchmarny-debug-tools.json", "index", None),
    ("docker_manifest_list.mcr.dotnet-runtime-7.0.json", "index", None),
    ("docker_manifest_list.dockerhub.library-debian.json", "index", None),
    ("oci_manifest_image.ghcr.gpoulios-testpkg.json", "image", None),
    ("docker_manifest_v2.ghcr.richlander-dotnet-docker-aspnetapp.json", "image", None),
    ("oci_manifest_attestation_provenance.ghcr.gpoulios-testpkg.json", "attestation", None),
    ("oci_manifest_attestation_spdx_slsa.ghcr.mchmarny-debug-tools.json", "attestation", None),
    ("buildkit_attestation_manifest.spec-example.json", "attestation", BUILDKIT_SPEC_SUBJECT),
    ("oci_manifest_notation_signature.ghcr.gpoulios-testpkg.json", "signature",
     "sha256:138fc25e9aaf93251609d23a8a50e91d50462f5dccb53cffde8db7a46385cfec"),
    ("oci_manifest_sigstore_bundle_cosign.ghcr.gpoulios-testpkg.json", "attestation", GPOULIOS_INDEX),
    ("oci_manifest_sigstore_bundle_github_attestation.ghcr.gpoulios-testpkg.json", "attestation",
     GPOULIOS_DOCKER_MANIFEST),
    ("cosign_signature_manifest.gcr.dlorenc-demo.json", "signature", None),
])
def test_kinds_of_real_manifests(name, kind, subject):
    _, doc = load(name)
    media_type = doc.get("mediaType", "")
    found_kind, found_subject = oci.classify(media_type, doc)
    assert (found_kind, found_subject) == (kind, subject)


def test_buildx_attestation_subject_comes_from_the_index_descriptor():
    _, index = load("oci_index_buildx_attestations.ghcr.mchmarny-debug-tools.json")
    raw, attestation = load("oci_manifest_attestation_spdx_slsa.ghcr.mchmarny-debug-tools.json")
    descriptor = next(d for d in index["manifests"] if d["digest"] == MATCHING[
        "oci_manifest_attestation_spdx_slsa.ghcr.mchmarny-debug-tools.json"])
    record = oci.describe(owner_login="mchmarny", package_name="debug-tools", digest=descriptor["digest"],
                          media_type=attestation["mediaType"], size=len(raw), document=attestation,
                          descriptor=descriptor, index_digest="sha256:idx")
    assert record["kind"] == "attestation"
    assert record["subject_digest"] == "sha256:775966c9516a426a1c55a37a96554bc262deb01550986cd11cde3c2bd5e432a0"
    assert (record["platform_os"], record["platform_architecture"]) == ("unknown", "unknown"), "as the registry says"
    assert record["size"] == 841
    assert [layer["media_type"] for layer in record["layers"]] == ["application/vnd.in-toto+json"] * 2
    assert record["total_size"] == 241 + 7434213 + 11770  # config and the two layers, from the sample


def test_image_record_from_manifest_descriptor_and_config():
    raw, image = load("oci_manifest_image.ghcr.gpoulios-testpkg.json")
    _, index = load("oci_index_buildx_attestation.ghcr.gpoulios-testpkg.json")
    _, config = load("oci_image_config.image-spec-example.json")
    descriptor = index["manifests"][0]
    record = oci.describe(owner_login="gpoulios", package_name="testpkg", digest=descriptor["digest"],
                          media_type=image["mediaType"], size=len(raw), document=image, descriptor=descriptor,
                          index_digest=MATCHING["oci_index_buildx_attestation.ghcr.gpoulios-testpkg.json"],
                          config=config)
    assert (record["kind"], record["platform_os"], record["platform_architecture"]) == ("image", "linux", "amd64")
    assert record["annotations"]["org.opencontainers.image.source"].startswith("https://github.com/")
    assert record["labels"] == {"com.example.project.git.url": "https://example.com/project.git",
                                "com.example.project.git.commit": "45a939b2999782a3f005621a8d0f29aa387e1d6b"}
    assert record["image_created"] == "2015-10-31T22:22:56.015925Z", "2015-10-31T22:22:56.015925234Z, truncated"
    assert record["config_digest"] == "sha256:be655f7112c64381b439d1ec749c5bfc90b238fdfd2d9144dd6f51fdb866b9d2"
    assert [layer["size"] for layer in record["layers"]] == [2818370, 666689, 12276368, 232, 2871684, 4704]
    assert record["total_size"] == 18644494  # 6447 (config) + the six layers


def test_platform_falls_back_to_the_image_config():
    raw, image = load("docker_manifest_v2.ghcr.richlander-dotnet-docker-aspnetapp.json")
    _, config = load("docker_image_config.mcr.dotnet-runtime.json")
    record = oci.describe(owner_login="r", package_name="p", digest="sha256:x", media_type=image["mediaType"],
                          size=len(raw), document=image, config=config)
    assert (record["platform_os"], record["platform_architecture"]) == ("linux", "amd64")
    assert record["image_created"] == "2022-10-25T04:26:19.445847Z"
    assert record["labels"] == {}, "Labels: null in the config is an empty object"


def test_index_record_lists_children_and_has_no_sizes():
    raw, index = load("docker_manifest_list.dockerhub.library-debian.json")
    record = oci.describe(owner_login="library", package_name="debian", digest="sha256:x",
                          media_type=index["mediaType"], size=len(raw), document=index)
    assert record["kind"] == "index"
    assert record["child_digests"] == [
        "sha256:9b0e3056b8cd8630271825665a0613cc27829d6a24906dc0122b3b4834312f7d",
        "sha256:b176e92c806bbf28465bb830a8e2329be9db6b77bc764a337d06b3444d3fa5dc",
        "sha256:cdd230199482970078c9f0a9914cae8f558c128050a8e2ac60849ebd307f1e45",
        "sha256:75ba88a40235cbcaa70686e0e63394b435e0a7f4497fa38f88277c4d43f2c384",
        "sha256:64ee4b015289e31457dfb6ef3137030b9ba246062cfb71f9d2e7a989d81e3549",
        "sha256:6c1349eb961f49f5f43109350a80607bc6c7ac29cd4e1096dea28686839b22d8",
        "sha256:70ec4f50ad65c06fab56aaaba32be2aef7b13bb5bc969ad09ae9c78400cc316d",
        "sha256:8ff6cc915cf8a871aa5f6aae2335d9fa43769a5b2a65c72a15605549f3b075a4",
    ]
    assert record["layers"] == [] and record["total_size"] is None and record["config_digest"] is None


def test_cosign_tags_name_the_subject():
    subject = "sha256:" + "ab" * 32
    _, sig = load("cosign_signature_manifest.gcr.dlorenc-demo.json")
    assert oci.classify(sig["mediaType"], sig, tags=[f"sha256-{'ab' * 32}.sig"]) == ("signature", subject)
    assert oci.classify(sig["mediaType"], sig, tags=[f"sha256-{'ab' * 32}.att"]) == ("attestation", subject)
    assert oci.classify(sig["mediaType"], sig, tags=[f"sha256-{'ab' * 32}.sbom"]) == ("artifact", subject)


def image_spec_validator(document: dict) -> jsonschema.protocols.Validator:
    """The image-spec schema for a manifest or index, its `$ref`s resolved from disk only."""
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    base = "https://opencontainers.org/schema/image/"
    registry = Registry().with_resources(
        (base + path.name, Resource.from_contents(json.loads(path.read_text()), default_specification=DRAFT4))
        for path in SCHEMAS.glob("*.json")
    )
    name = "image-index-schema.json" if isinstance(document.get("manifests"), list) else "image-manifest-schema.json"
    schema = {"$ref": base + name}
    return jsonschema.Draft4Validator(schema, registry=registry)


OCI_MANIFEST_SAMPLES = sorted(p.name for p in SAMPLES.glob("oci_*.json") if "config" not in p.name)


@pytest.mark.parametrize("name", OCI_MANIFEST_SAMPLES)
def test_oci_samples_are_valid_per_the_image_spec_schemas(name):
    """The schemas accept real ghcr.io content: a fair judge of the builder below."""
    _, doc = load(name)
    image_spec_validator(doc).validate(doc)


def test_builder_manifests_are_valid_per_the_image_spec_schemas():
    from tests.emulator.dataset import OCI_INDEX, OCI_MANIFEST, sample_dataset

    checked = 0
    for package in sample_dataset().packages:
        for pushed in package.manifests.values():
            if pushed.media_type in (OCI_INDEX, OCI_MANIFEST):
                doc = json.loads(pushed.body)
                image_spec_validator(doc).validate(doc)
                checked += 1
    assert checked >= 10


def test_referrers_tag_schema_index_takes_its_subject_from_its_tag():
    index = "application/vnd.oci.image.index.v1+json"
    doc = {"schemaVersion": 2, "mediaType": index, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "b" * 64, "size": 1,
        "artifactType": "application/vnd.dev.sigstore.bundle.v0.3+json"}]}
    assert oci.classify(index, doc, None, ["sha256-" + "a" * 64]) == ("index", "sha256:" + "a" * 64)
    assert oci.classify(index, doc, None, ["latest"]) == ("index", None)
    assert oci.classify(index, doc, None, ["sha256-" + "a" * 64 + ".sig"])[1] == "sha256:" + "a" * 64


@pytest.mark.parametrize(("created", "expected"), [
    ("2024-03-01T12:00:00Z", "2024-03-01T12:00:00Z"),
    ("2015-10-31T22:22:56.015925234Z", "2015-10-31T22:22:56.015925Z"),  # Go's nanoseconds, truncated
    ("2024-03-01T12:00:00.5Z", "2024-03-01T12:00:00.500000Z"),
    ("2024-03-01T12:00:00+02:00", "2024-03-01T10:00:00Z"),
    ("2024-03-01T01:30:00.123456789+02:00", "2024-02-29T23:30:00.123456Z"),  # across a leap day
    ("2024-03-01T12:00:00-05:30", "2024-03-01T17:30:00Z"),
    ("2024-03-01T12:00:00+0000", "2024-03-01T12:00:00Z"),
    ("2024-03-01t12:00:00z", "2024-03-01T12:00:00Z"),
    ("2024-03-01T12:00:00", "2024-03-01T12:00:00Z"),  # no offset: taken as UTC
    ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),  # Go's zero time, as some builders write it
    ("2024-13-01T00:00:00Z", None),
    ("2024-02-30T00:00:00Z", None),
    ("yesterday", None),
    ("2024-03-01", None),
    ("", None),
    (None, None),
    (1709294400, None),
])
def test_image_created_is_utc_iso8601(created, expected):
    assert oci.utc_timestamp(created) == expected


def test_unreadable_image_created_is_null_with_a_warning_naming_the_digest(caplog):
    raw, image = load("oci_manifest_image.ghcr.gpoulios-testpkg.json")
    _, config = load("oci_image_config.image-spec-example.json")
    with caplog.at_level("WARNING", logger="tap-ghcr"):
        record = oci.describe(owner_login="o", package_name="p", digest="sha256:abc", media_type=image["mediaType"],
                              size=len(raw), document=image, config={**config, "created": "last tuesday"})
    assert record["image_created"] is None
    assert "o/p@sha256:abc" in caplog.text and "last tuesday" in caplog.text


# A manifest is what the registry says, digest-checked but not schema-checked: a field of the wrong JSON type
# (a `config` that is a string, a layer `size` that is NaN, a `digest` that is an object) must not stop the sync.
HOSTILE = [5, 1.5, float("nan"), 1e400, -1, "x", "", [], {}, [1], {"a": 1}, None, True, {"digest": 5}]


def _paths(value: object, path: tuple = ()) -> list[tuple]:
    found = [path] if path else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*path, index))
    return found


def _with(document: dict, path: tuple, value: object) -> dict:
    changed = json.loads(json.dumps(document))
    parent = changed
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return changed


def test_a_manifest_with_fields_of_any_json_type_is_read_without_an_error() -> None:
    from tap_ghcr.attestations.documents import describe_documents

    manifests = [d for d in (json.loads(p.read_text()) for p in sorted(SAMPLES.glob("*.json")))
                 if isinstance(d, dict) and ({"layers", "manifests", "config"} & d.keys())]
    assert len(manifests) >= 10
    strings = ("media_type", "artifact_type", "platform_os", "platform_architecture", "platform_variant",
               "subject_digest", "config_digest", "config_media_type", "image_created")
    cases = 0
    for original in manifests:
        media_type = original.get("mediaType", "")
        for path in _paths(original):
            for value in HOSTILE:
                document = _with(original, path, value)
                descriptor = next(iter(oci.child_descriptors(document)), None)
                tags = ["sha256-" + "b" * 64 + ".sig", 5, None]  # GitHub's tags are strings; these need not be
                oci.classify(media_type, document, descriptor, tags)
                oci.wants_config("image", document)
                record = oci.describe(owner_login="o", package_name="p", digest="sha256:x", media_type=media_type,
                                      size=1, document=document, descriptor=document, config=document, tags=tags)
                assert all(record[k] is None or isinstance(record[k], str) for k in strings), (path, value, record)
                assert all(isinstance(d, str) for d in record["child_digests"] or []), (path, value)
                assert type(record["total_size"]) is int or record["total_size"] is None, (path, value)
                assert all(type(layer["size"]) is int or layer["size"] is None for layer in record["layers"])
                for ref in describe_documents(owner_login="o", package_name="p", digest="sha256:x",
                                              media_type=media_type, document=document, descriptor=document,
                                              tags=tags):
                    assert isinstance(ref.digest, str) and isinstance(ref.media_type, str), (path, value)
                cases += 1
    assert cases > 5000


@pytest.mark.parametrize(
    ("metadata", "tags"),
    [
        ({"container": {"tags": ["v1", "latest"]}}, ["v1", "latest"]),
        ({"container": {"tags": ["v1", 5, None, {"a": 1}]}}, ["v1"]),
        ({"container": {"tags": "v1"}}, []),  # not ['v', '1']
        ({"container": {"tags": {"v1": 1}}}, []),
        ({"container": "x"}, []),
        ("x", []),
        (None, []),
        ({}, []),
    ],
)
def test_a_version_s_tags_are_its_list_of_strings(metadata, tags) -> None:
    from tap_ghcr.models import version_tags

    assert version_tags({"metadata": metadata}) == tags


@pytest.mark.parametrize(
    ("body", "document", "problem"),
    [
        (b'{"schemaVersion": 2}', {"schemaVersion": 2}, None),
        (b"[1, 2]", {}, "not a JSON object"),
        (b"<html>", {}, "not JSON Python can read (JSONDecodeError)"),
        (b"[" * 50_000 + b"]" * 50_000, {}, "not JSON Python can read (RecursionError)"),
        (b'{"size": ' + b"9" * 4301 + b"}", {}, "not JSON Python can read (ValueError)"),
    ],
)
def test_a_manifest_body_python_cannot_hold_is_an_empty_document_and_a_reason(body, document, problem) -> None:
    from tap_ghcr.registry.client import Manifest, read_object

    assert read_object(body) == (document, problem)
    assert Manifest("o/p", "sha256:x", "", body).document == document


@pytest.mark.parametrize(
    ("sizes", "layer_sizes", "total"),
    [
        ((10, 20), [10, 20], 30 + 5),
        ((2**64, 1), [None, 1], 1 + 5),  # past int64: not a size
        ((-1, True), [None, None], 5),
        ((int("9" * 4300), 1), [None, 1], 1 + 5),  # a JSON number msgspec cannot write
        ((2**63 - 1, 2**63 - 1), [2**63 - 1, 2**63 - 1], None),  # each a size, their sum past int64
    ],
)
def test_sizes_are_int64(sizes, layer_sizes, total) -> None:
    document = {"config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:c", "size": 5},
                "layers": [{"digest": "sha256:l", "size": size} for size in sizes]}
    record = oci.describe(owner_login="o", package_name="p", digest="sha256:x", media_type="", size=1,
                          document=document)
    assert [layer["size"] for layer in record["layers"]] == layer_sizes
    assert record["total_size"] == total


def test_labels_and_annotations_keep_their_string_values_only() -> None:
    document = {"annotations": {"a": "1", "n": 1, "o": {"k": [1]}, "t": True},
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:c"}}
    record = oci.describe(owner_login="o", package_name="p", digest="sha256:x", media_type="", size=1,
                          document=document, config={"config": {"Labels": {"l": "v", "n": 5, "x": None}}})
    assert record["annotations"] == {"a": "1"} and record["labels"] == {"l": "v"}


@pytest.mark.parametrize(
    ("digest", "listed"),
    [
        ("sha256:" + "a" * 64, True),
        ("sha512:" + "b" * 128, True),
        ("latest", False),  # a tag in a digest's place would be fetched as a tag
        ("sha256:", False),
        (":abc", False),
        ("SHA256:abc", False),
        ("sha256:a b", False),
        (5, False),
        ({"a": 1}, False),
    ],
)
def test_an_index_lists_children_by_well_formed_digest_only(digest, listed) -> None:
    document = {"manifests": [{"digest": digest, "mediaType": "application/vnd.oci.image.manifest.v1+json"}]}
    assert bool(oci.child_descriptors(document)) is listed
    image = {"config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest}}
    assert oci.wants_config("image", image) is listed  # no config fetch by a tag or an object


def test_indexes_chained_thousands_deep_are_walked_in_a_loop() -> None:
    from tap_ghcr.inventory import walk_indexes

    depth = 5_000  # far past Python's recursion limit
    chain = {f"d{i}": [{"digest": f"d{i + 1}"}] for i in range(depth)}
    parent_of, order = walk_indexes(["d0"], lambda d: chain.get(d, []))
    assert order == [f"d{i}" for i in range(depth + 1)]
    assert parent_of[f"d{depth}"] == (f"d{depth - 1}", {"digest": f"d{depth}"})


def test_the_walk_keeps_index_order_and_the_first_parent_depth_first() -> None:
    from tap_ghcr.inventory import walk_indexes

    tree = {"top": [{"digest": "a"}, {"digest": "x", "n": 1}], "a": [{"digest": "x", "n": 2}, {"digest": "b"}],
            "other": [{"digest": "top"}]}
    parent_of, order = walk_indexes(["top", "other", "a"], lambda d: tree.get(d, []))
    assert order == ["top", "a", "x", "b", "other"]
    assert parent_of["x"] == ("a", {"digest": "x", "n": 2})  # reached through `a` before `top` lists it
    assert parent_of["top"] == ("other", {"digest": "top"})
