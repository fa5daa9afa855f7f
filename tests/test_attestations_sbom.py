"""SPDX 2.2/2.3 and CycloneDX 1.4-1.6 SBOMs -> `sbom_packages` records and the SBOM summary fields."""

from __future__ import annotations

import io
import json

import pytest

from tap_ghcr.attestations import SBOM_PACKAGE_FIELDS, read_document
from tap_ghcr.attestations.sbom import purl_parts, strip_supplier
from tests.attestations_support import SUPPLY_CHAIN, ref_for, spdx_package, statement, write_spdx_statement

pytestmark = pytest.mark.usefixtures("both_readers")  # every document read whole and streamed

CUPDATE_SUBJECT = "sha256:77fa9a8d543e2474603e0fb766e4b757a9fe83b7b232eb8e2a754985c244af43"


def read(doc: bytes | dict, **ref_args) -> tuple[dict, list[dict], list[str]]:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    ref = ref_for(**ref_args)
    result = read_document(ref, io.BytesIO(body), want_packages=True)
    return result.record(ref), list(result.packages), result.warnings


def test_buildx_spdx_23_real_statement() -> None:
    body = (SUPPLY_CHAIN / "buildx_spdx-2.3_sbom_statement_ghcr_cupdate_trimmed.json").read_bytes()
    record, packages, warnings = read(
        body, subject=CUPDATE_SUBJECT, kind="sbom", predicate_type="https://spdx.dev/Document"
    )
    assert warnings == []
    assert (record["kind"], record["predicate_type"], record["statement_type"]) == (
        "sbom",
        "https://spdx.dev/Document",
        "https://in-toto.io/Statement/v0.1",
    )
    assert (record["sbom_format"], record["sbom_spec_version"], record["sbom_package_count"]) == ("spdx", "SPDX-2.3", 2)
    assert record["created_at"] == "2025-03-28T09:38:12Z"  # no manifest annotation, no tlog: the SBOM's creation time
    assert packages == [
        {
            "owner_login": "octo",
            "package_name": "app",
            "sbom_digest": "sha256:" + "d" * 64,
            "subject_digest": CUPDATE_SUBJECT,
            "sbom_format": "spdx",
            "package_ref": "SPDXRef-Package-go-module-github.com-AlexGustafsson-cupdate-381730257ca50558",
            "name": "github.com/AlexGustafsson/cupdate",
            "version": "v0.19.0-30-g509402d",
            "purl": "pkg:golang/github.com/AlexGustafsson/cupdate@v0.19.0-30-g509402d",
            "purl_type": "golang",
            "purl_namespace": "github.com/AlexGustafsson",
            "purl_name": "cupdate",
            "cpe": "cpe:2.3:a:AlexGustafsson:cupdate:v0.19.0-30-g509402d:*:*:*:*:*:*:*",
            "license_concluded": None,
            "license_declared": None,
            "supplier": None,
            "package_type": None,
        },
        {
            "owner_login": "octo",
            "package_name": "app",
            "sbom_digest": "sha256:" + "d" * 64,
            "subject_digest": CUPDATE_SUBJECT,
            "sbom_format": "spdx",
            "package_ref": "SPDXRef-Package-go-module-github.com-caarlos0-env-v11-db608271955ec031",
            "name": "github.com/caarlos0/env/v11",
            "version": "v11.3.1",
            "purl": "pkg:golang/github.com/caarlos0/env@v11.3.1#v11",
            "purl_type": "golang",
            "purl_namespace": "github.com/caarlos0",
            "purl_name": "env",
            "cpe": "cpe:2.3:a:caarlos0:env\\/v11:v11.3.1:*:*:*:*:*:*:*",
            "license_concluded": None,
            "license_declared": None,
            "supplier": None,
            "package_type": None,
        },
    ]
    assert all(tuple(p) == SBOM_PACKAGE_FIELDS for p in packages)


