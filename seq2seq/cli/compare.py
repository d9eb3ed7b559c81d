"""seq2seq-compare DIR [DIR ...] [--out OUT]: table and plots comparing runs or a multirun sweep."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .common import report_user_errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="seq2seq-compare", description=__doc__)
    parser.add_argument("dirs", nargs="+", help="run directories or multirun directories")
    parser.add_argument("--out", help="output directory (default: <first DIR>/comparison)")
    parser.add_argument(
        "--baseline",
        help="variant label the others are tested against (default: none, else the first)",
    )
    parser.add_argument(
        "--bootstrap", type=int, default=1000, help="paired bootstrap samples (0 disables)"
    )
    parser.add_argument(
        "--sentences",
        type=int,
        nargs="+",
        default=[0, 1],
        help="test sentence ids for alignments.png",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    def run() -> None:
        from ..compare import compare

        out = Path(args.out) if args.out else Path(args.dirs[0]) / "comparison"
        rows = compare(
            args.dirs,
            out,
            baseline=args.baseline,
            n_bootstrap=args.bootstrap,
            alignment_ids=args.sentences,
        )
        print((out / "comparison.md").read_text(encoding="utf-8"))
        bad = [r for r in rows if r["status"] != "finished"]
        print(f"{len(rows) - len(bad)} finished, {len(bad)} failed or unfinished -> {out}")

    report_user_errors(run)


if __name__ == "__main__":
    main()
