"""Benchmark: how close a sync comes to the network's floor, its CPU cost and its memory.

    .venv/bin/python scripts/bench.py [--latency-ms 20] [--scale 1] [--workers 1,4,8,16] [--documents [200]]

Builds the benchmark organisation once (cached in .bench-cache/), serves it from the
GitHub REST emulator and the real distribution registry behind proxies that add
`--latency-ms` to every request (GitHub, registry, token endpoint and blob host alike),
runs the installed `tap-ghcr` as a process for each `max_workers`, then a no-change
sync with the state of the default run, and prints one table, headed by the mean
delay the proxies actually added.

floor = REST requests x latency + registry requests x latency / max_workers

`--documents N` uses a dataset variant (cached apart) where each platform image's buildx attestation
holds a SLSA provenance statement and an SPDX SBOM of N packages; its table adds the documents
fetched (blob GETs of document digests at the blob host) and SBOM packages per second, and a last
line gives the tap's peak RSS for a sync of one image with a generated 40 MiB SPDX SBOM.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import io
import json
import os
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulator.dataset import Dataset, bench_dataset  # noqa: E402
from tests.emulator.github import GitHubState, start_github  # noqa: E402
from tests.emulator.latency import LatencyProxy  # noqa: E402
from tests.emulator.registry import BLOB_HOST, Pusher, Registry, push_all  # noqa: E402
from tests.emulator.token_server import TokenAuthority, start_token_server  # noqa: E402

PUSH_TOKEN = "bench-push-secret"


def cached_world(scale: int, documents: int = 0) -> tuple[Dataset, Path, dict]:
    """The dataset, a registry storage holding it and a summary of its documents, built and pushed once.

    The summary: the digests of the supply-chain documents (attestation layers) and the SBOM package count.
    """
    cache = ROOT / ".bench-cache" / (f"scale-{scale}" + (f"-documents-{documents}" if documents else ""))
    marker, summary_file = cache / "dataset.pickle", cache / "documents.json"
    if marker.exists():
        summary = json.loads(summary_file.read_text()) if summary_file.exists() else {"digests": [], "sbom_packages": 0}
        return pickle.loads(marker.read_bytes()), cache / "storage", summary
    dataset = bench_dataset(scale, documents=documents)
    storage = cache / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    authority = TokenAuthority(tokens=set(dataset.tokens), push_token=PUSH_TOKEN, private=dataset.private)
    tokens = start_token_server(authority)
    registry = Registry(authority, tokens.url, storage=storage)
    started = time.monotonic()
    print(f"building the scale-{scale} dataset: pushing {sum(len(p.manifests) for p in dataset.packages)} "
          "manifests to the registry (once; cached in .bench-cache/)...", file=sys.stderr)
    try:
        def push(package):  # one Pusher (session) per thread
            push_all(Pusher(registry.url, tokens.url, PUSH_TOKEN), package.registry_repository, package.blobs,
                     [(m.digest, m.media_type, m.body) for m in package.manifests.values()], package.tags)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(push, dataset.packages))
    finally:
        registry.stop()
        tokens.stop()
    print(f"pushed in {time.monotonic() - started:.0f} s", file=sys.stderr)
    summary = {"digests": sorted({r["digest"] for p in dataset.packages for r in p.attestations.values()}),
               "sbom_packages": sum(len(p.sbom_packages) for p in dataset.packages)}
    for package in dataset.packages:  # blobs are in the registry now; keep the cache small
        package.blobs = {}
        package.sbom_packages = {}
    summary_file.write_text(json.dumps(summary))
    marker.write_bytes(pickle.dumps(dataset))
    return dataset, storage, summary


def tap_command(config: dict, workdir: Path) -> list[str]:
    config_file = workdir / "config.json"
    config_file.write_text(json.dumps(config))
    return [str(Path(sys.executable).with_name("tap-ghcr")), "--config", str(config_file)]


def compile_tap() -> str:
    """Compile the `tap_ghcr` the tap will import (this checkout, or one `PYTHONPATH` names) to bytecode.

    A user's `pip install` writes bytecode; an editable install under PYTHONDONTWRITEBYTECODE never does,
    and the tap would then compile its own source on every run (0.4 s of CPU here), which no user pays.
    """
    python = str(Path(sys.executable))
    where = subprocess.run([python, "-P", "-c", "import os, tap_ghcr; print(os.path.dirname(tap_ghcr.__file__))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([python, "-m", "compileall", "-q", where], check=True)
    return where


def catalog_without(config: dict, workdir: Path, streams: set[str]) -> Path:
    """The tap's discovered catalog with `streams` deselected."""
    found = subprocess.run([*tap_command(config, workdir), "--discover"], capture_output=True, check=True,
                           env={**os.environ, "GITHUB_TOKEN": ""})
    catalog = json.loads(found.stdout)
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == [] and entry["tap_stream_id"] in streams:
                meta["metadata"]["selected"] = False
    path = workdir / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


