"""A sacreBLEU cache for wmt14 built offline, in the exact layout sacreBLEU's dataset code reads.

``$SACREBLEU/wmt14/raw/wmt14.test-filtered.tgz`` is the archive sacreBLEU downloads (a file that
exists and is not empty is not downloaded again) and ``raw/test/newstest2014-deen-*.sgm`` the
files extracted from it, in WMT's SGML. sacreBLEU itself writes the processed text files
``wmt14/wmt14.<pair>.{src,ref,docid,genre,origlang}`` from them on first use, as it does after a
real download.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

# aligned English and German lines (non-ASCII and punctuation, so tokenizers differ)
EN = [
    "Gutach: Increased safety for pedestrians",
    "They are not even 100 metres apart: On Tuesday, the new B 33 pedestrian lights went up.",
    "The mayor said: “It's a good day for Dornhan!”",
    "Two trains—one late—arrived at 10:30.",
]
DE = [
    "Gutach: Noch mehr Sicherheit für Fußgänger",
    "Sie stehen keine 100 Meter voneinander entfernt: Am Dienstag ist die neue B 33-Fußgängerampel aufgebaut worden.",
    "Der Bürgermeister sagte: „Es ist ein guter Tag für Dornhan!“",
    "Zwei Züge – einer verspätet – kamen um 10:30 Uhr an.",
]
# system outputs for either direction: close to the references, not equal
HYPS = {
    "en-de": [
        "Gutach: Mehr Sicherheit für Fußgänger",
        "Sie sind keine 100 Meter entfernt: Am Dienstag wurde die neue B 33-Ampel aufgebaut.",
        "Der Bürgermeister sagte: „Ein guter Tag für Dornhan!“",
        "Zwei Züge – einer spät – kamen um 10:30 an.",
    ],
    "de-en": [
        "Gutach: More safety for pedestrians",
        "They are not 100 metres apart: on Tuesday the new B 33 lights went up.",
        "The mayor said: “A good day for Dornhan!”",
        "Two trains — one late — arrived at 10:30.",
    ],
}


def _sgm(kind: str, lang: str, lines: list[str]) -> str:
    head = (
        '<srcset setid="newstest2014" srclang="any">\n'
        if kind == "src"
        else f'<refset setid="newstest2014" srclang="any" trglang="{lang}">\n'
    )
    body = '<doc sysid="ref" docid="1012-bbc" genre="news" origlang="de">\n<p>\n'
    body += "".join(f'<seg id="{i}">{s}</seg>\n' for i, s in enumerate(lines, 1))
    tail = "</p>\n</doc>\n" + ("</srcset>\n" if kind == "src" else "</refset>\n")
    return head + body + tail


def write_wmt14_cache(root: Path) -> Path:
    """Fill ``root`` (the future ``$SACREBLEU``) with wmt14's de-en and en-de; return ``root``."""
    raw = root / "wmt14" / "raw"
    test = raw / "test"
    test.mkdir(parents=True)
    for name, text in {
        "newstest2014-deen-src.en.sgm": _sgm("src", "en", EN),
        "newstest2014-deen-ref.de.sgm": _sgm("ref", "de", DE),
        "newstest2014-deen-src.de.sgm": _sgm("src", "de", DE),
        "newstest2014-deen-ref.en.sgm": _sgm("ref", "en", EN),
    }.items():
        (test / name).write_text(text, encoding="utf-8")
    with tarfile.open(raw / "wmt14.test-filtered.tgz", "w:gz") as tar:
        tar.add(test, arcname="test")
    return root


def sacrebleu_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """The sacreBLEU command line of this interpreter's environment."""
    return subprocess.run(
        [sys.executable, "-m", "sacrebleu", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
