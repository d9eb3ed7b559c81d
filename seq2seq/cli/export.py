"""seq2seq-export run_dir=DIR [format=ctranslate2] [out=DIR] [quantization=float32|int8|...]
[checkpoint=best] [overwrite=true]: a trained Transformer run as a CTranslate2 model directory.

    seq2seq-export run_dir=outputs/DATE/TIME_transformer quantization=int8

writes <run_dir>/export/ctranslate2/ (or out=DIR): model.bin, config.json, the vocabulary
JSON(s), the run's sentencepiece models as source.spm and target.spm, and seq2seq_export.json
(the run, the checkpoint, the options). RNN runs are refused: CTranslate2 exports Transformers
only. Needs the optional extra: ``pip install "seq2seq[export]"``.
"""

from __future__ import annotations

from pathlib import Path

from ..composition import compose
from .common import run_composed


def export(overrides: list[str]) -> Path:
    from omegaconf import OmegaConf

    from ..config import option_value
    from ..errors import ConfigError
    from ..export.ctranslate2 import export_run

    cfg = compose(overrides, "export")
    if OmegaConf.is_missing(cfg, "run_dir") or not cfg.run_dir:
        raise ConfigError("run_dir=DIR is required: the directory of a training run")
    out = export_run(
        cfg.run_dir,
        cfg.out,
        quantization=option_value(cfg.quantization),
        checkpoint=cfg.checkpoint,
        overwrite=cfg.overwrite,
    )
    print(f"{cfg.run_dir} ({cfg.checkpoint}) -> {out} [{option_value(cfg.format)}]")
    return out


def main() -> None:
    run_composed(
        export,
        doc=__doc__,
        config_name="export",
        example="run_dir=outputs/DATE/TIME_transformer quantization=int8",
        what="seq2seq-export",
        advice="no export was written; run the same command again",
    )


if __name__ == "__main__":
    main()
