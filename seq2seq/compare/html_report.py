"""comparison.html: the report as one self-contained page (``seq2seq-compare --html``).

The markdown report's sections (the same tables and notes), the plots as base64 PNG data URIs
and an attention viewer: a sentence picker and, per variant, the picked test sentence's
word-level matrix as a table of shaded cells (source words across, target words down; hovering
a cell shows "source word / target word / weight"). CSS, script and the matrices (JSON) are
inline and a Content-Security-Policy forbids any other load: the page needs no network.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path

from .markdown import ReportSections
from .viewer import ViewerData

# nothing but this page's own inline style and script, and data: images
POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table.report { border-collapse: collapse; margin: 0.5em 0 1em; }
table.report th, table.report td { border: 1px solid #ccc; padding: 2px 6px; font-size: 12px; }
table.report th { background: #f3f3f3; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
#panels { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
.panel h3 { font-size: 14px; margin: 0.4em 0; }
table.matrix { border-collapse: collapse; font-size: 11px; }
table.matrix td { width: 18px; height: 18px; border: 1px solid #eee; padding: 0; }
table.matrix th { font-weight: normal; padding: 1px 3px; }
table.matrix th.src { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left; }
table.matrix th.tgt { text-align: right; }
.readout { font-family: monospace; min-height: 1.4em; }
.missing { color: #a00; }
code { background: #f3f3f3; padding: 0 2px; }
"""

# small and plain: fill the picker, draw each panel's matrix for the picked sentence
SCRIPT = """
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("viewer-data").textContent);
  var picker = document.getElementById("sentence");
  var panels = document.getElementById("panels");
  data.sentences.forEach(function (s) {
    var option = document.createElement("option");
    option.value = String(s.id);
    option.textContent = "#" + s.id + ": " + s.source +
      (s.missing.length ? "  (not in: " + s.missing.join(", ") + ")" : "");
    picker.appendChild(option);
  });
  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function shade(weight) {
    var grey = Math.round(255 * (1 - Math.min(Math.max(weight, 0), 1)));
    return "rgb(" + grey + "," + grey + "," + grey + ")";
  }
  function matrixTable(m) {
    var table = element("table", "matrix");
    var head = table.insertRow();
    head.appendChild(element("th"));
    m.src.forEach(function (word) { head.appendChild(element("th", "src", word)); });
    m.w.forEach(function (row, j) {
      var tr = table.insertRow();
      tr.appendChild(element("th", "tgt", m.tgt[j]));
      row.forEach(function (weight, i) {
        var td = tr.insertCell();
        td.style.background = shade(weight);
        td.title = m.src[i] + " / " + m.tgt[j] + " / " + weight.toFixed(3);
      });
    });
    return table;
  }
  function render() {
    var id = picker.value;
    var picked = data.sentences.filter(function (s) { return String(s.id) === id; })[0];
    document.getElementById("source").textContent = picked ? "source: " + picked.source : "";
    panels.replaceChildren.apply(panels, data.panels.map(function (p) {
      var panel = element("div", "panel");
      panel.dataset.variant = p.variant;
      panel.appendChild(element("h3", null, p.title));
      var m = p.matrices[id];
      if (!m) {
        panel.appendChild(element("p", "missing", "no matrix for sentence #" + id + " in " + p.run));
        return panel;
      }
      panel.appendChild(matrixTable(m));
      var readout = panel.appendChild(element("p", "readout", "hover a cell"));
      panel.addEventListener("mouseover", function (event) {
        if (event.target.tagName === "TD") readout.textContent = event.target.title;
      });
      return panel;
    }));
  }
  picker.addEventListener("change", render);
  render();
})();
"""


def inline_markdown(text: str) -> str:
    """Escaped text with the report's `code` spans as <code>."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{inline_markdown(c)}</td>" for c in cells) + "</tr>"
        for cells in rows
    )
    return f'<table class="report"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _figure(caption: str, path: Path) -> str:
    if not path.is_file():
        return ""
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{encoded}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _viewer_intro(viewer: ViewerData, limit: int, without_dump: Sequence[str]) -> str:
    if not viewer.panels:
        lines = ["No attention matrices: no variant has a dump (train with dump_alignments=true)."]
    else:
        lines = [
            f"Test sentences: {len(viewer.sentences)} shown of {viewer.available} dumped "
            f"({viewer.common} in every variant's dump, listed first; the others say which "
            f"variants lack them); at most {limit} are embedded (--html-sentences).",
            "Word level: a source word's subword columns summed, a target word's rows averaged, "
            "EOS left out (its weight is the EOS mass above); white 0, black 1. Each panel is "
            "the variant's first seed with a dump; hover a cell for its weight.",
        ]
    if without_dump:
        lines.append("No matrices (no attention weights or no dump): " + ", ".join(without_dump))
    lines += viewer.problems
    return "".join(f"<p>{inline_markdown(line)}</p>" for line in lines)


def _script_json(value) -> str:
    """JSON safe inside <script>: no "<" (no "</script>" or "<!--" can end or bend it)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")


def write_html(
    path: Path,
    sections: ReportSections,
    *,
    plots: Sequence[tuple[str, Path]],
    viewer: ViewerData,
    limit: int,
    without_dump: Sequence[str] = (),
    title: str = "seq2seq comparison",
) -> Path:
    """Write the page to ``path`` (its folder created); return ``path``."""
    body = [
        f"<h1>{html.escape(title)}</h1>",
        *(f"<p>{inline_markdown(line)}</p>" for line in sections.head),
        '<h2 id="variants">Variants</h2>',
        _table(sections.columns, sections.rows),
        *(
            part
            for title, columns, rows in sections.tables
            for part in (f"<p>{html.escape(title)}</p>", _table(columns, rows))
        ),
        f"<p>{html.escape(sections.SPEED_TITLE)}</p>",
        _table(sections.speed_columns, sections.speed_rows),
        '<h2 id="plots">Plots</h2>',
        *(_figure(caption, png) for caption, png in plots),
        '<h2 id="attention">Attention</h2>',
        _viewer_intro(viewer, limit, without_dump),
        '<label>Test sentence <select id="sentence"></select></label>',
        '<p id="source"></p><div id="panels"></div>',
        '<h2 id="notes">Notes</h2>',
        *(f"<p>{inline_markdown(note)}</p>" for note in sections.notes),
        f'<script type="application/json" id="viewer-data">{_script_json(viewer.as_json())}</script>',
        f"<script>{SCRIPT}</script>",
    ]
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n<body>\n"
        + "\n".join(part for part in body if part)
        + "\n</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
