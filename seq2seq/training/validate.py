"""Validation during training: loss and perplexity under teacher forcing, greedy BLEU/chrF
through the same decoding code as seq2seq-evaluate, and attention heatmaps for the logger."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..data.batching import BatchPlan
from ..evaluation.bleu import corpus_scores, run_tokenize
from ..evaluation.evaluate import decode_ids
from ..runtime import autocast
from .loss import token_losses
from .setup import TrainingParts


@torch.no_grad()
def validation_loss(parts: TrainingParts, *, max_tokens: int) -> tuple[float, float]:
    """Mean NLL per real target token of the validation split, and its perplexity."""
    model, device = parts.model, parts.runtime.device
    model.eval()
    split = parts.data.splits["validation"]
    plan = BatchPlan(split.src_ids, split.tgt_ids, max_tokens=max_tokens, shuffle=False)
    nll_sum, tokens = 0.0, 0
    for batch in plan.epoch(0):
        batch = batch.to(device)
        with autocast(device, parts.runtime.amp_dtype):
            out = model(batch.src, batch.src_mask, batch.tgt_in, batch.tgt_mask)
        _, nll = token_losses(out.logits, batch.tgt_out)
        nll_sum += float(nll)
        tokens += batch.num_tgt_tokens
    loss = nll_sum / max(tokens, 1)
    return loss, math.exp(min(loss, 50.0))


def validate(
    parts: TrainingParts, *, step: int, decode: Any, trainer_cfg: Any, max_tokens: int
) -> dict:
    """Loss, perplexity and greedy BLEU/chrF on the validation split (main process only; BLEU
    with the run's ``bleu.tokenize``, on the first ``trainer.val_bleu_limit`` sentences when that
    is set).

    Greedy decoding with the ``decode`` batch settings, stopping at ``trainer.val_max_len_ratio``
    times the source length. Draws ``trainer.heatmaps`` sentences' attention to the logger at ``step``.
    Returns ``val_loss``, ``val_ppl``, ``val_bleu``, ``val_chrf``."""
    loss, ppl = validation_loss(parts, max_tokens=max_tokens)
    greedy = {
        "beam_size": 1,
        "alpha": 0.0,
        "max_len_ratio": trainer_cfg.val_max_len_ratio,
        "max_len_offset": decode.max_len_offset,
        "batch_size": decode.batch_size,
        "workers": decode.workers,
    }
    model, split = parts.model, parts.data.splits["validation"]
    heatmaps = trainer_cfg.heatmaps if model.has_alignment else 0
    limit = trainer_cfg.get("val_bleu_limit")  # a fixed subset: the first `limit` sentences
    decoded = decode_ids(
        model,
        parts.data.tokenizer,
        split.src_ids[:limit],
        greedy,
        device=parts.runtime.device,
        amp_dtype=parts.runtime.amp_dtype,
        need_attn=heatmaps > 0,
    )
    scores = corpus_scores(
        decoded.texts, split.tgt_text[:limit], tokenize=run_tokenize(parts.config)
    )
    if heatmaps > 0 and parts.logger.enabled:
        draw_heatmaps(parts, decoded.hyps[:heatmaps], step=step)
    return {
        "val_loss": loss,
        "val_ppl": ppl,
        "val_bleu": scores["bleu"],
        "val_chrf": scores["chrf"],
    }


def draw_heatmaps(parts: TrainingParts, hyps: list, *, step: int) -> None:
    """The first validation sentences' attention matrices as logger figures."""
    if not hyps or hyps[0].attn is None:
        return
    from ..evaluation.alignments import hypothesis_matrix, hypothesis_pieces
    from ..evaluation.heatmap import alignment_figure

    tok = parts.data.tokenizer
    split = parts.data.splits["validation"]
    for i, hyp in enumerate(hyps):
        src_tokens = tok.src_pieces(split.src_ids[i].tolist())
        weights = hypothesis_matrix(hyp, len(src_tokens))
        fig = alignment_figure(weights, src_tokens, hypothesis_pieces(tok, hyp))
        parts.logger.figure(f"attention/val_{i}", fig, step)
