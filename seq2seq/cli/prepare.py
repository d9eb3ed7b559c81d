"""seq2seq-prepare [overrides]: load the corpus, train/reuse sentencepiece, cache the ids.

Uses the training config tree, so ``seq2seq-prepare data=tatoeba_en_fr data.vocab.size=16000``
prepares exactly what ``seq2seq-train`` with the same overrides will use.
"""

from __future__ import annotations

import logging

from ..composition import compose
from .common import run_composed


def prepare(overrides: list[str]) -> None:
    from ..data.batching import sequence_lengths
    from ..data.pipeline import prepare_data

    cfg = compose(overrides, "train")
    data = prepare_data(cfg.data)
    tok = data.tokenizer
    print(
        f"corpus {cfg.data.name} {cfg.data.src}->{cfg.data.tgt} from {cfg.data.dir or cfg.data.hub_id}"
    )
    for name, split in data.splits.items():
        n_src = int(sequence_lengths(split.src_ids).sum())
        n_tgt = int(sequence_lengths(split.tgt_ids).sum())
        print(f"  {name:<10} {len(split):>7} pairs  {n_src:>8} src / {n_tgt:>8} tgt subwords")
    print(
        f"sentencepiece: {tok.src_model_path}" + ("" if tok.joint else f" and {tok.tgt_model_path}")
    )


def main() -> None:
    run_composed(
        prepare,
        doc=__doc__,
        config_name="train",
        example="data=tatoeba_en_fr data.vocab.size=16000",
        log_level=logging.INFO,
        what="seq2seq-prepare (data preparation)",
        advice="the caches keep complete entries only; run the same command again",
    )


if __name__ == "__main__":
    main()