def test_spdx_22_underscore_category_supplier_and_licenses() -> None:
    # Values of the microcks npm package (buildx_spdx-2.3_sbom_statement_quay_microcks_truncated.jsonc), SPDX 2.2 form.
    predicate = {
        "spdxVersion": "SPDX-2.2",
        "creationInfo": {"created": "2024-12-03T13:19:29Z"},
        "packages": [
            {
                "name": "@colors/colors",
                "SPDXID": "SPDXRef-Package-npm--colors-colors-0d3fee5f6cc0bed6",
                "versionInfo": "1.6.0",
                "supplier": "Person: DABH",
                "licenseConcluded": "NONE",
                "licenseDeclared": "MIT",
                "primaryPackagePurpose": "LIBRARY",
                "externalRefs": [
                    {
                        "referenceCategory": "SECURITY",
                        "referenceType": "cpe22Type",
                        "referenceLocator": "cpe:/a:dabh:colors",
                    },
                    {
                        "referenceCategory": "PACKAGE_MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": "pkg:npm/%40colors/colors@1.6.0",
                    },
                ],
            },
            {
                "name": "no-refs",
                "SPDXID": "SPDXRef-2",
                "supplier": "Organization: ACME Inc",
                "licenseDeclared": "NOASSERTION",
            },
        ],
    }
    doc = statement("https://spdx.dev/Document/v2.2", predicate, "0" * 64, "v0.1")
    record, packages, _ = read(doc)
    assert (record["kind"], record["sbom_spec_version"], record["sbom_package_count"]) == ("sbom", "SPDX-2.2", 2)
    first, second = packages
    assert first["purl"] == "pkg:npm/%40colors/colors@1.6.0"
    assert (first["purl_type"], first["purl_namespace"], first["purl_name"]) == ("npm", "@colors", "colors")
    assert first["cpe"] == "cpe:/a:dabh:colors"
    assert (first["license_concluded"], first["license_declared"]) == (None, "MIT")
    assert (first["supplier"], first["package_type"]) == ("DABH", "library")
    assert (second["purl"], second["cpe"], second["license_declared"], second["supplier"]) == (
        None,
        None,
        None,
        "ACME Inc",
    )


def test_purl_category_must_be_package_manager() -> None:
    pkg = spdx_package(7, category="OTHER")
    doc = statement("https://spdx.dev/Document", {"spdxVersion": "SPDX-2.3", "packages": [pkg]}, "0" * 64)
    _, packages, _ = read(doc)
    assert packages[0]["purl"] is None
    assert packages[0]["cpe"] == "cpe:2.3:a:example:pkg-7:1.7.0:*:*:*:*:*:*:*"


def test_cyclonedx_14_real_bom_as_plain_artifact() -> None:
    body = (SUPPLY_CHAIN / "cyclonedx-1.4_bom_laravel-7.12.0.json").read_bytes()
    record, packages, _ = read(body, media_type="application/vnd.cyclonedx+json", kind="sbom", source="referrer")
    assert (record["statement_type"], record["predicate_type"]) == (None, None)
    assert (record["kind"], record["sbom_format"], record["sbom_spec_version"], record["sbom_package_count"]) == (
        "sbom",
        "cyclonedx",
        "1.4",
        62,
    )
    assert len(packages) == 62
    assert packages[0] == {
        "owner_login": "octo",
        "package_name": "app",
        "sbom_digest": "sha256:" + "d" * 64,
        "subject_digest": "sha256:" + "0" * 64,
        "sbom_format": "cyclonedx",
        "package_ref": "asm89/stack-cors-1.3.0.0",
        "name": "stack-cors",
        "version": "1.3.0",
        "purl": "pkg:composer/asm89/stack-cors@1.3.0",
        "purl_type": "composer",
        "purl_namespace": "asm89",
        "purl_name": "stack-cors",
        "cpe": None,
        "license_concluded": None,
        "license_declared": "MIT",
        "supplier": None,
        "package_type": "library",
    }
    assert packages[-1]["package_ref"] == "voku/portable-ascii-1.6.1.0"


