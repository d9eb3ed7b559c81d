"""seq2seq-align-baseline [overrides]: eflomal (an IBM-model aligner) trained on the runs'
training corpus plus the gold pairs, and each run's attention, scored against the same gold
links by the same AER function; prints a Markdown table.

    seq2seq-align-baseline data=multi30k data.src=en data.tgt=cs \\
        gold_text=../shared/data/gold/encs.src-tgt gold_alignments=../shared/data/gold/encs.gold \\
        run_dirs=[outputs/A,outputs/B] alignment.layer=-2

Composed like seq2seq-prepare (outside a Hydra app): nothing is written but ``out=FILE``.
Needs the optional extra: ``pip install "seq2seq[align]"``.
"""

from __future__ import annotations

from ..composition import compose
from .common import run_composed


def align_baseline(overrides: list[str]) -> dict:
    from ..evaluation.baseline import align_baseline as run_table
    from ..evaluation.baseline import format_table, write_json

    cfg = compose(overrides, "align_baseline")
    result = run_table(cfg)
    print(format_table(result))
    if cfg.out:
        write_json(result, cfg.out)
        print(f"-> {cfg.out}")
    return result


def main() -> None:
    run_composed(
        align_baseline,
        doc=__doc__,
        config_name="align_baseline",
        example="data.src=en data.tgt=cs gold_text=F gold_alignments=F run_dirs=[DIR]",
    )


if __name__ == "__main__":
    main()
