"""The tiny de/en corpus of the reliability, export and gold tests (six sentence pairs)."""

from __future__ import annotations

from pathlib import Path

DE = [
    "Ein Mann fährt Fahrrad.",
    "Zwei Hunde spielen im Schnee.",
    "Eine Frau lacht.",
    "Ein Kind läuft über die Straße.",
    "Drei Männer sitzen auf einer Bank.",
    "Ein Hund schwimmt im See.",
]
EN = [
    "A man rides a bike.",
    "Two dogs play in the snow.",
    "A woman laughs.",
    "A child runs across the street.",
    "Three men sit on a bench.",
    "A dog swims in the lake.",
]
# multi30k's file stems (data=multi30k): {train: train, validation: val, test: test_2016_flickr}
STEMS = {"train": "train", "validation": "val", "test": "test_2016_flickr"}


def write_corpus(directory: Path, *, train_pairs: int = 60, eval_pairs: int = 6) -> Path:
    """A small valid de/en corpus in multi30k's layout (plain text files)."""
    directory.mkdir(parents=True, exist_ok=True)
    sizes = {"train": train_pairs, "validation": eval_pairs, "test": eval_pairs}
    for split, stem in STEMS.items():
        n = sizes[split]
        for lang, lines in (("de", DE), ("en", EN)):
            text = "".join(lines[i % len(lines)] + "\n" for i in range(n))
            (directory / f"{stem}.{lang}").write_text(text, encoding="utf-8")
    return directory
