"""Everything started together from one dataset: REST emulator, token server, registry.

Used by the tests, the demo (`scripts/demo.py`) and the benchmark.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from tests.emulator.dataset import Dataset, Package
from tests.emulator.github import GitHubState, start_github
from tests.emulator.registry import Pusher, Registry, push_all
from tests.emulator.servers import LoggedServer
from tests.emulator.token_server import TokenAuthority, start_token_server

PUSH_TOKEN = "push-only-secret-0000"


@dataclass
class World:
    dataset: Dataset
    github: LoggedServer
    github_state: GitHubState
    token_server: LoggedServer | None = None
    authority: TokenAuthority | None = None
    registry: Registry | None = None
    pusher: Pusher | None = None

    @property
    def token(self) -> str:
        return next(iter(self.dataset.tokens))

    def config(self, **overrides: t.Any) -> dict:
        """A tap config pointing at this world (all owners of the dataset)."""
        orgs = sorted({p.owner.login for p in self.dataset.packages if p.owner.type == "Organization"})
        users = sorted({p.owner.login for p in self.dataset.packages if p.owner.type == "User"})
        config: dict[str, t.Any] = {"token": self.token, "api_url": self.github.url, "organizations": orgs,
                                    "users": users, "max_workers": 4, "max_rate_limit_wait": 30}
        if self.registry:
            config["registry_url"] = self.registry.url
        config.update(overrides)
        return config

    def push(self, package: Package) -> None:
        """Push (or re-push) a package's live content; deleted versions' manifests are removed."""
        assert self.pusher is not None
        deleted = {v.digest for v in package.versions if v.state == "deleted"}
        live_children = {c for p in package.manifests.values() if p.digest not in deleted
                         for c in (p.expected.get("child_digests") or [])}
        manifests = [(p.digest, p.media_type, p.body) for p in package.manifests.values()
                     if p.digest not in deleted or p.digest in live_children]
        tags = {tag: d for tag, d in package.tags.items() if d not in deleted}
        push_all(self.pusher, package.registry_repository, package.blobs, manifests, tags)
        for digest in deleted - live_children:
            self.pusher.delete_manifest(package.registry_repository, digest)

    def stop(self) -> None:
        for server in (self.github, self.token_server):
            if server is not None:
                server.stop()
        if self.registry:
            self.registry.stop()


def start_world(dataset: Dataset, *, registry: bool = True, token_expires_in: int = 300,
                shuffle_versions: bool = True, blob_base_url: t.Callable[[str], str] | None = None) -> World:
    """`blob_base_url` may wrap the registry's blob host URL (e.g. with a fault proxy in front of it)."""
    state = GitHubState(dataset, shuffle_versions=shuffle_versions)
    world = World(dataset, start_github(state), state)
    if not registry:
        return world
    try:
        world.authority = TokenAuthority(tokens=set(dataset.tokens), push_token=PUSH_TOKEN,
                                         private=dataset.private, expires_in=token_expires_in)
        world.token_server = start_token_server(world.authority)
        world.registry = Registry(world.authority, world.token_server.url, blob_base_url=blob_base_url)
        world.pusher = Pusher(world.registry.url, world.token_server.url, PUSH_TOKEN)
        for package in dataset.packages:
            world.push(package)
    except BaseException:
        world.stop()
        raise
    return world
