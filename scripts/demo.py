"""The demo: a local GHCR stand-in with a sample organisation, loaded by Meltano into DuckDB, then a report.

Everything runs on 127.0.0.1: the GitHub REST emulator, a ghcr.io-like token server and
the real CNCF distribution registry. `meltano run tap-ghcr target-duckdb` loads
output/warehouse.duckdb (schema `ghcr`); the report is the SQL in sql/, which runs
as is on your own warehouse.
"""

from __future__ import annotations

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


def main() -> int:
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
