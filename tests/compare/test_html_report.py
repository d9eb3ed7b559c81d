"""seq2seq-compare --html: one self-contained page (the report's tables, the plots, an attention
viewer), checked as a file and in a real headless Chromium (the system package, driven through
Selenium and chromedriver; skipped when they are missing)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seq2seq.cli.compare import main as compare_cli
from seq2seq.compare import compare
from tests.compare.fake_runs import fake_run, write_corpus

# (weights (target pieces x source pieces), source pieces, target pieces) per test sentence
SENT0_SRC = ["▁ein", "▁hu", "nd", "</s>"]  # words: ein, hund
SENT1_SRC = ["▁eine", "▁katze", "▁sitzt", "</s>"]
SENT2_SRC = ["▁ein", "▁mann", "</s>"]
ADDITIVE = [
    (
        [[0.8, 0.1, 0.0, 0.1], [0.2, 0.3, 0.3, 0.2], [0.0, 0.5, 0.5, 0.0], [0, 0, 0, 1]],
        SENT0_SRC,
        ["▁a", "▁do", "g", "</s>"],  # words: a, dog
    ),
    (
        [[0.7, 0.2, 0.1, 0.0], [0.1, 0.8, 0.1, 0.0], [0.0, 0.1, 0.8, 0.1], [0, 0, 0, 1]],
        SENT1_SRC,
        ["▁a", "▁cat", "▁sits", "</s>"],
    ),
    ([[1, 0, 0], [0, 1, 0], [0, 0, 1]], SENT2_SRC, ["▁a", "▁man", "</s>"]),
]
DOT = [  # sentence 2 not dumped
    (
        [[0.5, 0.3, 0.1, 0.1], [0.1, 0.4, 0.5, 0.0], [0, 0, 0, 1]],
        SENT0_SRC,
        ["▁the", "▁dog", "</s>"],
    ),
    (
        [
            [0.6, 0.2, 0.1, 0.1],
            [0.1, 0.8, 0.1, 0.0],
            [0.2, 0.2, 0.4, 0.2],
            [0.0, 0.0, 1.0, 0.0],
            [0.0, 0.0, 0.6, 0.4],
            [0, 0, 0, 1],
        ],
        SENT1_SRC,
        ["▁a", "▁cat", "▁is", "▁sit", "ting", "</s>"],  # words: a, cat, is, sitting
    ),
]
# the same at word level (source word pieces summed, target word pieces averaged, no EOS)
WORDS = {
    ("additive", 0): (["ein", "hund"], ["a", "dog"], [[0.8, 0.1], [0.1, 0.8]]),
    ("additive", 1): (
        ["eine", "katze", "sitzt"],
        ["a", "cat", "sits"],
        [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.0, 0.1, 0.8]],
    ),
    ("additive", 2): (["ein", "mann"], ["a", "man"], [[1, 0], [0, 1]]),
    ("multiplicative/dot", 0): (["ein", "hund"], ["the", "dog"], [[0.5, 0.4], [0.1, 0.9]]),
    ("multiplicative/dot", 1): (
        ["eine", "katze", "sitzt"],
        ["a", "cat", "is", "sitting"],
        [[0.6, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.4], [0.0, 0.0, 0.8]],
    ),
}
VARIANTS = ("additive", "multiplicative/dot")


@pytest.fixture
def viewer_sweep(tmp_path) -> Path:
    """Three finished runs: additive (3 sentences dumped), multiplicative/dot (2) and none."""
    corpus = write_corpus(tmp_path / "corpus")
    root = tmp_path / "sweep"
    fake_run(root, "0_none", corpus, attention="none", bleu=20)
    fake_run(root, "1_additive", corpus, bleu=24, matrices=ADDITIVE)
    fake_run(
        root,
        "2_dot",
        corpus,
        attention="multiplicative",
        options={"score": "dot"},
        bleu=22,
        matrices=DOT,
    )
    return root


class _Page(HTMLParser):
    """What the tests read of the page: every src/href, the report tables' cells, the JSON."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.tables: list[list[list[str]]] = []
        self.scripts: dict[str, str] = {}
        self._cell: list[str] | None = None
        self._script: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[k] for k in ("src", "href") if k in attrs]
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "script":
            self._script = attrs.get("id", "inline")
            self.scripts[self._script] = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None
        elif tag == "script":
            self._script = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._script is not None:
            self.scripts[self._script] += data


