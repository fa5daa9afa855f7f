"""The README's Meltano commands, run as written with the project's Meltano, and meltano.yml's capabilities."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess

import yaml

from tests.conftest import ROOT, tap_executable
from tests.emulator.meltano import MELTANO


def readme_meltano_config_commands() -> list[str]:
    """Every `meltano config ...` line in the README's shell blocks, comments stripped."""
    readme = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", readme, flags=re.DOTALL):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("meltano config"):
                commands.append(line)
    return commands


def test_the_readme_has_meltano_config_commands():
    commands = readme_meltano_config_commands()
    assert len(commands) >= 2, commands


def test_readme_meltano_config_commands_work_as_written(tmp_path):
    """On a copy of the project (they write to meltano.yml and .env), with scripts/setup's Meltano."""
    assert MELTANO.exists(), f"{MELTANO} is missing: run ./scripts/setup"
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "meltano.yml", project / "meltano.yml")
    shutil.copytree(ROOT / "plugins", project / "plugins")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_GHCR_", "MELTANO_"))}
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    for command in readme_meltano_config_commands():
        argv = shlex.split(command)
        run = subprocess.run([str(MELTANO), *argv[1:]], cwd=project, env=env, capture_output=True, text=True,
                             timeout=120, check=False)
        assert run.returncode == 0, (command, run.stderr[-2000:])
    printed = subprocess.run([str(MELTANO), "config", "print", "tap-ghcr"], cwd=project, env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert printed.returncode == 0, printed.stderr[-2000:]
    config = json.loads(printed.stdout)
    assert config["organizations"] == ["my-org"]
    assert config.get("token"), "the token was stored (as a secret, in .env)"
    assert "TAP_GHCR_TOKEN" in (project / ".env").read_text()


def test_meltano_yml_lists_every_capability_the_tap_reports():
    about = subprocess.run([tap_executable(), "--about", "--format", "json"], capture_output=True, text=True,
                           timeout=60, check=True)
    reported = set(json.loads(about.stdout)["capabilities"])
    assert "schema-flattening" in reported
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    extractor = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-ghcr")
    assert set(extractor["capabilities"]) == reported
    hub = yaml.safe_load((ROOT / "plugins" / "extractors" / "tap-ghcr--tap-ghcr.yml").read_text())
    assert set(hub["capabilities"]) == reported


def test_no_document_says_an_app_installation_token_works():
    """GitHub Packages refuses App installation tokens and fine-grained tokens (FACTS.md section D)."""
    from tap_ghcr.tap import SETTINGS

    texts = {
        "README.md": (ROOT / "README.md").read_text(),
        "meltano.yml": (ROOT / "meltano.yml").read_text(),
        "hub yml": (ROOT / "plugins" / "extractors" / "tap-ghcr--tap-ghcr.yml").read_text(),
        "token setting": SETTINGS.to_dict()["properties"]["token"]["description"],
    }
    for name, text in texts.items():
        flat = " ".join(text.split())
        for claim in ("or an App installation token", "or App installation token", "and so does a GitHub App",
                      "installation token with the organization permission"):
            assert claim not in flat, (name, claim)
    token = " ".join(texts["token setting"].split())
    assert "refuses fine-grained tokens and GitHub App installation tokens" in token


def test_meltano_yml_declares_every_setting_the_tap_reports():
    """Found by review: the README says meltano.yml declares every setting, and the SDK's stream-map and
    flattening settings were missing (`meltano config` then refuses them without `--force`)."""
    about = subprocess.run([tap_executable(), "--about", "--format", "json"], capture_output=True, text=True,
                           timeout=60, check=True)
    reported = set(json.loads(about.stdout)["settings"]["properties"])
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    extractor = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-ghcr")
    assert {s["name"] for s in extractor["settings"]} == reported
    hub = yaml.safe_load((ROOT / "plugins" / "extractors" / "tap-ghcr--tap-ghcr.yml").read_text())
    assert {s["name"] for s in hub["settings"]} == reported