def run_tap(config: dict, state: dict | None, workdir: Path, poll: float = 0.05, catalog: Path | None = None) -> dict:
    cmd = tap_command(config, workdir)
    if catalog is not None:
        cmd += ["--catalog", str(catalog)]
    if state is not None:
        (workdir / "state.json").write_text(json.dumps(state))
        cmd += ["--state", str(workdir / "state.json")]
    out_path, err_path = workdir / "out.jsonl", workdir / "err.log"
    started = time.monotonic()
    peak_kb = 0
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env={**os.environ, "GITHUB_TOKEN": ""})
        # Peak RSS from the tap's own VmHWM: ru_maxrss of a child also counts this (large) process's
        # pages from before the child's exec.
        status_file = Path(f"/proc/{proc.pid}/status")
        while os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:  # exited, not reaped
            try:
                for line in status_file.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            time.sleep(poll)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    if status != 0:
        raise SystemExit(f"tap failed:\n{err_path.read_text()[-3000:]}")
    records: dict[str, int] = {}
    last_state = None
    with out_path.open() as lines:
        for line in lines:
            message = json.loads(line)
            if message["type"] == "RECORD":
                records[message["stream"]] = records.get(message["stream"], 0) + 1
            elif message["type"] == "STATE":
                last_state = message["value"]
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "sys": usage.ru_stime, "rss_mb": peak_kb / 1024,
            "records": records, "state": last_state}


