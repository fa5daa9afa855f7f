"""The test registry under two test processes (`scripts/test` runs pytest in two workers)."""

from __future__ import annotations

import socket

import pytest
import requests

from tests.emulator import registry as registry_module
from tests.emulator.registry import Registry
from tests.emulator.token_server import TokenAuthority, start_token_server


def test_a_port_taken_between_its_pick_and_the_bind_is_not_this_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """`free_port` closes its socket; another process may listen there before the registry binds. The
    registry then exits, and another port is tried; a registry already answering on that port (the other
    process's, whose 401 names another token realm) is never taken for this one."""
    authority = TokenAuthority(tokens=set(), push_token="push", private=lambda repository: False)
    tokens = start_token_server(authority)
    other = start_token_server(authority)
    squatter = Registry(authority, other.url)  # another test process's registry
    picks = iter([squatter.port])
    real_pick = registry_module.free_port
    monkeypatch.setattr(registry_module, "free_port", lambda host="127.0.0.1": next(picks, None) or real_pick(host))
    mine = None
    try:
        mine = Registry(authority, tokens.url)
        assert mine.port != squatter.port and mine.process.poll() is None
        challenge = requests.get(f"{mine.url}/v2/", timeout=5).headers["WWW-Authenticate"]
        assert f'"{tokens.url}/token"' in challenge
    finally:
        if mine is not None:
            mine.stop()
        squatter.stop()
        tokens.stop()
        other.stop()


def test_a_port_held_by_a_plain_listener_is_skipped_too(monkeypatch: pytest.MonkeyPatch) -> None:
    authority = TokenAuthority(tokens=set(), push_token="push", private=lambda repository: False)
    tokens = start_token_server(authority)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        picks = iter([taken.getsockname()[1]])
        real_pick = registry_module.free_port
        monkeypatch.setattr(registry_module, "free_port", lambda host="127.0.0.1": next(picks, None) or real_pick(host))
        mine = Registry(authority, tokens.url)
        try:
            assert mine.port != taken.getsockname()[1] and mine.process.poll() is None
        finally:
            mine.stop()
            tokens.stop()
