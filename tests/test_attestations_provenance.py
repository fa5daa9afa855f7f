"""SLSA provenance v0.2 / v1 (BuildKit min and max, GitHub) -> the contract's provenance fields."""

from __future__ import annotations

import base64
import json

import pytest

from tap_ghcr.attestations.provenance import PROVENANCE_FIELDS, provenance_fields
from tests.attestations_support import SUPPLY_CHAIN, load

ALPINE = {
    "uri": "pkg:docker/alpine@latest?platform=linux%2Famd64",
    "digest": "sha256:8914eb54f968791faf6a8638949e480fef81e697984fba772b3976835194c6d4",
}


def fields_of(name: str) -> dict:
    doc = load(SUPPLY_CHAIN / name)
    return provenance_fields(doc["predicate"], doc["predicateType"])


def test_buildx_v02_max_real_ghcr() -> None:
    assert fields_of("buildx_slsa_v0.2_mode-max_provenance_ghcr_cupdate.json") == {
        "builder_id": "https://github.com/AlexGustafsson/cupdate/actions/runs/14008088422/attempts/1",
        "build_type": "https://mobyproject.org/buildkit@v1",
        "build_invocation_id": "uys57pb7mk5d2ho2yj3tfo85i",
        "build_started_at": "2025-03-22T11:23:15.39980189Z",
        "build_finished_at": "2025-03-22T11:26:10.631712748Z",
        # No remote config source (local build): the vcs hint.
        "source_uri": "https://github.com/AlexGustafsson/cupdate",
        "source_revision": "2fbefbc45dd73e49c981e7a59c9b3d65314ed315",
        "source_ref": None,
        "build_config_path": "Dockerfile",
        "materials": [
            {
                "uri": "pkg:docker/docker/buildkit-syft-scanner@stable-1",
                "digest": "sha256:434b49272c090c4788e38c8d8d6008c3741c4a8d4638e62dff5cdc6409d7927a",
            },
            {
                "uri": "pkg:docker/golang@1.24.1?digest="
                "sha256:c5adecdb7b3f8c5ca3c88648a861882849cc8b02fed68ece31e25de88ad13418"
                "&platform=linux%2Famd64",
                "digest": "sha256:c5adecdb7b3f8c5ca3c88648a861882849cc8b02fed68ece31e25de88ad13418",
            },
            {
                "uri": "pkg:docker/node@22.14.0?digest="
                "sha256:cfef4432ab2901fd6ab2cb05b177d3c6f8a7f48cb22ad9d7ae28bb6aa5f8b471"
                "&platform=linux%2Famd64",
                "digest": "sha256:cfef4432ab2901fd6ab2cb05b177d3c6f8a7f48cb22ad9d7ae28bb6aa5f8b471",
            },
        ],
    }


def test_buildkit_doc_v02_min_and_max() -> None:
    common = {
        "builder_id": None,  # BuildKit writes "" outside CI
        "build_type": "https://mobyproject.org/buildkit@v1",
        "source_uri": None,
        "source_revision": None,
        "source_ref": None,
        "build_config_path": "Dockerfile",
        "materials": [ALPINE],
    }
    assert fields_of("buildkit_doc_slsa_v0.2_mode-min_provenance_statement.json") == {
        **common,
        "build_invocation_id": "yirbp1aosi1vqjmi3z6bc75nb",
        "build_started_at": "2022-12-08T11:48:59.466513707Z",
        "build_finished_at": "2022-12-08T11:49:01.256820297Z",
    }
    assert fields_of("buildkit_doc_slsa_v0.2_mode-max_provenance_statement.json") == {
        **common,
        "build_invocation_id": "46ue2x93k3xj5l463dektwldw",
        "build_started_at": "2022-12-08T11:50:54.953375437Z",
        "build_finished_at": "2022-12-08T11:50:55.447841328Z",
    }


