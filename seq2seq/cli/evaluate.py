"""seq2seq-evaluate run_dir=DIR [overrides]: decode a split or a file, BLEU/chrF, alignments.

A Hydra app, so ``-m decode.beam_size=1,5,10`` sweeps decoding settings on one checkpoint.
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from ..composition import CONFIG_DIR
from ..config import register_configs
from .common import report_user_errors
from .precheck import precheck_evaluate_argv, prechecked

register_configs()


def main() -> None:
    """Check the command line first (one line per bad input: an unknown key, a ``+key`` the
    schema lacks, no ``run_dir``), then run Hydra."""
    report_user_errors(lambda: precheck_evaluate_argv(sys.argv[1:]))
    report_user_errors(
        hydra_main,
        what="seq2seq-evaluate",
        advice="no record was written; run the same command again",
    )


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="evaluate")
def hydra_main(cfg: DictConfig) -> float | None:
    from ..evaluation.evaluate import evaluate
    from ..runtime import keep_freed_memory

    keep_freed_memory()
    # a single run's config was checked by the pre-check; a sweep's jobs check their own
    checked = HydraConfig.get().mode == RunMode.RUN and prechecked(sys.argv[1:])
    metrics = report_user_errors(
        lambda: evaluate(cfg, checked=checked),
        what="seq2seq-evaluate",
        advice="no record was written; run the same command again",
    )
    return metrics.get("bleu")


if __name__ == "__main__":
    main()
