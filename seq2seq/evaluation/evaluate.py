"""Decode a split or any source file with a trained run; BLEU/chrF when references exist."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import torch
from omegaconf import DictConfig

from ..config import option_value
from ..data.corpus import DataError, read_lines
from ..data.pipeline import load_split_texts
from ..decoding.precision import decoding_autocast, decoding_model
from ..runtime import autocast, pick_device
from ..validation import check_evaluate_config
from .bleu import corpus_scores
from .run import LoadedRun, load_run

log = logging.getLogger("seq2seq.evaluate")


def decode_texts(
    run: LoadedRun,
    sources: list[str],
    decode: DictConfig,
    *,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    need_attn: bool = False,
) -> list:
    """Tokenize, decode (greedy for beam_size 1, else beam search) and return hypotheses."""
    from ..decoding import translate_batches

    if decode.beam_size < 1:
        raise ValueError(f"decode.beam_size must be >= 1, got {decode.beam_size}")
    src_ids = run.tokenizer.encode_src(sources)
    with autocast(device, amp_dtype):
        return translate_batches(
            run.model,
            src_ids,
            beam_size=decode.beam_size,
            batch_size=decode.batch_size,
            alpha=decode.alpha,
            max_len_ratio=decode.max_len_ratio,
            max_len_offset=decode.max_len_offset,
            need_attn=need_attn,
            device=device,
            workers=decode.workers,
        )


def gold_alignment_scores(
    run: LoadedRun, sources, references, cfg: DictConfig, *, device, amp_dtype
) -> dict:
    """AER of the attention read while forcing the reference, against ``cfg.gold_alignments``."""
    from .alignments import score_against_gold, teacher_forced_attention

    if not cfg.src_file or references is None:
        raise DataError(
            "gold_alignments needs src_file= and ref_file=: the sentence pairs its links describe"
        )
    gold = read_lines(cfg.gold_alignments)
    if cfg.limit is not None:
        gold = gold[: cfg.limit]
    if len(gold) != len(sources):
        raise DataError(
            f"line counts differ: {cfg.gold_alignments} has {len(gold)} lines, {cfg.src_file} has {len(sources)}"
        )
    matrices = teacher_forced_attention(
        run.model, run.tokenizer, sources, references, device=device, amp_dtype=amp_dtype
    )
    scores = score_against_gold(
        run.tokenizer,
        sources,
        references,
        matrices,
        gold,
        hard=cfg.alignment.hard,
        threshold=cfg.alignment.threshold,
    )
    return {
        "aer": round(scores["aer"], 4),
        "align_precision": round(scores["precision"], 4),
        "align_recall": round(scores["recall"], 4),
    }


def evaluation_name(cfg: DictConfig) -> str:
    if cfg.name:
        return str(cfg.name)
    base = Path(cfg.src_file).name.split(".")[0] if cfg.src_file else cfg.split
    precision = option_value(cfg.precision)
    suffix = "" if precision == "fp32" else f"_{precision}"  # fp32 keeps the historical name
    return f"{base}_beam{cfg.decode.beam_size}{suffix}"


def evaluate(cfg: DictConfig) -> dict:
    """Decode, detokenize, score; write run_dir/eval/<name>/{hyps.txt,metrics.json}."""
    check_evaluate_config(cfg)
    device = pick_device(cfg.device)
    # a precision the device lacks fails before loading
    amp_dtype = decoding_autocast(cfg.precision, device)
    run = load_run(cfg.run_dir, checkpoint=cfg.checkpoint, device=device)
    run.model = decoding_model(run.model, cfg.precision)
    if cfg.src_file:
        sources = read_lines(cfg.src_file)
        references = read_lines(cfg.ref_file) if cfg.ref_file else None
        if references is not None and len(references) != len(sources):
            raise DataError(
                f"line counts differ: {cfg.src_file} has {len(sources)} lines, {cfg.ref_file} has {len(references)}"
            )
    else:
        if cfg.ref_file:
            raise DataError(
                "ref_file needs src_file; to score a split use split=test|validation alone"
            )
        sources, references = load_split_texts(run.config.data, cfg.split)
    if cfg.limit is not None:
        sources = sources[: cfg.limit]
        references = references[: cfg.limit] if references is not None else None
    out_dir = Path(cfg.run_dir) / "eval" / evaluation_name(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    hyps = decode_texts(
        run,
        sources,
        cfg.decode,
        device=device,
        amp_dtype=amp_dtype,
        need_attn=bool(cfg.dump_alignments) and run.model.has_alignment,
    )
    seconds = time.perf_counter() - t0
    texts = run.tokenizer.decode_tgt([h.tokens for h in hyps])
    (out_dir / "hyps.txt").write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    metrics = {
        "run_dir": str(cfg.run_dir),
        "checkpoint": str(run.checkpoint),
        "source": str(cfg.src_file or cfg.split),
        "sentences": len(sources),
        "beam_size": cfg.decode.beam_size,
        "alpha": cfg.decode.alpha,
        "precision": option_value(cfg.precision),
        "decode_s": round(seconds, 2),
        "sentences_per_s": round(len(sources) / max(seconds, 1e-9), 1),
        "output_tokens_per_s": round(sum(len(h.tokens) + 1 for h in hyps) / max(seconds, 1e-9), 1),
    }
    if references is not None:
        scores = corpus_scores(texts, references)
        metrics |= {
            k: scores[k] for k in ("bleu", "chrf", "bleu_lc", "signature", "chrf_signature")
        }
    if cfg.dump_alignments:
        from .alignments import dump_alignments

        metrics["alignments"] = dump_alignments(
            run.tokenizer,
            sources,
            hyps,
            out_dir,
            name=cfg.split if not cfg.src_file else "file",
            has_alignment=run.model.has_alignment,
            hard=cfg.alignment.hard,
            threshold=cfg.alignment.threshold,
            plot_ids=cfg.alignment.plot_ids,
            plot_first=cfg.alignment.plot_first,
        )
    if cfg.gold_alignments:
        metrics |= gold_alignment_scores(
            run, sources, references, cfg, device=device, amp_dtype=amp_dtype
        )
        print(
            f"AER {metrics['aer']:.4f} precision {metrics['align_precision']:.4f} recall {metrics['align_recall']:.4f}"
        )
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    summary = f"{metrics['source']}: {len(sources)} sentences, beam {cfg.decode.beam_size}, {metrics['decode_s']}s"
    if references is not None:
        summary += (
            f" | BLEU {metrics['bleu']:.2f} chrF {metrics['chrf']:.2f} | {metrics['signature']}"
        )
    print(summary + f" -> {out_dir}")
    return metrics
