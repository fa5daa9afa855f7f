"""The demo's HTML page: the report's tables and one chart, written beside the DuckDB file.

The chart answers the compliance question a table answers worst: across packages, how many
images are signed and carry provenance, one of the two, or neither
(`sql/coverage_by_package.sql`). matplotlib draws it as SVG, inline in the page, so the page
opens offline with nothing to fetch.
"""

from __future__ import annotations

import html
import io
import typing as t

from matplotlib.figure import Figure

#: The chart's series: a column of `coverage_by_package.sql`, its legend, its colour.
SERIES = (
    ("signed_and_provenance", "signed and provenance", "#2e7d32"),
    ("signed_only", "signed only", "#9ccc65"),
    ("provenance_only", "provenance only", "#ffb300"),
    ("neither", "neither", "#c62828"),
)


def coverage_figure(columns: t.Sequence[str], rows: t.Sequence[tuple]) -> Figure:
    """A horizontal stacked bar per package: its images by signature and provenance."""
    index = {name: i for i, name in enumerate(columns)}
    packages = [str(row[index["package"]]) for row in rows][::-1]  # first package on top
    figure = Figure(figsize=(8, 1.6 + 0.4 * max(len(rows), 1)), layout="constrained")
    axes = figure.add_subplot()
    left = [0] * len(rows)
    for column, label, colour in SERIES:
        values = [int(row[index[column]]) for row in rows][::-1]
        axes.barh(packages, values, left=left, label=label, color=colour)
        left = [a + b for a, b in zip(left, values, strict=True)]
    axes.set_xlabel("images (an index or a single image)")
    figure.suptitle("Images by signature and provenance (signatures as stored, not verified)")
    axes.xaxis.get_major_locator().set_params(integer=True)
    figure.legend(loc="outside lower center", ncols=len(SERIES), fontsize="small")
    return figure


def coverage_chart(columns: t.Sequence[str], rows: t.Sequence[tuple]) -> str:
    """`coverage_figure` as an SVG element, the same bytes for the same data."""
    import matplotlib

    with matplotlib.rc_context({"svg.fonttype": "none",  # text stays text: smaller, searchable, selectable
                                "svg.hashsalt": "tap-ghcr",
                                "text.parse_math": False}):  # a `$` in a package name is a `$`, not math
        out = io.StringIO()
        coverage_figure(columns, rows).savefig(out, format="svg", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg"):]  # the element alone, without the XML prolog and DOCTYPE


def table(columns: t.Sequence[str], rows: t.Sequence[tuple]) -> str:
    """An HTML table; every value escaped (package names, tags and labels come from the registry)."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{'' if v is None else html.escape(str(v))}</td>" for v in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or '<tr><td>(none)</td></tr>'}</tbody></table>"


def page(counts: dict[str, int], chart: str, sections: t.Sequence[tuple[str, str, t.Sequence[str], t.Sequence[tuple]]]
         ) -> str:
    """The whole page: loaded row counts, the chart, then each report query (title, file, columns, rows)."""
    loaded = ", ".join(f"{html.escape(name)} {n}" for name, n in counts.items())
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>tap-ghcr demo report</title><style>",
        "body{font-family:sans-serif;margin:2em;max-width:80em}table{border-collapse:collapse;margin-bottom:2em}",
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;font-size:90%}th{background:#eee}",
        "</style></head><body><h1>tap-ghcr demo report</h1>",
        f"<p>Loaded rows: {loaded}</p>",
        chart,
    ]
    for title, source, columns, rows in sections:
        parts.append(f"<h2>{html.escape(title)} <small>(sql/{html.escape(source)}.sql)</small></h2>")
        parts.append(table(columns, rows))
    parts.append("</body></html>\n")
    return "\n".join(parts)
