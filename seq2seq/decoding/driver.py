"""Decode a whole list of sentences: length-sorted batches, greedy or beam, original order back."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from seq2seq.decoding.beam import beam_search
from seq2seq.decoding.common import Hypothesis, check_beam_args, max_output_lengths
from seq2seq.decoding.greedy import greedy_search
from seq2seq.models.base import Seq2Seq


def make_batches(
    lengths: Sequence[int], *, batch_size: int | None = 64, max_tokens: int | None = None
) -> list[list[int]]:
    """Group sentence indices, longest first, into batches of similar length.

    A batch holds at most ``batch_size`` sentences and at most ``max_tokens`` source tokens
    counting padding (its longest sentence times its size; beam search multiplies the decoder
    batch by the beam size on top of this). A single sentence longer than ``max_tokens`` still
    gets a batch of its own.
    """
    if batch_size is None and max_tokens is None:
        raise ValueError("give batch_size or max_tokens (or both)")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    # Longest first: the most memory-hungry batch runs first, so an out-of-memory shows at once.
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current:
            grown = len(current) + 1
            too_many = batch_size is not None and grown > batch_size
            # current[0] is the longest sentence of the batch, so it sets the padded width
            too_wide = max_tokens is not None and grown * lengths[current[0]] > max_tokens
            if too_many or too_wide:
                batches.append(current)
                current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def pad_batch(
    sentences: Sequence[Sequence[int]], pad_id: int, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    """Token id lists -> (batch, max_len) long ids right-padded with ``pad_id``, and the
    (batch, max_len) bool mask, True = real token."""
    lengths = torch.tensor([len(s) for s in sentences], dtype=torch.long)
    width = int(lengths.max())
    ids = torch.full((len(sentences), width), pad_id, dtype=torch.long)
    for row, sentence in enumerate(sentences):
        ids[row, : len(sentence)] = torch.as_tensor(sentence, dtype=torch.long)
    mask = torch.arange(width)[None, :] < lengths[:, None]
    return ids.to(device), mask.to(device)


def translate_batches(
    model: Seq2Seq,
    src_ids: Sequence[Sequence[int]],
    *,
    beam_size: int = 5,
    batch_size: int | None = 64,
    max_tokens: int | None = None,
    alpha: float = 0.6,
    max_len_ratio: float = 1.5,
    max_len_offset: int = 10,
    nbest: int = 1,
    need_attn: bool = False,
    device: torch.device | str | None = None,
) -> list[Hypothesis] | list[list[Hypothesis]]:
    """Translate every source sentence; results come back in the order of ``src_ids``.

    Args:
        model: any :class:`Seq2Seq`, already on ``device``; it is put in eval mode for the call
            and its previous train/eval mode restored afterwards.
        src_ids: source token ids per sentence, each ending with EOS (``[eos]`` alone is an
            empty sentence and is fine).
        beam_size: 1 runs greedy search, larger runs beam search.
        batch_size, max_tokens: batch limits, see :func:`make_batches`.
        alpha, max_len_ratio, max_len_offset, nbest, need_attn: see :func:`beam_search`
            (greedy search ignores alpha: its score is the plain log-prob).
        device: where the source tensors go; default the device of the model's parameters.

    Returns:
        One :class:`Hypothesis` per sentence when ``nbest == 1``, else one best-first list of
        ``nbest`` hypotheses per sentence.
    """
    check_beam_args(beam_size, nbest)
    for index, sentence in enumerate(src_ids):
        if len(sentence) == 0:
            raise ValueError(
                f"source sentence {index} is empty; every source must end with EOS "
                f"(id {model.eos_id})"
            )
    if device is None:
        first_param = next(model.parameters(), None)
        device = first_param.device if first_param is not None else torch.device("cpu")

    results: list = [None] * len(src_ids)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():  # not inference_mode: see greedy_search
            lengths = [len(s) for s in src_ids]
            for batch in make_batches(lengths, batch_size=batch_size, max_tokens=max_tokens):
                src, src_mask = pad_batch([src_ids[i] for i in batch], model.pad_id, device)
                max_len = max_output_lengths(src_mask, max_len_ratio, max_len_offset)
                if beam_size == 1:
                    hyps = greedy_search(model, src, src_mask, max_len=max_len, need_attn=need_attn)
                    per_sentence = [[hyp] for hyp in hyps]
                else:
                    per_sentence = beam_search(
                        model,
                        src,
                        src_mask,
                        beam_size=beam_size,
                        alpha=alpha,
                        nbest=nbest,
                        need_attn=need_attn,
                        max_len=max_len,
                    )
                for index, hyps in zip(batch, per_sentence, strict=True):
                    results[index] = hyps[0] if nbest == 1 else hyps
    finally:
        model.train(was_training)
    return results
