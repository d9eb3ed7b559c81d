"""seq2seq-prepare [overrides]: load the corpus, train/reuse sentencepiece, cache the ids.

Uses the training config tree, so ``seq2seq-prepare data=tatoeba_en_fr data.vocab.size=16000``
prepares exactly what ``seq2seq-train`` with the same overrides will use.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from ..config import register_configs
from .common import config_error_line, report_user_errors

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def prepare(overrides: list[str]) -> None:
    from ..data.pipeline import prepare_data

    register_configs()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            cfg = compose(config_name="train", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as err:
        raise ValueError(config_error_line(err)) from err
    data = prepare_data(cfg.data)
    tok = data.tokenizer
    print(
        f"corpus {cfg.data.name} {cfg.data.src}->{cfg.data.tgt} from {cfg.data.dir or cfg.data.hub_id}"
    )
    for name, split in data.splits.items():
        n_src = sum(len(s) for s in split.src_ids)
        n_tgt = sum(len(t) for t in split.tgt_ids)
        print(f"  {name:<10} {len(split):>7} pairs  {n_src:>8} src / {n_tgt:>8} tgt subwords")
    print(
        f"sentencepiece: {tok.src_model_path}" + ("" if tok.joint else f" and {tok.tgt_model_path}")
    )


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report_user_errors(lambda: prepare(sys.argv[1:]))


if __name__ == "__main__":
    main()