def test_buildkit_doc_v1_min_and_max() -> None:
    common = {
        "builder_id": None,
        "build_type": "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md",
        "source_uri": None,
        "source_revision": None,
        "source_ref": None,
        "build_config_path": "Dockerfile",
        "materials": [ALPINE],
    }
    assert fields_of("buildkit_doc_slsa_v1_mode-min_provenance_statement.json") == {
        **common,
        "build_invocation_id": "yirbp1aosi1vqjmi3z6bc75nb",
        "build_started_at": "2022-12-08T11:48:59.466513707Z",
        "build_finished_at": "2022-12-08T11:49:01.256820297Z",
    }
    assert fields_of("buildkit_doc_slsa_v1_mode-max_provenance_statement.json") == {
        **common,
        "build_invocation_id": "46ue2x93k3xj5l463dektwldw",
        "build_started_at": "2022-12-08T11:50:54.953375437Z",
        "build_finished_at": "2022-12-08T11:50:55.447841328Z",
    }


def _bundle_statement(name: str) -> dict:
    bundle = load(SUPPLY_CHAIN / name)
    return json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))


def test_github_older_build_type_reusable_workflow() -> None:
    doc = _bundle_statement("github_attestation_sigstore_bundle_v0.3_reusable-workflow.sigstore.json")
    assert provenance_fields(doc["predicate"], doc["predicateType"]) == {
        "builder_id": "https://github.com/actions/runner/github-hosted",
        "build_type": "https://slsa-framework.github.io/github-actions-buildtypes/workflow/v1",
        "build_invocation_id": "https://github.com/malancas/attest-demo/actions/runs/9228858953/attempts/1",
        "build_started_at": None,
        "build_finished_at": None,
        "source_uri": "https://github.com/malancas/attest-demo",
        "source_revision": "95baf27389e83e6a5c48f42e190d48d7abcea19e",
        "source_ref": "refs/heads/main",
        "build_config_path": ".github/workflows/shared.yml",
        "materials": [
            {
                "uri": "git+https://github.com/malancas/attest-demo@refs/heads/main",
                "digest": "gitCommit:95baf27389e83e6a5c48f42e190d48d7abcea19e",
            }
        ],
    }


def test_github_actions_build_type_v1() -> None:
    # The shape @actions/attest writes since 2024-06 (buildType actions.github.io).
    predicate = {
        "buildDefinition": {
            "buildType": "https://actions.github.io/buildtypes/workflow/v1",
            "externalParameters": {
                "workflow": {"ref": "refs/tags/v2.0.0", "repository": "https://github.com/o/r", "path": ".github/w.yml"}
            },
            "internalParameters": {"github": {"event_name": "release", "repository_id": "1"}},
            "resolvedDependencies": [
                {"uri": "git+https://github.com/o/r@refs/tags/v2.0.0", "digest": {"gitCommit": "c0ffee"}}
            ],
        },
        "runDetails": {
            "builder": {"id": "https://github.com/o/r/.github/w.yml@refs/tags/v2.0.0"},
            "metadata": {"invocationId": "https://github.com/o/r/actions/runs/7/attempts/2"},
        },
    }
    fields = provenance_fields(predicate, "https://slsa.dev/provenance/v1")
    assert fields["build_type"] == "https://actions.github.io/buildtypes/workflow/v1"
    assert fields["builder_id"] == "https://github.com/o/r/.github/w.yml@refs/tags/v2.0.0"
    assert fields["build_invocation_id"] == "https://github.com/o/r/actions/runs/7/attempts/2"
    assert (fields["source_uri"], fields["source_revision"], fields["source_ref"]) == (
        "https://github.com/o/r",
        "c0ffee",
        "refs/tags/v2.0.0",
    )
    assert fields["build_config_path"] == ".github/w.yml"


