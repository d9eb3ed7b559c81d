"""seq2seq-compare DIR [DIR ...] [--out OUT]: variants over seeds (mean, sd, 95% interval, paired
differences against a baseline) from run directories or multirun sweeps; tables and plots, and
with --html one self-contained page of them with an attention viewer."""

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
        help="variant label the others are paired against, seed by seed (default: none, else the first)",
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
    parser.add_argument(
        "--aer-runs",
        nargs="+",
        metavar="DIR",
        default=[],
        help="runs of the same variants on a corpus with gold links (e.g. data=reverse): their "
        "test_aer becomes an 'AER on <corpus>' column; their BLEU is not compared",
    )
    parser.add_argument(
        "--gold",
        metavar="NAME",
        help="the seq2seq-evaluate gold_alignments= evaluation (eval/NAME) whose AER is the "
        "gold AER column (default: each run's only one)",
    )
    parser.add_argument(
        "--html",
        action="store_true",
        help="also write the report as one self-contained HTML page (tables, plots, attention "
        "viewer; no network needed to view it): <out>/comparison.html",
    )
    parser.add_argument(
        "--html-sentences",
        type=int,
        metavar="N",
        help="test sentences the page's attention viewer embeds, at most (default: 50)",
    )
    parser.add_argument(
        "--export",
        metavar="DIR",
        help="instead of a report: write small summaries of the runs (no checkpoints) into DIR, "
        "from which seq2seq-compare DIR rebuilds the report",
    )
    args = parser.parse_args(argv)
    if args.html_sentences is not None and (not args.html or args.html_sentences < 1):
        parser.error("--html-sentences N needs --html and N >= 1")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")

    def run() -> None:
        from ..compare import compare

        if args.export:
            from ..compare.export import export_runs

            written = export_runs(args.dirs, args.export)
            print(f"{len(written)} runs exported -> {args.export}")
            return

        out = Path(args.out) if args.out else Path(args.dirs[0]) / "comparison"
        html = out / "comparison.html" if args.html else None
        rows = compare(
            args.dirs,
            out,
            baseline=args.baseline,
            n_bootstrap=args.bootstrap,
            alignment_ids=args.sentences,
            aer_paths=args.aer_runs,
            gold=args.gold,
            html=html,
            **({} if args.html_sentences is None else {"html_sentences": args.html_sentences}),
        )
        print((out / "comparison.md").read_text(encoding="utf-8"))
        if html is not None:
            print(f"HTML report -> {html}")
        counts = {
            s: sum(r["status"] == s for r in rows) for s in dict.fromkeys(r["status"] for r in rows)
        }
        print(", ".join(f"{n} {status}" for status, n in counts.items()) + f" -> {out}")

    report_user_errors(
        run,
        what="seq2seq-compare",
        advice="the report is written only whole; run the same command again",
    )


if __name__ == "__main__":
    main()