NESTED_BOM = {
    "bomFormat": "CycloneDX",
    "specVersion": "1.6",
    "metadata": {
        "timestamp": "2026-05-01T10:00:00Z",
        "component": {"name": "the-image", "components": [{"name": "x"}]},
    },
    "components": [
        {
            "type": "APPLICATION",
            "bom-ref": "app",
            "name": "app",
            "version": "2.0",
            "supplier": {"name": "ACME"},
            "licenses": [{"license": {"id": "Apache-2.0"}}, {"license": {"name": "Custom License"}}],
            "cpe": "cpe:2.3:a:acme:app:2.0:*:*:*:*:*:*:*",
            "components": [
                {
                    "type": "library",
                    "name": "child",
                    "version": "0.1",
                    "purl": "pkg:maven/org.example/child@0.1?type=jar",
                    "licenses": [{"expression": "MIT OR BSD-3-Clause"}],
                    "components": [{"type": "file", "name": "grandchild", "version": "9"}],
                }
            ],
        },
        {"type": "operating-system", "name": "debian"},
    ],
}


def test_cyclonedx_16_nested_components_and_ref_fallbacks() -> None:
    doc = statement("https://cyclonedx.org/bom", NESTED_BOM, "0" * 64)
    record, packages, _ = read(doc)
    assert (record["sbom_format"], record["sbom_spec_version"], record["sbom_package_count"]) == ("cyclonedx", "1.6", 4)
    assert record["created_at"] == "2026-05-01T10:00:00Z"
    by_ref = {p["package_ref"]: p for p in packages}
    assert set(by_ref) == {"app", "pkg:maven/org.example/child@0.1?type=jar", "grandchild@9", "debian"}
    app = by_ref["app"]
    assert (app["license_declared"], app["supplier"], app["package_type"], app["cpe"]) == (
        "Apache-2.0 AND Custom License",
        "ACME",
        "application",
        "cpe:2.3:a:acme:app:2.0:*:*:*:*:*:*:*",
    )
    child = by_ref["pkg:maven/org.example/child@0.1?type=jar"]
    assert (child["purl_type"], child["purl_namespace"], child["purl_name"]) == ("maven", "org.example", "child")
    assert child["license_declared"] == "MIT OR BSD-3-Clause"
    assert by_ref["grandchild@9"]["package_type"] == "file"
    assert by_ref["debian"]["version"] is None


def test_cyclonedx_15_schema_predicate_and_want_packages_false() -> None:
    bom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [{"name": "a", "version": "1"}]}
    ref = ref_for()
    result = read_document(
        ref, io.BytesIO(json.dumps(statement("https://cyclonedx.org/schema", bom, "0" * 64)).encode())
    )
    assert result.record(ref)["sbom_spec_version"] == "1.5"
    assert list(result.packages) == []


def test_generated_spdx_with_thousands_of_packages() -> None:
    out = io.BytesIO()
    count = write_spdx_statement(out, 2_000_000)
    assert count > 3000
    record, packages, _ = read(out.getvalue())
    assert record["sbom_package_count"] == count
    assert len(packages) == count
    assert packages[1234]["package_ref"] == "SPDXRef-Package-npm-pkg-1234"
    assert packages[1234]["purl_name"] == "pkg-1234"
    assert packages[1234]["supplier"] == "Example Corp"


