"""The demo: a local GHCR stand-in with a sample organisation, loaded by Meltano into DuckDB, then a report.

Everything runs on 127.0.0.1: the GitHub REST emulator, a ghcr.io-like token server and
the real CNCF distribution registry. `meltano run tap-ghcr target-duckdb` loads
output/warehouse.duckdb (schema `ghcr`); the report is the SQL in sql/, which runs
as is on your own warehouse.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.report_page import coverage_chart, page  # noqa: E402
from tests.emulator.dataset import demo_dataset  # noqa: E402
from tests.emulator.meltano import meltano_run  # noqa: E402
from tests.emulator.world import start_world  # noqa: E402

WAREHOUSE = ROOT / "output" / "warehouse.duckdb"
PAGE = ROOT / "output" / "report.html"
REPORT = ["images_per_package", "platforms", "largest_images", "unattested_images", "stale_tags",
          "images_by_signer", "images_by_source", "top_sbom_packages", "images_with_package"]
CHART = "coverage_by_package"


def table(columns: list[str], rows: list[tuple]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(out) if rows else line + "\n(none)"


def serve(config_path: Path) -> int:
    """Start the stand-ins alone and keep them up, for running `tap-ghcr` by hand, until Ctrl-C (or SIGTERM)."""
    import json
    import signal

    stop = {"now": False}

    def ask_stop(signum: int, frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, ask_stop)  # before the start: a signal during it stops them once started
    signal.signal(signal.SIGTERM, ask_stop)
    config_path.parent.mkdir(parents=True, exist_ok=True)
    world = start_world(demo_dataset())  # (the registry dies with this process, even by SIGKILL)
    settings = json.dumps(world.config(), indent=2) + "\n"  # the emulator's own token only
    try:
        written = config_path.with_name(f"{config_path.name}.{os.getpid()}.part")  # whole or absent to a reader
        written.write_text(settings)
        written.replace(config_path)
        shown = config_path.relative_to(ROOT) if config_path.is_relative_to(ROOT) else config_path
        print(f"GitHub API emulator {world.github.url}, registry {world.registry.url} (real distribution registry)\n"
              f"settings for them: {shown}\n"
              f"  .venv/bin/tap-ghcr --config {shown} --discover > catalog.json\n"
              f"  .venv/bin/tap-ghcr --config {shown} > out.jsonl\n"
              "Ctrl-C stops them.", flush=True)
        while not stop["now"]:
            time.sleep(0.2)
    finally:
        world.stop()
        with contextlib.suppress(OSError):
            if config_path.read_text() == settings:  # its URLs are dead now; another instance's file stays
                config_path.unlink()
    print("stopped", flush=True)
    return 0


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", action="store_true",
                        help="only start the stand-ins and write settings for them, to run tap-ghcr by hand")
    parser.add_argument("--settings-file", type=Path, default=ROOT / "output" / "emulator-config.json",
                        help="with --serve: where to write the settings (default: output/emulator-config.json)")
    args = parser.parse_args()
    if args.serve:
        return serve(args.settings_file.resolve())
    WAREHOUSE.parent.mkdir(exist_ok=True)
    WAREHOUSE.unlink(missing_ok=True)
    PAGE.unlink(missing_ok=True)  # a failed run leaves no page of an earlier one
    world = start_world(demo_dataset())
    try:
        print(f"GitHub API emulator {world.github.url}, registry {world.registry.url} (real distribution registry)")
        print("$ meltano run tap-ghcr target-duckdb   ... ", end="", flush=True)
        started = time.monotonic()
        run = meltano_run(world, "target-duckdb", TARGET_DUCKDB_FILEPATH=str(WAREHOUSE))
        if run.returncode != 0:
            print("failed\n" + run.stderr[-4000:], file=sys.stderr)
            return 1
        print(f"done in {time.monotonic() - started:.1f} s -> {WAREHOUSE.relative_to(ROOT)}")
    finally:
        world.stop()
    with duckdb.connect(str(WAREHOUSE), read_only=True) as db:
        counts = {t: db.sql(f"SELECT count(*) FROM ghcr.{t}").fetchone()[0]
                  for t in ("packages", "package_versions", "tags", "manifests", "attestations", "sbom_packages")}
        print("loaded rows: " + ", ".join(f"{t} {n}" for t, n in counts.items()))
        sections = []
        for name in [CHART, *REPORT]:
            sql = (ROOT / "sql" / f"{name}.sql").read_text()
            title = sql.splitlines()[0].lstrip("- ").strip()  # the first comment line
            result = db.sql(sql)
            rows = result.fetchall()
            sections.append((title, name, result.columns, rows))
            print(f"\n== {title}  (sql/{name}.sql)\n{table(result.columns, rows)}")
    _, _, columns, rows = sections[0]
    PAGE.write_text(page(counts, coverage_chart(columns, rows), sections), encoding="utf-8")
    print(f"\nthe same report with a chart of the first table: {PAGE.relative_to(ROOT)} (open it in a browser)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
