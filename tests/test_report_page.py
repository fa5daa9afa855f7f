"""The demo's HTML page (`scripts/report_page.py`): the chart's bars and the escaping of registry text."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from scripts.report_page import coverage_chart, coverage_figure, page, table

COLUMNS = ["package", "images", "signed_and_provenance", "signed_only", "provenance_only", "neither"]
ROWS = [("acme/api", 5, 3, 1, 0, 1), ("acme/<web>&co", 2, 0, 0, 2, 0)]


def test_the_chart_stacks_each_package_s_images_by_coverage() -> None:
    axes = coverage_figure(COLUMNS, ROWS).axes[0]
    bars = {}
    for container in axes.containers:  # one per series, a bar per package (the first package on top)
        label = container.get_label()
        for package, bar in zip(["acme/<web>&co", "acme/api"], container.patches, strict=True):
            bars[(label, package)] = (bar.get_x(), bar.get_width())
    assert bars == {
        ("signed and provenance", "acme/api"): (0, 3), ("signed only", "acme/api"): (3, 1),
        ("provenance only", "acme/api"): (4, 0), ("neither", "acme/api"): (4, 1),
        ("signed and provenance", "acme/<web>&co"): (0, 0), ("signed only", "acme/<web>&co"): (0, 0),
        ("provenance only", "acme/<web>&co"): (0, 2), ("neither", "acme/<web>&co"): (2, 0),
    }
    assert [tick.get_text() for tick in axes.get_yticklabels()] == ["acme/<web>&co", "acme/api"]


def test_the_svg_is_inline_escaped_and_stable() -> None:
    svg = coverage_chart(COLUMNS, ROWS)
    assert svg.startswith("<svg") and "acme/&lt;web&gt;&amp;co" in svg and "acme/api" in svg
    ET.fromstring(svg)  # well-formed
    for label in ("signed and provenance", "signed only", "provenance only", "neither"):
        assert label in svg
    assert coverage_chart(COLUMNS, ROWS) == svg, "the same data gives the same page"


def test_registry_text_is_escaped_in_the_page() -> None:
    html = page({"packages": 2}, "<svg/>", [("Title <b>", "coverage_by_package", COLUMNS, ROWS)])
    assert "<b>" not in html and "Title &lt;b&gt;" in html and "acme/&lt;web&gt;&amp;co" in html
    assert html.count("<tr>") == 3 and "<svg/>" in html
    assert table(["a"], []).endswith("<tr><td>(none)</td></tr></tbody></table>")


def test_a_dollar_in_a_name_is_text_not_math() -> None:
    rows = [("acme/p$\\foo$", 1, 1, 0, 0, 0), ("acme/x$y$z", 1, 0, 0, 0, 1)]
    axes = coverage_figure(COLUMNS, rows).axes[0]
    assert [tick.get_text() for tick in axes.get_yticklabels()] == ["acme/x$y$z", "acme/p$\\foo$"]
    assert "acme/x$y$z" in coverage_chart(COLUMNS, rows)