def test_generated_deeply_nested_cyclonedx() -> None:
    def component(path: str, depth: int) -> dict:
        node = {"type": "library", "bom-ref": path, "name": path, "version": "1"}
        if depth:
            node["components"] = [component(f"{path}.{i}", depth - 1) for i in range(3)]
        return node

    bom = {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": [component(f"c{i}", 4) for i in range(20)]}
    record, packages, _ = read(statement("https://cyclonedx.org/bom", bom, "0" * 64))
    expected = 20 * (1 + 3 + 9 + 27 + 81)
    assert record["sbom_package_count"] == expected == len(packages) == len({p["package_ref"] for p in packages})
    assert "c19.2.2.2.2" in {p["package_ref"] for p in packages}


def test_helpers() -> None:
    assert strip_supplier("Organization: Anchore, Inc") == "Anchore, Inc"
    assert strip_supplier("Person: Jane Doe (jane@example.com)") == "Jane Doe (jane@example.com)"
    assert strip_supplier("NOASSERTION") is None
    assert strip_supplier("Organization: NOASSERTION") is None
    assert purl_parts("pkg:deb/debian/libc%2B%2B@1?arch=amd64") == {
        "purl_type": "deb",
        "purl_namespace": "debian",
        "purl_name": "libc++",
    }
    assert purl_parts("not a purl") == {"purl_type": None, "purl_namespace": None, "purl_name": None}


def test_statement_whose_first_key_is_not_in_toto_and_bare_spdx() -> None:
    predicate = {"spdxVersion": "SPDX-2.3", "packages": [spdx_package(1), spdx_package(2)]}
    doc = {"comment": "first", **statement("https://spdx.dev/Document", predicate, "0" * 64)}
    record, packages, _ = read(doc)
    assert (record["statement_type"], record["sbom_package_count"], len(packages)) == (
        "https://in-toto.io/Statement/v1",
        2,
        2,
    )
    record, packages, _ = read({"SPDXID": "SPDXRef-DOCUMENT", **predicate}, media_type="application/spdx+json")
    assert (record["statement_type"], record["kind"], record["sbom_package_count"], len(packages)) == (
        None,
        "sbom",
        2,
        2,
    )


def test_every_package_field_is_a_string_or_null_whatever_json_type_the_sbom_used() -> None:
    """The `sbom_packages` stream skips the SDK's type conformance: this is what makes that safe."""
    odd: list = [1, 2.5, True, None, [], ["x"], {"a": 1}, "  ", "ok"]
    spdx = {
        "spdxVersion": "SPDX-2.3",
        "packages": [
            {
                "SPDXID": value,
                "name": value,
                "versionInfo": value,
                "supplier": value,
                "licenseConcluded": value,
                "licenseDeclared": value,
                "primaryPackagePurpose": value,
                "externalRefs": [
                    {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": value},
                    {"referenceCategory": "SECURITY", "referenceType": "cpe23Type", "referenceLocator": value},
                    {"referenceCategory": value, "referenceType": value, "referenceLocator": "pkg:npm/x@1"},
                    value,
                ],
            }
            for value in odd
        ]
        + [{"SPDXID": f"refs-{i}", "externalRefs": value} for i, value in enumerate(odd)],
    }
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "components": [
            {
                "bom-ref": value,
                "name": value,
                "version": value,
                "purl": value,
                "cpe": value,
                "type": value,
                "supplier": {"name": value},
                "licenses": [{"expression": value}, {"license": {"id": value, "name": value}}],
            }
            for value in odd
        ],
    }
    for predicate_type, doc in (("https://spdx.dev/Document", spdx), ("https://cyclonedx.org/bom", bom)):
        _, packages, _ = read(statement(predicate_type, doc, "0" * 64))
        assert len(packages) == len(doc.get("packages", doc.get("components")))
        wrong = {(k, type(v).__name__) for p in packages for k, v in p.items() if v is not None and type(v) is not str}
        assert wrong == set(), predicate_type


def test_purls_are_cached_only_when_ordinary_in_length() -> None:
    from tap_ghcr.attestations.sbom import _parsed_purl

    _parsed_purl.cache_clear()
    long = "pkg:npm/" + "a" * 100_000 + "@1"
    assert purl_parts(long)["purl_name"] == "a" * 100_000
    assert purl_parts("pkg:deb/debian/curl@8") == {"purl_type": "deb", "purl_namespace": "debian", "purl_name": "curl"}
    assert _parsed_purl.cache_info().currsize == 1  # the short one only


@pytest.mark.parametrize("package", [
    {"name": "a", "purl": "pkg:npm/a@1", "extra": "x"},
    {},
    dict.fromkeys(reversed(SBOM_PACKAGE_FIELDS[5:]), "v"),
])
def test_a_package_of_other_keys_still_gives_exactly_the_record_fields(package) -> None:
    """The record takes the reader's package as it is only when it has exactly the package fields (as
    both readers build it); anything else is cut and filled to them."""
    from tap_ghcr.attestations.records import sbom_package_record

    record = sbom_package_record(ref_for(kind="sbom"), "sha256:" + "1" * 64, "spdx", package)
    assert set(record) == set(SBOM_PACKAGE_FIELDS)
    assert record["name"] == package.get("name") and "extra" not in record
