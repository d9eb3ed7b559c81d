"""The Python API: load a run, translate with its attention, train from overrides.

    import seq2seq
    run = seq2seq.load("outputs/DATE/TIME_rnn_additive")
    (hyp,) = run.translate(["Ein Hund läuft."], beam_size=5, return_attention=True)
    hyp.text, hyp.score, hyp.word_alignment, hyp.word_attention

    run = seq2seq.train(["attention=multiplicative", "trainer.max_steps=100"], run_dir="outputs/x")

Importing it changes nothing global; torch, Hydra and the models load on first use.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .decode_defaults import BEAM_SIZE


@dataclass
class Translation:
    """One hypothesis of one source sentence.

    attention:      (target pieces [+ EOS], source pieces + EOS) weights, when asked for
    word_attention: (target words, source words): pieces merged (source columns summed, target
                    rows averaged), EOS dropped; word_alignment: its argmax links (src, tgt)
    """

    text: str
    score: float  # log-prob / length penalty: what the beam ranked by
    log_prob: float
    src_pieces: list[str]
    tgt_pieces: list[str]
    attention: np.ndarray | None = None
    src_words: list[str] = field(default_factory=list)
    tgt_words: list[str] = field(default_factory=list)
    word_attention: np.ndarray | None = None
    word_alignment: list[tuple[int, int]] = field(default_factory=list)


class Run:
    """A trained run loaded for decoding (see :func:`load`)."""

    def __init__(self, loaded: Any, device: Any) -> None:
        self.device = device
        self.run_dir: Path = loaded.run_dir
        self.checkpoint: Path = loaded.checkpoint
        self.config = loaded.config  # the run's resolved training config
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.step: int = loaded.step

    def __repr__(self) -> str:
        return f"Run({str(self.run_dir)!r}, checkpoint={self.checkpoint.name}, step={self.step})"

    def translate(
        self,
        texts: Sequence[str],
        *,
        beam_size: int = BEAM_SIZE,
        nbest: int = 1,
        return_attention: bool = False,
        **decode: Any,
    ) -> list[Translation] | list[list[Translation]]:
        """Translate ``texts``: one :class:`Translation` per text, or with ``nbest`` > 1 a
        best-first list of ``nbest`` per text. ``decode``: other ``decode.*`` options
        (``alpha``, ``max_len_ratio``, ``batch_size``, ...). Attention needs a model with
        attention (not ``attention=none``)."""
        from .evaluation.evaluate import decode_ids

        if isinstance(texts, str):
            raise TypeError("translate takes a list of sentences, not one string")
        options = decode_options(beam_size=beam_size, nbest=nbest, **decode)
        if return_attention and not self.model.has_alignment:
            raise ValueError("return_attention=True needs attention; this run's model has none")
        # as seq2seq-translate: a text is stripped, a blank one is not decoded (its
        # translation is empty; with nbest > 1 it has none)
        keep = [i for i, text in enumerate(texts) if text.strip()]
        src_ids = self.tokenizer.encode_src([texts[i].strip() for i in keep])
        decoded = decode_ids(
            self.model,
            self.tokenizer,
            src_ids,
            options,
            device=self.device,
            amp_dtype=None,
            need_attn=return_attention,
        )
        lists = decoded.nbest if decoded.nbest is not None else [[h] for h in decoded.hyps]
        out: list[list[Translation]] = [[] if nbest > 1 else [_empty()] for _ in texts]
        for i, ids, hyps in zip(keep, src_ids, lists, strict=True):
            out[i] = [self._translation(ids, hyp, return_attention) for hyp in hyps]
        return out if nbest > 1 else [hyps[0] for hyps in out]

    def _translation(self, src_ids, hyp, with_attention: bool) -> Translation:
        from .evaluation.alignments import (
            hard_alignment,
            hypothesis_matrix,
            hypothesis_pieces,
            to_word_level,
            words_of,
        )

        src_pieces = self.tokenizer.src_pieces(src_ids)
        tgt_pieces = hypothesis_pieces(self.tokenizer, hyp)
        result = Translation(
            text=self.tokenizer.decode_tgt([hyp.tokens])[0],
            score=float(hyp.score),
            log_prob=float(hyp.log_prob),
            src_pieces=src_pieces,
            tgt_pieces=tgt_pieces,
            src_words=words_of(src_pieces),
            tgt_words=words_of(tgt_pieces),
        )
        if with_attention and hyp.attn is not None:
            result.attention = hypothesis_matrix(hyp, len(src_pieces))
            result.word_attention = to_word_level(result.attention, src_pieces, tgt_pieces)
            links = hard_alignment(result.word_attention)
            result.word_alignment = sorted(links, key=lambda link: (link[1], link[0]))
        return result


def _empty() -> Translation:
    """The translation of a blank text: nothing decoded."""
    return Translation(text="", score=0.0, log_prob=0.0, src_pieces=[], tgt_pieces=[])


def decode_options(**options: Any) -> Any:
    """A checked DecodeConfig with ``options`` set (one line naming a bad one)."""
    from omegaconf import OmegaConf

    from .config import DecodeConfig
    from .validation import check_decode_options

    decode = OmegaConf.structured(DecodeConfig)
    for key, value in options.items():
        if key not in decode:
            raise ValueError(f"unknown decode option {key!r}; valid: {', '.join(decode)}")
        decode[key] = value
    check_decode_options(decode)
    return decode


def load(run_dir: str | Path, *, checkpoint: str = "best", device: str = "auto") -> Run:
    """The run in ``run_dir`` (its ``checkpoints/<checkpoint>.pt`` and vocabulary), on
    ``device`` (auto: cuda, then mps, then cpu)."""
    from .evaluation.run import load_run
    from .runtime import pick_device, set_tf32

    target = pick_device(device, key="device")
    set_tf32(target, None)  # it decodes in fp32: true fp32 on a GPU too (training's rule)
    return Run(load_run(run_dir, checkpoint=checkpoint, device=target), target)


API_KEYS = {"hydra.run.dir": "run_dir"}  # the CLI's option -> this API's argument


def api_error(err: Exception) -> Exception:
    """A user error as the API raises it: the CLI's line with the API's own argument names."""
    from .errors import ConfigError, Seq2SeqError

    line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    for cli_key, api_key in API_KEYS.items():
        line = line.replace(f"{cli_key}=", f"{api_key}=").replace(cli_key, api_key)
    if isinstance(err, Seq2SeqError):
        try:
            return type(err)(line)
        except TypeError:  # a subclass with other arguments
            pass
    return ConfigError(line)


def train(
    overrides: Sequence[str] = (), *, run_dir: str | Path | None = None, device: str = "auto"
) -> Run:
    """Train as ``seq2seq-train <overrides>`` does, into ``run_dir`` (default
    ``outputs/DATE/TIME_<label>``, like the command), and return the trained run (its best checkpoint)."""
    from .composition import compose
    from .config import run_label
    from .errors import Seq2SeqError
    from .training import train as train_config

    cfg = compose(overrides)
    if run_dir is None:
        label = run_label(str(cfg.model.name), str(cfg.attention.name))
        run_dir = (
            Path("outputs") / time.strftime("%Y-%m-%d") / f"{time.strftime('%H-%M-%S')}_{label}"
        )
    cfg.run_dir = str(run_dir)
    try:
        metrics = train_config(cfg)
    except Seq2SeqError as err:
        raise api_error(err) from None
    if metrics.get("status") == "interrupted":
        raise KeyboardInterrupt(f"training interrupted at step {metrics.get('steps')}")
    return load(run_dir, device=device)