def read_page(path: Path) -> tuple[str, _Page]:
    text = path.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return text, page


def markdown_rows(md: str, header_start: str) -> list[list[str]]:
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        if not line.startswith("|---"):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_html_page_is_self_contained_and_holds_the_report(viewer_sweep, tmp_path):
    out = tmp_path / "report"
    compare([viewer_sweep], out, n_bootstrap=0, html=out / "comparison.html")
    text, page = read_page(out / "comparison.html")

    # nothing outside the file: no URL, only data: images, a policy forbidding other loads
    assert not re.search(r"https?:|src=\"//|href=\"//|@import|url\(", text)
    assert page.links and all(link.startswith("data:image/png;base64,") for link in page.links)
    assert "default-src 'none'; img-src data:" in text
    # the plots, byte for byte
    embedded = [base64.b64decode(link.split(",", 1)[1]) for link in page.links]
    assert embedded == [
        (out / name).read_bytes() for name in ("curves.png", "bleu_by_length.png", "alignments.png")
    ]
    # the markdown report's tables, cell for cell: the variants, the attention scores'
    # pairwise matrix, speed
    md = (out / "comparison.md").read_text(encoding="utf-8")
    assert page.tables[0] == markdown_rows(md, "| variant | n |")
    assert page.tables[1] == markdown_rows(md, "| row - column |")
    assert page.tables[2] == markdown_rows(md, "| variant | train time")
    assert [row[0] for row in page.tables[0][1:]] == ["none", "additive", "multiplicative/dot"]

    # the viewer's data: common sentences first, then additive's sentence 2, marked
    data = json.loads(page.scripts["viewer-data"])
    assert [(s["id"], s["missing"]) for s in data["sentences"]] == [
        (0, []),
        (1, []),
        (2, ["multiplicative/dot (seed 1)"]),
    ]
    assert data["sentences"][0]["source"] == "ein hund"
    assert [p["variant"] for p in data["panels"]] == list(VARIANTS)  # none has no weights
    for panel in data["panels"]:
        for sid, matrix in panel["matrices"].items():
            src, tgt, weights = WORDS[(panel["variant"], int(sid))]
            assert (matrix["src"], matrix["tgt"]) == (src, tgt)
            np.testing.assert_allclose(matrix["w"], weights, atol=1e-6)
    assert "2" not in data["panels"][1]["matrices"]
    assert "3 shown of 3 dumped (2 in every variant" in text
    assert "No matrices (no attention weights or no dump): none" in text


def test_the_page_embeds_at_most_html_sentences(viewer_sweep, tmp_path):
    out = tmp_path / "report"
    compare([viewer_sweep], out, n_bootstrap=0, html=out / "page.html", html_sentences=1)
    text, page = read_page(out / "page.html")
    data = json.loads(page.scripts["viewer-data"])
    assert [s["id"] for s in data["sentences"]] == [0]
    assert all(list(p["matrices"]) == ["0"] for p in data["panels"])
    assert "1 shown of 3 dumped" in text and "at most 1 are embedded" in text


def test_cli_html_flag_and_its_default_path(viewer_sweep, tmp_path, capsys):
    out = tmp_path / "report"
    compare_cli([str(viewer_sweep), "--out", str(out), "--bootstrap", "0", "--html"])
    assert f"HTML report -> {out / 'comparison.html'}" in capsys.readouterr().out
    assert (out / "comparison.html").is_file()
    assert json.loads(read_page(out / "comparison.html")[1].scripts["viewer-data"])["panels"]
    # a flag, not an option with a value: a run directory after it stays a run directory
    compare_cli(["--html", str(viewer_sweep), "--out", str(out), "--bootstrap", "0"])
    assert (out / "comparison.md").is_file()
    with pytest.raises(SystemExit) as exit_info:
        compare_cli([str(viewer_sweep), "--html-sentences", "0", "--html"])
    assert exit_info.value.code == 2
    assert "--html-sentences N needs --html and N >= 1" in capsys.readouterr().err


# --- in a real browser -------------------------------------------------------------------------


