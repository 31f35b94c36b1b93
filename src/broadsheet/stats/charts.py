"""Charts drawn on the server as SVG (pygal), from a table's rows: no script in them.

The SVG is served as a file of its own and shown with ``<img>``, so the
page keeps its strict CSP; the chart carries its title, and the page puts
the same table beside it for whoever cannot see it.
"""

from __future__ import annotations

import sys

import pygal
from lxml import etree
from pygal.style import Style

from broadsheet.stats.tables import Table

# Importing pygal adds an import hook of its own (for its optional map plugins, unused here)
# that lacks find_spec, so every later import in the process warns: take it out again.
sys.meta_path[:] = [hook for hook in sys.meta_path if type(hook).__name__ != "PluginImportFixer"]

STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#222",
    foreground_strong="#111",
    foreground_subtle="#666",
    colors=("#1f5fa8", "#c2571a", "#2e7d32", "#7b1fa2"),
    font_family="system-ui, sans-serif",
)
LABELS = 8  # day labels shown along the axis, whatever the period


def draw(table: Table) -> bytes:
    """The table as an SVG chart: the first column along the x axis, one series per other."""
    kind = pygal.Bar if table.chart == "bar" else pygal.Line
    chart = kind(
        title=table.title,
        style=STYLE,
        js=[],  # no tooltips script: the chart is an image
        width=800,
        height=320,
        show_dots=False,
        fill=False,
        x_labels_major_count=LABELS,
        show_minor_x_labels=False,
        truncate_label=-1,
        legend_at_bottom=True,
        print_values=False,
        min_scale=1,
        include_x_axis=True,
    )
    chart.x_labels = [str(row[0]) for row in table.rows]
    for index, column in enumerate(table.columns[1:], start=1):
        chart.add(column.capitalize(), [row[index] for row in table.rows])
    tree = chart.render_tree()
    # pygal writes its settings into a <script> for its tooltips even with no js: drop it.
    for script in [node for node in tree.iter() if str(node.tag).endswith("script")]:
        script.getparent().remove(script)
    svg: bytes = etree.tostring(tree, xml_declaration=True, encoding="utf-8")
    return svg
