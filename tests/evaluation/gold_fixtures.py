"""A hand-made pre-tokenized gold set of three pairs of the tiny de/en corpus
(tests/reliability/reliability_tools.write_corpus), in several formats: shared by the
gold-alignment command-line tests and the eflomal baseline's (fixtures in conftest.py)."""

from __future__ import annotations

from pathlib import Path

# de (the Transformer's source) ||| en; 0-based de-en links, `p` possible
GOLD_PAIRS = [
    ("Ein Mann fährt Fahrrad .", "A man rides a bike .", "0-0 1-1 2-2 3-4 4-5 3p3"),
    (
        "Zwei Hunde spielen im Schnee .",
        "Two dogs play in the snow .",
        "0-0 1-1 2-2 3-3 3p4 4-5 5-6",
    ),
    ("Eine Frau lacht .", "A woman laughs .", "0-0 1-1 2-2 3-3"),
]


def pharaoh_to_wpt(lines: list[str], *, reverse: bool = False) -> str:
    """The same links as WPT lines, 1-based (``sentence i j S|P``), optionally target-source."""
    out = []
    for k, line in enumerate(lines, start=1):
        for token in line.split():
            sep = "p" if "p" in token else "-"
            i, j = (int(x) for x in token.split(sep))
            if reverse:
                i, j = j, i
            out.append(f"{k} {i + 1} {j + 1} {'P' if sep == 'p' else 'S'}")
    return "\n".join(out) + "\n"


def reverse_pharaoh(line: str) -> str:
    tokens = []
    for token in line.split():
        sep = "p" if "p" in token else "-"
        i, j = token.split(sep)
        tokens.append(f"{j}{sep}{i}")
    return " ".join(tokens)


def write_gold(directory: Path) -> dict[str, Path]:
    """The gold set as files: ``text`` (de ||| en), ``links`` (Pharaoh), ``wpt`` (1-based),
    ``src`` / ``ref`` (separate sides), and the en ||| de text with en-de links (``rtext``,
    ``rlinks``: for a de->en model, gold_reversed=true)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "text": "".join(f"{de} ||| {en}\n" for de, en, _ in GOLD_PAIRS),
        "links": "".join(f"{links}\n" for _, _, links in GOLD_PAIRS),
        "wpt": pharaoh_to_wpt([links for _, _, links in GOLD_PAIRS]),
        "src": "".join(f"{de}\n" for de, _, _ in GOLD_PAIRS),
        "ref": "".join(f"{en}\n" for _, en, _ in GOLD_PAIRS),
        "rtext": "".join(f"{en} ||| {de}\n" for de, en, _ in GOLD_PAIRS),
        "rlinks": "".join(f"{reverse_pharaoh(links)}\n" for _, _, links in GOLD_PAIRS),
    }
    paths = {}
    for name, text in files.items():
        paths[name] = directory / f"gold.{name}"
        paths[name].write_text(text, encoding="utf-8")
    return paths