def _chromium() -> tuple[str, str]:
    browser = next(
        (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
        None,
    )
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(
            "no chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver)"
        )
    return browser, driver


@pytest.fixture
def browser():
    """Headless system Chromium through its chromedriver (Selenium never downloads one here)."""
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')"
    )
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _panel_matrices(driver) -> dict[str, dict]:
    """Per panel (by variant): its heading, the matrix table's header words, row words and the
    cells' titles, or its 'missing' message."""
    return driver.execute_script(
        """
        const out = {};
        for (const panel of document.querySelectorAll('#panels .panel')) {
          const table = panel.querySelector('table.matrix');
          const missing = panel.querySelector('.missing');
          out[panel.dataset.variant] = {
            heading: panel.querySelector('h3').textContent,
            missing: missing ? missing.textContent : null,
            src: table ? [...table.rows[0].querySelectorAll('th.src')].map(c => c.textContent) : [],
            rows: table ? [...table.rows].slice(1).map(r => ({
              word: r.querySelector('th.tgt').textContent,
              titles: [...r.querySelectorAll('td')].map(c => c.title),
            })) : [],
          };
        }
        return out;
        """
    )


@pytest.mark.browser
def test_the_viewer_in_headless_chromium(viewer_sweep, tmp_path, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    out = tmp_path / "report"
    compare([viewer_sweep], out, n_bootstrap=0, html=out / "comparison.html")
    browser.get((out / "comparison.html").as_uri())
    picker = Select(browser.find_element(By.ID, "sentence"))
    options = [o.text for o in picker.options]
    assert len(options) == 3 and options[0].startswith("#0: ein hund")
    assert options[2].endswith("(not in: multiplicative/dot (seed 1))")

    picker.select_by_value("1")  # Selenium's pick fires the change event
    shown = _panel_matrices(browser)
    assert sorted(shown) == sorted(VARIANTS)
    for variant, panel in shown.items():
        src, tgt, weights = WORDS[(variant, 1)]
        assert panel["heading"] == f"{variant} (seed 1)" and panel["missing"] is None
        assert panel["src"] == src and [r["word"] for r in panel["rows"]] == tgt
        # rows x cols = target words x source words, each cell titled word / word / weight
        assert [len(r["titles"]) for r in panel["rows"]] == [len(src)] * len(tgt)
        for j, row in enumerate(panel["rows"]):
            for i, title in enumerate(row["titles"]):
                s, t, value = title.split(" / ")
                assert (s, t) == (src[i], tgt[j])
                assert float(value) == pytest.approx(weights[j][i], abs=1e-3)
    assert browser.find_element(By.ID, "source").text == "source: eine katze sitzt"

    # a real hover: the panel's readout shows the cell under the pointer
    panel = browser.find_element(By.CSS_SELECTOR, '.panel[data-variant="multiplicative/dot"]')
    cell = panel.find_elements(By.CSS_SELECTOR, "table.matrix tr")[4].find_elements(
        By.TAG_NAME, "td"
    )[2]
    ActionChains(browser).move_to_element(cell).perform()
    assert panel.find_element(By.CLASS_NAME, "readout").text == "sitzt / sitting / 0.800"

    screenshot = browser.get_screenshot_as_png()
    (tmp_path / "viewer.png").write_bytes(screenshot)
    with Image.open(io.BytesIO(screenshot)) as image:
        assert image.format == "PNG" and image.width >= 800
        low, high = image.convert("L").getextrema()
    assert high - low > 100  # not a blank page: the matrices' dark cells on white
    panels = browser.find_element(By.ID, "panels").screenshot_as_png
    with Image.open(io.BytesIO(panels)) as image:
        grey = np.asarray(image.convert("L"))
    assert (grey < 60).mean() > 0.001 and (grey > 200).mean() > 0.3

    # a sentence only additive dumped: the other panel says so
    picker.select_by_value("2")
    shown = _panel_matrices(browser)
    assert [r["word"] for r in shown["additive"]["rows"]] == ["a", "man"]
    assert shown["multiplicative/dot"]["missing"] == "no matrix for sentence #2 in 2_dot"

    # it loaded nothing and logged no error (a blocked load would be a CSP error here)
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