def big_sbom_rss(mib: int) -> str:
    """The tap's peak RSS syncing one image whose buildx SBOM is a generated `mib` MiB SPDX statement.

    As tests/test_supply_chain_streams.py's RSS test: no latency, the real registry, every stream selected.
    """
    from tests.attestations_support import write_spdx_statement
    from tests.emulator.world import start_world

    dataset = Dataset(seed=40)
    dataset.tokens["ghp_bigsbom0000000000000000000000000000001"] = "bench-bot"
    big = dataset.package("bench-org", "big")
    index = big.multiarch(platforms=[("linux", "amd64", None)], attestations=False, tags=["1"])
    image = big.package.manifests[index].expected["child_digests"][0]
    buffer = io.BytesIO()
    count = write_spdx_statement(buffer, mib * 1024 * 1024, subject_hex=image[7:])
    sbom = buffer.getvalue()
    del buffer
    big.supply_chain().raw_sbom(index, sbom)
    world = start_world(dataset)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            result = run_tap(world.config(max_workers=8), None, Path(tmp), poll=0.02)
    finally:
        world.stop()
    got = result["records"].get("sbom_packages", 0)
    if got != count:
        raise SystemExit(f"the {mib} MiB SBOM gave {got} sbom_packages records, not {count}")
    return (f"peak RSS syncing one image with a {len(sbom) / 2**20:.1f} MiB SPDX SBOM ({count} packages): "
            f"{result['rss_mb']:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--scale", type=int, default=1, help="dataset size: 1 is ~5,000 manifests")
    parser.add_argument("--workers", default="1,4,8,16", help="max_workers values to run")
    parser.add_argument("--default-workers", type=int, default=8, help="the run whose state feeds the no-change sync")
    parser.add_argument("--documents", type=int, nargs="?", const=200, default=0, metavar="N",
                        help="the variant with a provenance statement and an SPDX SBOM of N (200) packages per image")
    parser.add_argument("--big-sbom-mib", type=int, default=40,
                        help="with --documents: size of the one-image SBOM whose peak RSS is printed (0: skip)")
    parser.add_argument("--skip-streams", default="", metavar="A,B",
                        help="streams deselected in the catalog (e.g. attestations,sbom_packages); default: all")
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    dataset, storage, summary = cached_world(args.scale, args.documents)
    print(f"tap_ghcr from {compile_tap()} (compiled to bytecode)", file=sys.stderr)
    document_paths = {f"/{d[7:9]}/{d[7:]}/" for d in summary["digests"]}  # the blob host's storage layout

    authority = TokenAuthority(tokens=set(dataset.tokens), push_token=PUSH_TOKEN, private=dataset.private,
                               expires_in=3600)
    tokens = start_token_server(authority)
    token_proxy = LatencyProxy("127.0.0.1", tokens.server_address[1], latency)
    proxies: list[LatencyProxy] = [token_proxy]

    def slow_blob_host(url: str) -> str:
        host, port = url.split("//")[1].split(":")
        proxy = LatencyProxy(host, int(port), latency, host=BLOB_HOST)
        proxies.append(proxy)
        return proxy.url

    registry = Registry(authority, token_proxy.url, storage=storage, blob_base_url=slow_blob_host)
    github_state = GitHubState(dataset, rate_limit=1_000_000)
    github = start_github(github_state)
    github_proxy = LatencyProxy("127.0.0.1", github.server_address[1], latency)
    registry_proxy = LatencyProxy("127.0.0.1", registry.port, latency)
    proxies += [github_proxy, registry_proxy]
    config = {"token": next(iter(dataset.tokens)), "username": "bench-bot", "api_url": github_proxy.url,
              "registry_url": registry_proxy.url, "organizations": ["bench-org"], "max_rate_limit_wait": 60}

    def is_document(path: str) -> bool:  # /docker/registry/v2/blobs/sha256/ab/abcd.../data
        parts = path.split("?")[0].rsplit("/", 3)
        return len(parts) == 4 and f"/{parts[1]}/{parts[2]}/" in document_paths

    def servers_cpu() -> float:
        """CPU seconds of the servers: this process (GitHub emulator, proxies, blob host) and the registry."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        ticks = Path(f"/proc/{registry.process.pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13]
        return usage.ru_utime + usage.ru_stime + sum(int(x) for x in ticks) / os.sysconf("SC_CLK_TCK")

    def counts() -> tuple[int, int, int, int]:
        """Requests as the servers (or the proxies in front of them) saw them, not as the tap reports them."""
        rest = len(github.log)
        registry_requests = registry_proxy.requests + len(tokens.log) + len(registry.blob_host.log)
        documents = sum(1 for e in registry.blob_host.log if e["method"] == "GET" and is_document(e["path"]))
        return rest, registry_requests, len([e for e in github.log if e["status"] == 304]), documents

    rows = []
    default_state = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            skip = {s for s in args.skip_streams.split(",") if s}
            catalog = catalog_without(config, Path(tmp), skip) if skip else None
            plan = [(int(w), None) for w in args.workers.split(",")]
            plan.append((args.default_workers, "no-change"))
            for workers, kind in plan:
                state = default_state if kind else None
                before, servers_before = counts(), servers_cpu()
                result = run_tap({**config, "max_workers": workers}, state, Path(tmp), catalog=catalog)
                after, servers = counts(), servers_cpu() - servers_before
                rest, reg, not_modified, documents = (a - b for a, b in zip(after, before, strict=True))
                if workers == args.default_workers and kind is None:
                    default_state = result["state"]
                floor = rest * latency + reg * latency / workers
                n = sum(result["records"].values())
                rows.append({"run": f"{'no-change ' if kind else ''}max_workers={workers}", "wall": result["wall"],
                             "rest": rest, "not_modified": not_modified, "registry": reg, "records": result["records"],
                             "floor": floor, "ratio": result["wall"] / floor if floor else float("nan"),
                             "rps": n / result["wall"], "cpu_per_1k": result["cpu"] / max(n, 1) * 1000,
                             "cpu": result["cpu"], "sys": result["sys"], "rss": result["rss_mb"],
                             "documents": documents,
                             "sbom_rate": result["records"].get("sbom_packages", 0) / result["wall"],
                             "servers_cpu": servers})
                print(f"  done: {rows[-1]['run']} in {result['wall']:.1f} s", file=sys.stderr)
    finally:
        for proxy in proxies:
            proxy.stop()
        registry.stop()
        tokens.stop()
        github.stop()

    manifests = sum(len(p.manifests) for p in dataset.packages)
    delays = sum(p.delays for p in proxies)
    injected = sum(p.delay_total for p in proxies) / delays * 1000 if delays else 0.0
    variant = (f", {len(summary['digests'])} documents, {summary['sbom_packages']} SBOM packages"
               if args.documents else "")
    print(f"\ntap-ghcr benchmark: scale {args.scale} ({len(dataset.packages)} packages, {manifests} manifests"
          f"{variant}), latency {args.latency_ms:.0f} ms per request (measured: {injected:.2f} ms), "
          f"{os.cpu_count()} CPUs")
    extra = f" {'docs':>5} {'SBOM pkg/s':>10}" if args.documents else ""
    header = (f"{'run':<24} {'wall s':>7} {'REST':>5} {'304':>5} {'registry':>8} {'floor s':>8} {'wall/floor':>10} "
              f"{'rec/s':>7} {'CPU s/1k rec':>12} {'peak RSS MB':>11}{extra}  records")
    print(header)
    print("-" * len(header))
    for r in rows:
        recs = " ".join(f"{k}={v}" for k, v in sorted(r["records"].items())) or "none"
        ratio = f"{r['ratio']:.2f}" if r["floor"] >= 0.05 else "n/a"
        extra = f" {r['documents']:>5} {r['sbom_rate']:>10.0f}" if args.documents else ""
        print(f"{r['run']:<24} {r['wall']:>7.1f} {r['rest']:>5} {r['not_modified']:>5} {r['registry']:>8} "
              f"{r['floor']:>8.1f} {ratio:>10} {r['rps']:>7.0f} {r['cpu_per_1k']:>12.3f} {r['rss']:>11.0f}{extra}  "
              f"{recs}")
    print("\nCPU seconds on this machine's cores during each run (the servers stand in for GitHub and ghcr.io; they "
          "answer the same registry requests whatever the tap's version, so tap/servers compares two versions on a "
          "machine whose speed drifts):")
    for r in rows:
        per_server = f"{r['cpu'] / r['servers_cpu']:.3f}" if r["servers_cpu"] else "-"
        print(f"  {r['run']:<24} tap {r['cpu']:6.1f} (system {r['sys']:4.1f})  servers {r['servers_cpu']:6.1f}  "
              f"wall {r['wall']:6.1f}  tap/servers {per_server}")
    roles = {"GitHub": [github_proxy], "registry": [registry_proxy], "token server": [token_proxy],
             "blob host": [p for p in proxies if p not in (github_proxy, registry_proxy, token_proxy)]}
    print("\nthe servers' own time per request, all runs (at the proxies, after the added latency: in each "
          "request's time, not in the floor):")
    for role, group in roles.items():
        times = sorted(t for p in group for t in p.server_times)
        if times:
            print(f"  {role:<13} {len(times):>6} requests  mean {statistics.mean(times) * 1000:5.1f} ms  "
                  f"median {times[len(times) // 2] * 1000:5.1f} ms")
    by_workers = {r["run"]: r for r in rows}
    one, default = by_workers.get("max_workers=1"), by_workers.get(f"max_workers={args.default_workers}")
    if one and default:
        speed_up = one["wall"] / default["wall"]
        print(f"\nspeed-up of max_workers={args.default_workers} over max_workers=1: {speed_up:.1f}x")
    if args.documents and args.big_sbom_mib:
        print(big_sbom_rss(args.big_sbom_mib))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
