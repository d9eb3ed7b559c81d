"""Greedy decoding: the arg-max token at every step, for a batch of sentences at once."""

from __future__ import annotations

import torch
from torch import Tensor

from seq2seq.decoding.common import Hypothesis, ban_special_tokens_, resolve_max_len, top_k
from seq2seq.models.base import RowOrder, Seq2Seq


# no_grad, not inference_mode: autocast's weight-cast cache skips inference tensors, so under
# inference_mode every bf16 decoding step re-cast every weight (measured: 3 copies per Linear call).
@torch.no_grad()
def greedy_search(
    model: Seq2Seq,
    src: Tensor,
    src_mask: Tensor,
    *,
    max_len: Tensor | int,
    need_attn: bool = False,
) -> list[Hypothesis]:
    """Decode ``src`` greedily; one :class:`Hypothesis` per sentence, in batch order.

    Args:
        src: (batch, src_len) source token ids, right-padded.
        src_mask: (batch, src_len) bool, True = real token.
        max_len: maximum number of decoding steps (EOS step included), an int for every
            sentence or a (batch,) tensor, e.g. from :func:`max_output_lengths`. A sentence that
            reaches it without EOS is returned with ``finished=False``. Capped at
            ``model.max_decode_length`` (the Transformer's position table).
        need_attn: also return each sentence's (steps, real src_len) attention matrix.

    A sentence leaves the active batch as soon as it emits EOS (``model.reorder_state`` drops
    its row from the decoding state, which greedy search never looks into), so the remaining
    sentences run on a smaller batch instead of decoding padding until the longest one finishes.
    ``score == log_prob`` (no length penalty).
    """
    batch_size, src_width = src.shape
    device = src.device
    max_len = resolve_max_len(max_len, batch_size, device, model)
    num_steps = int(max_len.max())

    state = model.encode(src, src_mask)
    # active[i] = batch index of the sentence decoded in row i of the current state
    active = torch.arange(batch_size, device=device)
    prev_tokens = torch.full((batch_size,), model.bos_id, dtype=torch.long, device=device)

    out_tokens = torch.full((batch_size, num_steps), model.pad_id, dtype=torch.long, device=device)
    log_prob_sums = torch.zeros(batch_size, dtype=torch.float32, device=device)
    out_lengths = torch.zeros(batch_size, dtype=torch.long, device=device)
    finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
    attn: Tensor | None = None  # (batch, num_steps, src_width) once the model returns weights

    for step in range(num_steps):
        out = model.decode_step(prev_tokens, state, step, need_attn=need_attn)
        log_probs = ban_special_tokens_(out.log_probs, model)  # (active, vocab)
        best, best_ids = top_k(log_probs, 1)  # (active, 1) each
        best_log_probs, best_tokens = best[:, 0], best_ids[:, 0]

        out_tokens[active, step] = best_tokens
        log_prob_sums[active] += best_log_probs
        if need_attn and out.attn_weights is not None:
            if attn is None:
                attn = torch.zeros(batch_size, num_steps, src_width, device=device)
            attn[active, step] = out.attn_weights.float()

        is_eos = best_tokens == model.eos_id
        done = is_eos | (step + 1 >= max_len[active])
        if bool(done.any()):
            done_ids = active[done]
            out_lengths[done_ids] = step + 1
            finished[done_ids] = is_eos[done]
            keep_rows = (~done).nonzero().squeeze(1)
            if keep_rows.numel() == 0:
                break
            active = active[keep_rows]
            # one row per sentence: the kept rows are the kept sentences
            state = model.reorder_state(out.state, RowOrder(keep_rows, sentences=keep_rows))
            prev_tokens = best_tokens[keep_rows]
        else:
            state = out.state
            prev_tokens = best_tokens

    return _to_hypotheses(out_tokens, log_prob_sums, out_lengths, finished, attn, src_mask)


def _to_hypotheses(
    out_tokens: Tensor,  # (batch, num_steps)
    log_prob_sums: Tensor,  # (batch,)
    out_lengths: Tensor,  # (batch,) decoding steps, EOS included
    finished: Tensor,  # (batch,) bool
    attn: Tensor | None,  # (batch, num_steps, src_width)
    src_mask: Tensor,  # (batch, src_width)
) -> list[Hypothesis]:
    token_rows = out_tokens.tolist()
    lengths = out_lengths.tolist()
    finished_flags = finished.tolist()
    scores = log_prob_sums.tolist()
    src_lengths = src_mask.sum(dim=1).tolist()
    attn_cpu = attn.cpu() if attn is not None else None
    hyps = []
    for i, (row, length, is_finished, score) in enumerate(
        zip(token_rows, lengths, finished_flags, scores, strict=True)
    ):
        num_tokens = length - int(is_finished)
        # clone: a view would keep the whole batch buffer alive for as long as one hypothesis
        matrix = attn_cpu[i, :length, : src_lengths[i]].clone() if attn_cpu is not None else None
        hyps.append(Hypothesis(row[:num_tokens], score, score, matrix, is_finished))
    return hyps