def test_v02_remote_git_context_config_source_wins_over_vcs() -> None:
    predicate = {
        "builder": {"id": "https://github.com/o/r/actions/runs/1/attempts/1"},
        "buildType": "https://mobyproject.org/buildkit@v1",
        "invocation": {
            "configSource": {
                "uri": "https://github.com/o/r.git#refs/heads/release",
                "digest": {"sha1": "1111111111111111111111111111111111111111"},
                "entryPoint": "build/Dockerfile",
            }
        },
        "materials": [
            {"uri": "https://github.com/o/r.git#refs/heads/release", "digest": {"sha1": "1111"}},
            {"uri": "https://example.com/file.tgz"},
        ],
        "metadata": {
            "https://mobyproject.org/buildkit@v1#metadata": {
                "vcs": {"source": "git@github.com:o/fork.git", "revision": "2222222222222222222222222222222222222222"}
            }
        },
    }
    fields = provenance_fields(predicate, "https://slsa.dev/provenance/v0.2")
    assert fields["source_uri"] == "https://github.com/o/r.git"
    assert fields["source_revision"] == "1111111111111111111111111111111111111111"
    assert fields["source_ref"] == "refs/heads/release"
    assert fields["build_config_path"] == "build/Dockerfile"
    assert fields["materials"] == [
        {"uri": "https://github.com/o/r.git#refs/heads/release", "digest": "sha1:1111"},
        {"uri": "https://example.com/file.tgz", "digest": None},
    ]


def test_v1_buildkit_config_source_and_vcs_fallback() -> None:
    remote = {
        "buildDefinition": {
            "buildType": "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md",
            "externalParameters": {
                "configSource": {"uri": "https://github.com/o/r.git#v1.2.3", "digest": {"sha1": "aaaa"}, "path": "Df"}
            },
        },
        "runDetails": {"builder": {"id": ""}, "metadata": {"invocationId": "x", "buildkit_metadata": {}}},
    }
    fields = provenance_fields(remote, "https://slsa.dev/provenance/v1")
    assert (fields["source_uri"], fields["source_revision"], fields["source_ref"], fields["build_config_path"]) == (
        "https://github.com/o/r.git",
        "aaaa",
        "v1.2.3",
        "Df",
    )
    local = {
        "buildDefinition": {"externalParameters": {"configSource": {"path": "Dockerfile"}}},
        "runDetails": {
            "metadata": {"buildkit_metadata": {"vcs": {"source": "https://github.com/o/r", "revision": "bbbb-dirty"}}}
        },
    }
    fields = provenance_fields(local, "https://slsa.dev/provenance/v1")
    assert (fields["source_uri"], fields["source_revision"], fields["source_ref"]) == (
        "https://github.com/o/r",
        "bbbb-dirty",
        None,
    )


def test_not_an_object_gives_all_nulls() -> None:
    assert provenance_fields(None) == dict.fromkeys(PROVENANCE_FIELDS)


V02, V1 = "https://slsa.dev/provenance/v0.2", "https://slsa.dev/provenance/v1"


def _nest(path: str, value: object) -> dict:
    for key in reversed(path.split(".")):
        value = {key: value}
    return value  # type: ignore[return-value]


@pytest.mark.parametrize("predicate_type", [V02, V1])
@pytest.mark.parametrize(
    "path",
    [
        "metadata", "invocation", "invocation.configSource", "materials", "builder",
        "metadata.https://mobyproject.org/buildkit@v1#metadata",
        "buildDefinition", "runDetails", "runDetails.metadata", "runDetails.builder",
        "buildDefinition.externalParameters", "buildDefinition.externalParameters.configSource",
        "buildDefinition.externalParameters.workflow", "buildDefinition.resolvedDependencies",
        "runDetails.metadata.buildkit_metadata", "runDetails.metadata.buildkit_metadata.vcs",
    ],
)
@pytest.mark.parametrize("value", ["x", 1, [1], None, True])
def test_any_type_anywhere_in_a_predicate_is_no_error(predicate_type: str, path: str, value: object) -> None:
    """A hostile predicate that puts a string where an object belongs (any type, at any level read)
    gives nulls there; it used to raise AttributeError out of the reader, which failed the sync."""
    if path == "metadata.https://mobyproject.org/buildkit@v1#metadata":
        predicate: dict = {"metadata": {"https://mobyproject.org/buildkit@v1#metadata": value}}
    else:
        predicate = _nest(path, value)
    fields = provenance_fields(predicate, predicate_type)
    assert set(fields) == set(PROVENANCE_FIELDS)
