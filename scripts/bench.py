"""Benchmark: how close a sync comes to the network's floor, its CPU cost and its memory.

    .venv/bin/python scripts/bench.py [--latency-ms 20] [--scale 1] [--workers 1,4,8,16]

Builds the benchmark organisation once (cached in .bench-cache/), serves it from the
GitHub REST emulator and the real distribution registry behind proxies that add
`--latency-ms` to every request (GitHub, registry, token endpoint and blob host alike),
runs the installed `tap-ghcr` as a process for each `max_workers`, then a no-change
sync with the state of the default run, and prints one table, headed by the mean
delay the proxies actually added.

floor = REST requests x latency + registry requests x latency / max_workers
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pickle
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


def cached_world(scale: int) -> tuple[Dataset, Path]:
    """The dataset and a registry storage holding it, built and pushed once per scale."""
    cache = ROOT / ".bench-cache" / f"scale-{scale}"
    marker = cache / "dataset.pickle"
    if marker.exists():
        return pickle.loads(marker.read_bytes()), cache / "storage"
    dataset = bench_dataset(scale)
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
    for package in dataset.packages:  # blobs are in the registry now; keep the cache small
        package.blobs = {}
    marker.write_bytes(pickle.dumps(dataset))
    return dataset, storage


def run_tap(config: dict, state: dict | None, workdir: Path) -> dict:
    config_file = workdir / "config.json"
    config_file.write_text(json.dumps(config))
    cmd = [str(Path(sys.executable).with_name("tap-ghcr")), "--config", str(config_file)]
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
            time.sleep(0.05)
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
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss_mb": peak_kb / 1024,
            "records": records, "state": last_state}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--scale", type=int, default=1, help="dataset size: 1 is ~5,000 manifests")
    parser.add_argument("--workers", default="1,4,8,16", help="max_workers values to run")
    parser.add_argument("--default-workers", type=int, default=8, help="the run whose state feeds the no-change sync")
    args = parser.parse_args()
    latency = args.latency_ms / 1000
    dataset, storage = cached_world(args.scale)

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

    def counts() -> tuple[int, int, int]:
        """Requests as the servers (or the proxies in front of them) saw them, not as the tap reports them."""
        rest = len(github.log)
        registry_requests = registry_proxy.requests + len(tokens.log) + len(registry.blob_host.log)
        return rest, registry_requests, len([e for e in github.log if e["status"] == 304])

    rows = []
    default_state = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            plan = [(int(w), None) for w in args.workers.split(",")]
            plan.append((args.default_workers, "no-change"))
            for workers, kind in plan:
                state = default_state if kind else None
                before = counts()
                result = run_tap({**config, "max_workers": workers}, state, Path(tmp))
                after = counts()
                rest, reg, not_modified = (a - b for a, b in zip(after, before, strict=True))
                if workers == args.default_workers and kind is None:
                    default_state = result["state"]
                floor = rest * latency + reg * latency / workers
                n = sum(result["records"].values())
                rows.append({"run": f"{'no-change ' if kind else ''}max_workers={workers}", "wall": result["wall"],
                             "rest": rest, "not_modified": not_modified, "registry": reg, "records": result["records"],
                             "floor": floor, "ratio": result["wall"] / floor if floor else float("nan"),
                             "rps": n / result["wall"], "cpu_per_1k": result["cpu"] / max(n, 1) * 1000,
                             "cpu": result["cpu"], "rss": result["rss_mb"]})
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
    print(f"\ntap-ghcr benchmark: scale {args.scale} ({len(dataset.packages)} packages, {manifests} manifests), "
          f"latency {args.latency_ms:.0f} ms per request (measured: {injected:.2f} ms), {os.cpu_count()} CPUs")
    header = (f"{'run':<24} {'wall s':>7} {'REST':>5} {'304':>5} {'registry':>8} {'floor s':>8} {'wall/floor':>10} "
              f"{'rec/s':>7} {'CPU s/1k rec':>12} {'peak RSS MB':>11}  records")
    print(header)
    print("-" * len(header))
    for r in rows:
        recs = " ".join(f"{k}={v}" for k, v in sorted(r["records"].items())) or "none"
        ratio = f"{r['ratio']:.2f}" if r["floor"] >= 0.05 else "n/a"
        print(f"{r['run']:<24} {r['wall']:>7.1f} {r['rest']:>5} {r['not_modified']:>5} {r['registry']:>8} "
              f"{r['floor']:>8.1f} {ratio:>10} {r['rps']:>7.0f} {r['cpu_per_1k']:>12.3f} {r['rss']:>11.0f}  {recs}")
    by_workers = {r["run"]: r for r in rows}
    one, default = by_workers.get("max_workers=1"), by_workers.get(f"max_workers={args.default_workers}")
    if one and default:
        speed_up = one["wall"] / default["wall"]
        print(f"\nspeed-up of max_workers={args.default_workers} over max_workers=1: {speed_up:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
