"""The pure checks of tap_ghcr/settings.py, as tables."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tap_ghcr import settings
from tap_ghcr.errors import ConfigError
from tap_ghcr.tap import SETTINGS

KNOWN = list(SETTINGS.to_dict()["properties"])


@pytest.mark.parametrize(("argv", "expected"), [
    (["--config", "a.json"], [("--config", "a.json")]),
    (["--config=a.json", "--config", "ENV"], [("--config", "a.json"), ("--config", "ENV")]),
    (["--state", "s.json", "--catalog=c.json", "--discover"], [("--state", "s.json"), ("--catalog", "c.json")]),
    (["--about", "--format", "json"], []),
    (["--config"], []),
])
def test_file_arguments(argv, expected):
    assert settings.file_arguments(argv) == expected


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"),
    ("", "is empty"),
    ("  \n", "is empty"),
    ("{", "is not valid JSON"),
    ("[]", "holds a list, not a JSON object"),
    ('"x"', "holds a JSON str, not a JSON object"),
])
def test_read_json_object_names_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "f.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message) as caught:
        settings.read_json_object(str(path), "config file", "fix it")
    assert str(caught.value).startswith(f"config file {path} ") and str(caught.value).endswith(": fix it")


@pytest.mark.parametrize(("state", "problem"), [
    ({}, None),
    ({"bookmarks": {}}, None),
    ({"bookmarks": {"packages": {"partitions": []}}}, None),
    ({"bookmarks": None}, "`bookmarks` must be an object, not null"),
    ({"bookmarks": []}, "`bookmarks` must be an object, not []"),
    ({"bookmarks": {"packages": 3}}, "`bookmarks.packages` must be an object"),
])
def test_check_state(state, problem):
    if problem is None:
        settings.check_state(state, "s.json")
    else:
        with pytest.raises(ConfigError, match=problem.replace("[", r"\[").replace("]", r"\]")):
            settings.check_state(state, "s.json")


@pytest.mark.parametrize(("catalog", "problem"), [
    ({"streams": [{"tap_stream_id": "packages"}, {"tap_stream_id": "tags"}]}, None),
    ({"streams": [{"tap_stream_id": "tags"}]}, "catalog c.json has no `packages` stream"),
    ({"streams": []}, "catalog c.json has no `packages` stream"),
    ({}, "catalog c.json has no `streams` list"),
    ({"streams": [{"tap_stream_id": "packages", "stream": "packages"}, {"tap_stream_id": "tags", "stream": "tags"}]},
     None),
    ({"streams": [{"tap_stream_id": "packages"}, {"tap_stream_id": "tags", "stream": "tagz"}]},
     "catalog c.json: the entry `tags` names its stream `tagz`; this tap's streams keep their names"),
    # Found by the third review: each crashed.
    ({"streams": [{"tap_stream_id": ["x"]}, {"tap_stream_id": "packages"}]}, "an entry's `tap_stream_id` and "),
    ({"streams": [{"tap_stream_id": 7, "stream": 7}, {"tap_stream_id": "packages"}]}, "an entry's `tap_stream_id`"),
    ({"streams": [{"tap_stream_id": "packages", "schema": {}}]}, "the entry `packages` has no schema `properties`"),
    ({"streams": [{"tap_stream_id": "packages", "schema": []}]}, "the entry `packages` has no schema `properties`"),
    ({"streams": [{"tap_stream_id": "packages"}, {"tap_stream_id": "tags", "schema": {},
                                                  "metadata": [{"breadcrumb": [], "metadata": {"selected": True}}]}]},
     "the entry `tags` has no schema `properties`"),
    # Found by the fourth review: entries the tap skips anyway were refused.
    ({"streams": [{"tap_stream_id": "packages"}, {"tap_stream_id": "other_tap_stream", "schema": {}}]}, None),
    ({"streams": [{"tap_stream_id": "packages"}, {"tap_stream_id": "sbom_packages", "schema": {"type": "object"},
                                                  "metadata": [{"breadcrumb": [], "metadata": {"selected": False}}]}]},
     None),
    ({"streams": [{"tap_stream_id": "packages", "stream": 5}]}, r"must be names \(strings\), not 5"),
])
def test_check_catalog(catalog, problem):
    if problem is None:
        settings.check_catalog(catalog, "c.json")
    else:
        with pytest.raises(ConfigError, match=problem):
            settings.check_catalog(catalog, "c.json")


@pytest.mark.parametrize(("config", "warnings"), [
    ({"organizations": ["a"], "token": "x"}, []),
    ({"organisations": ["a"]}, ["unknown setting `organisations` is ignored; did you mean `organizations`?"]),
    ({"package_pattern": ["*"]}, ["unknown setting `package_pattern` is ignored; did you mean `package_patterns`?"]),
    ({"apiurl": "x"}, ["unknown setting `apiurl` is ignored; did you mean `api_url`?"]),
])
def test_unknown_settings_name_the_closest_known_one(config, warnings):
    assert settings.unknown_settings(config, KNOWN) == warnings


def test_an_unknown_setting_with_no_close_match_lists_the_known_ones():
    (warning,) = settings.unknown_settings({"zzzz": 1}, KNOWN)
    assert warning.startswith("unknown setting `zzzz` is ignored; known settings: ") and "organizations" in warning


@pytest.mark.parametrize(("config", "problem"), [
    ({"start_date": "2024-01-31T00:00:00Z"}, None),
    ({"start_date": "2024-01-31"}, None),
    ({"organizations": ["acme"], "users": ["octo-admin"], "package_patterns": ["web*"]}, None),
    ({"start_date": "2024-13-01"}, "`start_date` '2024-13-01' is not a date-time (month must be in 1..12)"),
    ({"start_date": "last week"}, "`start_date` 'last week' is not a date-time"),
    ({"organizations": [""]}, "`organizations` entry '' is no GitHub login"),
    ({"organizations": ["acme", " "]}, "`organizations` entry ' ' is no GitHub login"),
    ({"organizations": ["acme/web"]}, "`organizations` entry 'acme/web' is no GitHub login"),
    ({"users": [""]}, "`users` entry '' is no GitHub login"),
    ({"package_patterns": []}, "`package_patterns` is empty, so nothing would match"),
    ({"images": [""]}, "`images` holds an empty entry"),
    ({"images": ["acme/web", "ghcr.io/acme/tools/api", "localhost:5000/a_b/c-d.e__f"]}, None),
    ({"images": ["not a reference!"]}, "`images` entry 'not a reference!': expected `owner/name`"),
    ({"images": ["acme/we b"]}, "`images` entry 'acme/we b': 'we b' is no repository name part"),
    ({"images": ["acme/web!"]}, "`images` entry 'acme/web!': 'web!' is no repository name part"),
    ({"images": ["acme/-web"]}, "`images` entry 'acme/-web': '-web' is no repository name part"),
    ({"images": ["acme/web%2Fx"]}, "`images` entry 'acme/web%2Fx': 'web%2Fx' is no repository name part"),
    ({"images": ["acme/web?x=1"]}, "`images` entry 'acme/web?x=1': 'web?x=1' is no repository name part"),
    ({"images": ["https://ghcr.io/acme/web"]}, "`images` entry 'https://ghcr.io/acme/web': give `[host/]owner"),
    ({"images": ["acme/web:1.0"]}, "`images` entry 'acme/web:1.0': give a repository, without tag or digest"),
    ({"images": ["acme/web@sha256:" + "0" * 64]}, "`images` entry 'acme/web@sha256:"),
    ({"images": ["acme"]}, "`images` entry 'acme': expected `owner/name`"),
    ({"username": "oc:to"}, "`username` holds a `:`"),
    ({"username": "bob\n"}, "`username` holds a `:` or a control character"),
    ({"username": "bob-the-bot"}, None),
    ({"images": ["[::1]:5000/a/b", "127.0.0.1:5000/a/b", "HOST.com/A/B", "a/b__c", "a/b---c"]}, None),
    ({"images": ["exa mple.com/a/b"]}, "`images` entry 'exa mple.com/a/b': 'exa mple.com' is no registry host"),
    ({"images": ["ghcr.io:abc/a/b"]}, "`images` entry 'ghcr.io:abc/a/b': 'ghcr.io:abc' is no registry host"),
    ({"images": ["-ghcr.io/a/b"]}, "`images` entry '-ghcr.io/a/b': '-ghcr.io' is no registry host"),
    ({"images": ["a/\u212aube"]}, "`images` entry 'a/\u212aube': '\u212aube' is no repository name part"),
    # Found by review: a password before the host was printed, under a hint about tags.
    ({"images": ["bob:hunter2secret@ghcr.io/a/b"]}, "`images` entry '***@ghcr.io/a/b': credentials do not go"),
    ({"images": ["https://bob:hunter2secret@ghcr.io/a/b"]}, "`images` entry 'https://***@ghcr.io/a/b': give"),
    # Found by the third review: a password holding `/` was printed; a one-part name blamed the host.
    ({"images": ["bob:abc/defhunter2@ghcr.io/acme/web"]}, "`images` entry '***@ghcr.io/acme/web': credentials"),
    ({"images": ["https://bob:abc/hunter2@ghcr.io/a/b"]}, "`images` entry 'https://***@ghcr.io/a/b': give"),
    ({"images": ["localhost:5000/alpine"]}, "`images` entry 'localhost:5000/alpine': give `localhost:5000/owner/name`"),
    ({"images": ["acme/web@sha256:" + "0" * 64]}, "`images` entry 'acme/web@sha256:" + "0" * 64 + "': give a"),
    # Found by the fourth review: a tag after `@` was called credentials; a dotted owner (Harbor) was refused.
    ({"images": ["o/n@latest"]}, "`images` entry 'o/n@latest': give a repository, without tag or digest"),
    ({"images": ["team.a/app"]}, None),
])
def test_setting_problems(config, problem):
    found = settings.setting_problems(config)
    assert "hunter2" not in str(found)
    if problem is None:
        assert found == []
    else:
        assert len(found) == 1 and found[0].startswith(problem), found


@pytest.mark.parametrize(("entry", "expected"), [
    ("acme/web", "acme/web"),
    ("ACME/WEB", "acme/web"),
    ("Acme/Tools/API", "acme/tools/api"),
    ("GHCR.IO/ACME/WEB", "GHCR.IO/acme/web"),  # the host is left as written
    ("localhost:5000/Acme/Web", "localhost:5000/acme/web"),
    ("Localhost/Acme/Web", "localhost/acme/web"),  # `Localhost` is no host by Docker's rule: an owner
    (" acme/Web ", "acme/web"),
    ("a/\u212aube", "a/\u212aube"),  # Kelvin sign: lower-cased it would become `a/kube`, and pass the name check
])
def test_images_are_lower_cased_but_not_their_host(entry, expected):
    assert settings.lower_case_image(entry) == expected


def test_the_tap_lower_cases_images_before_use():
    from tap_ghcr.tap import TapGHCR

    tap = TapGHCR(config={"images": ["ACME/WEB", "ghcr.io/Acme/Tools/Api"], "registry_url": "https://ghcr.io"},
                  validate_config=True, setup_mapper=False)
    assert sorted(tap.images) == ["acme/tools/api", "acme/web"]


@pytest.mark.parametrize(("variable", "value", "fragment"), [
    ("TAP_GHCR_MAX_WORKERS", "eight", "TAP_GHCR_MAX_WORKERS (setting `max_workers`) must be a whole number"),
    ("TAP_GHCR_STATE_INTERVAL", "1.5", "TAP_GHCR_STATE_INTERVAL (setting `state_interval`)"),
])
def test_environment_values_are_checked_per_variable(monkeypatch, variable, value, fragment):
    from tap_ghcr.tap import TapGHCR

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        settings.check_environment(TapGHCR.config_jsonschema, "TAP_GHCR_")


def test_environment_values_that_parse_pass(monkeypatch):
    from tap_ghcr.tap import TapGHCR

    monkeypatch.setenv("TAP_GHCR_MAX_WORKERS", "4")
    monkeypatch.setenv("TAP_GHCR_ORGANIZATIONS", json.dumps(["acme"]))
    settings.check_environment(TapGHCR.config_jsonschema, "TAP_GHCR_")


@pytest.mark.parametrize(("value", "token", "refused"), [
    ("ghp_abc123", "ghp_abc123", False),
    ("ghp_abc123\n", "ghp_abc123", False),
    ("\ufeffghp_abc123\r\n", "ghp_abc123", False),  # Notepad's byte-order mark
    ("\r\n ghp_abc123 \t\n", "ghp_abc123", False),
    ("", "", False),
    ("\n", "", False),
    ("ghp_a\nb", "ghp_a\nb", True),
    ("ghp_a b", "ghp_a b", True),
    ("ghp_a\x00b", "ghp_a\x00b", True),
    ("ghp_a\x7fb", "ghp_a\x7fb", True),
    ("ghp_a\u00e9b", "ghp_a\u00e9b", True),
    (5, 5, False),  # a wrong type: the schema check names it
    (None, None, False),
])
def test_clean_token(value, token, refused):
    from tap_ghcr.settings import clean_token

    cleaned, problem = clean_token(value)
    assert cleaned == token
    assert (problem is not None) == refused
    if problem:
        assert problem.startswith("`token` holds") and "ghp_" not in problem


@pytest.mark.parametrize(("config", "refused"), [
    ({"organisations": ["a"]}, "organisations"),
    ({"organization": ["a"]}, "organization"),
    ({"user": ["a"]}, "user"),
    ({"image": ["a/b"]}, "image"),
    ({"Organizations": ["a"]}, "Organizations"),
    ({"organisations": ["a"], "users": ["b"]}, None),  # a scope is given: only the warning
    ({"organisations": ["a"], "images": ["a/b"]}, None),
    ({"package_pattern": ["*"]}, None),  # not a scope setting: the warning only
    ({"zzzz": 1}, None),
    ({}, None),
    ({"retry_base_seconds": 0.1}, None),
    # Found by review: a runner's own keys, close to a scope's name but no misspelling of it, were refused.
    ({"usage": "nightly inventory"}, None),
    ({"organization_id": 5}, None),
    ({"users_file": "x"}, None),
    ({"image_tag": "x"}, None),
    ({"images_dir": "x"}, None),
    # Found by the third review: within two letters of a scope but another word, and other names for a scope.
    ({"pages": 1}, None),
    ({"uses": 1}, None),
    ({"orgs": ["a"]}, "orgs"),
    ({"org": "a"}, "org"),
    ({"owners": ["a"]}, "owners"),
    ({"repositories": ["a/b"]}, "repositories"),
    ({"x" * 200_000: 1}, None),  # not compared letter by letter (it took 4 s)
])
def test_an_unknown_setting_that_looks_like_the_missing_scope_is_refused(config, refused):
    found = settings.misspelled_scope(config, KNOWN)
    if refused is None:
        assert found is None
    else:
        key, problem = found
        assert key == refused
        assert problem and problem.startswith(f"unknown setting `{refused}`: did you mean `"), problem


IGNORED = "the catalog's stream `{}` is not one of this tap's, and is ignored; "


@pytest.mark.parametrize(("names", "warnings"), [
    (["packages", "tags"], []),
    (["packages", "tagz"], [IGNORED.format("tagz") + "did you mean `tags`?"]),
    (["packages", "zzzz", "zzzz"], [IGNORED.format("zzzz") + "known streams: manifests, packages, tags"]),
    (["packages", "Tags\nfake | ERROR | forged"], [IGNORED.format("Tags\\nfake | ERROR | forged") + "known streams: "
                                                   "manifests, packages, tags"]),  # no forged log line
])
def test_unknown_catalog_streams_are_named(names, warnings):
    assert settings.unknown_catalog_streams(names, ["packages", "tags", "manifests"]) == warnings


@pytest.mark.parametrize(("config", "problems"), [
    ({"max_workers": "8"}, ['`max_workers` must be an integer, not "8"']),
    ({"max_workers": 0}, ["`max_workers` must be at least 1, not 0"]),
    ({"max_document_mb": 0}, ["`max_document_mb` must be over 0, not 0"]),
    ({"visibility": "secret"}, ['`visibility` must be one of public, private, internal, not "secret"']),
    ({"api_url": "ftp://x"}, ['`api_url` must match ^https?://, not "ftp://x"']),
    ({"organizations": "acme"}, ['`organizations` must be an array, not "acme"']),
    ({"organizations": ["a", 5]}, ["`organizations` entry 1 must be a string, not 5"]),
    ({"include_deleted_versions": "yes"}, ['`include_deleted_versions` must be a boolean, not "yes"']),
    ({"max_workers": -1, "state_interval": "x"}, ["`max_workers` must be at least 1, not -1",
                                                   '`state_interval` must be an integer, not "x"']),
    ({"token": 5}, ["`token` must be a string"]),  # a secret's value is never shown
    ({"token": ["ghp_secret"]}, ["`token` must be a string"]),
    ({"organizations": ["a"], "max_workers": 8}, []),
])
def test_schema_problems_name_the_setting_what_it_must_be_and_what_it_is(config, problems):
    from tap_ghcr.tap import TapGHCR

    schema = TapGHCR.settings_schema()
    assert settings.schema_problems(config, schema) == problems



@pytest.mark.parametrize(("config", "normalized"), [
    ({"api_url": "HTTPS://ghe.example.com/api/v3"}, {"api_url": "https://ghe.example.com/api/v3"}),
    ({"registry_url": "Http://localhost:5000"}, {"registry_url": "http://localhost:5000"}),
    ({"api_url": "ftp://x"}, {"api_url": "ftp://x"}),  # left for the schema to refuse
    ({"max_workers": Decimal("8.0")}, {"max_workers": 8}),
    ({"max_workers": 8.0}, {"max_workers": 8}),
    ({"max_workers": Decimal("0.5")}, {"max_workers": Decimal("0.5")}),
    ({"max_workers": Decimal("NaN")}, {"max_workers": Decimal("NaN")}),
    ({"max_workers": Decimal("1e400")}, {"max_workers": Decimal("1e400")}),
    ({"max_workers": True}, {"max_workers": True}),
    ({"max_document_mb": Decimal("0.5")}, {"max_document_mb": Decimal("0.5")}),  # a number setting: as it is
])
def test_normalize_settings(config, normalized):
    from tap_ghcr.tap import TapGHCR

    schema = TapGHCR.settings_schema()
    settings.normalize_settings(config, schema)
    assert config == normalized or (config["max_workers"].is_nan() and normalized["max_workers"].is_nan())
    assert type(config[next(iter(config))]) is type(normalized[next(iter(normalized))])


def test_a_long_url_value_is_masked_before_it_is_cut():
    """Found by the third review: cut to 80 characters first, the `@` was gone and the password shown."""
    schema = {"properties": {"registry_url": {"type": "string", "pattern": "^https?://"}}}
    url = "ftp://bob:hunter2" + "x" * 100 + "@reg.example.com"
    (problem,) = settings.schema_problems({"registry_url": url}, schema)
    assert "hunter2" not in problem and problem.startswith('`registry_url` must match ^https?://, not "ftp://***@')



def test_the_catalog_check_knows_the_taps_streams():
    from tap_ghcr.tap import TapGHCR

    assert set(TapGHCR(config={}, validate_config=False, setup_mapper=False).streams) == settings.TAP_STREAMS


def test_an_environment_object_that_does_not_parse_is_not_echoed(monkeypatch):
    """Found by the fourth review: a stream map config's hash seed was printed."""
    from tap_ghcr.tap import TapGHCR

    schema = TapGHCR.settings_schema()
    monkeypatch.setenv("TAP_GHCR_STREAM_MAP_CONFIG", '{"hash_seed": "S3cr3tSeedValue" ')
    with pytest.raises(ConfigError) as raised:
        settings.check_environment(schema, "TAP_GHCR_")
    assert "TAP_GHCR_STREAM_MAP_CONFIG" in str(raised.value) and "S3cr3t" not in str(raised.value)
