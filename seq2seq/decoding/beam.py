"""Batched beam search shared by every model family.

All active sentences' beams advance together: one ``decode_step`` call per step on a
(active_sentences * beam_size) batch. Bookkeeping lives in tensors; Python only touches the
hypotheses it returns.

The decoding state is the model's (``seq2seq.models.base``): beam search never looks into it.
It only tells the model, with a ``RowOrder``, which row each new row continues and which
sentences stay, through one method, ``model.reorder_state``: at step 0 to expand each sentence's
single row to its K beams, then at every step to reorder the beams and drop the sentences that
are done. What that costs is the model's business: e.g. its source part (encoder memory,
projected keys) is the same for every beam of a sentence, so the RNN copies it only when a
sentence leaves, and the Transformer keeps one row per sentence for all its beams.

How a step works (``n`` active sentences, ``K`` beams, ``V`` target words):

1. ``decode_step`` on the n*K rows of *layout t* (the rows fed at step t) gives (n*K, V)
   log-probs; the candidates' raw scores are beam score + log-prob, flattened to (n, K*V).
2. One ``topk(2K)`` per sentence. Among those, EOS candidates ranked in the first K become
   finished hypotheses; the first K non-EOS candidates become the next beams (there are always
   K of them, since each beam has a single EOS candidate). Keeping the beam full of live
   hypotheses is what makes beam size 1 exactly greedy search.
3. A sentence is done when it has K finished hypotheses, or when its nbest-th best finished
   score can no longer be beaten (every live raw score only decreases, so a live hypothesis
   can at best reach ``raw / lp(max_len)``), or when it reaches its max length. Done sentences
   leave the active batch: their rows are dropped in the same ``reorder_state`` that reorders
   the beams.

Instead of copying every beam's token and attention history each step (quadratic in length,
and in length * src_len for attention), we keep per-step back-pointers and rebuild only the
returned hypotheses at the end, in one vectorised backward pass over the steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from seq2seq.decode_defaults import ALPHA, BEAM_SIZE, MAX_LEN_OFFSET, MAX_LEN_RATIO
from seq2seq.decoding.common import (
    Hypothesis,
    ban_special_tokens_,
    length_penalty,
    max_output_lengths,
    resolve_max_len,
    top_k,
)
from seq2seq.models.base import RowOrder, Seq2Seq


@dataclass
class _Candidates:
    """Ended hypotheses collected in one step (finished with EOS, or cut at max length).

    A hypothesis is identified by its last step, its parent row in that step's layout and its
    last token; the rest of it is recovered from the back-pointers at the end.
    """

    sentence: Tensor  # (m,) index of the sentence in the input batch
    raw: Tensor  # (m,) sum of log-probs
    score: Tensor  # (m,) raw / length penalty
    end_step: Tensor  # (m,) step of the last token
    parent_row: Tensor  # (m,) row in layout end_step that emitted the last token
    last_token: Tensor  # (m,)
    finished: Tensor  # (m,) bool: last token is EOS

    @classmethod
    def pick(
        cls,
        chosen: Tensor,  # (n, c) bool: which of each sentence's c candidates end here
        sentence_ids: Tensor,  # (n,) input index of each active sentence
        raw_scores: Tensor,  # (n, c)
        parent_rows: Tensor,  # (n, c)
        tokens: Tensor,  # (n, c)
        *,
        step: int,
        penalty: float,
        finished: bool,
    ) -> _Candidates:
        sent_idx, cand_idx = chosen.nonzero(as_tuple=True)
        raw = raw_scores[sent_idx, cand_idx]
        return cls(
            sentence=sentence_ids[sent_idx],
            raw=raw,
            score=raw / penalty,
            end_step=torch.full_like(sent_idx, step),
            parent_row=parent_rows[sent_idx, cand_idx],
            last_token=tokens[sent_idx, cand_idx],
            finished=torch.full_like(sent_idx, finished, dtype=torch.bool),
        )


# no_grad, not inference_mode: autocast's weight-cast cache skips inference tensors, so under
# inference_mode every bf16 decoding step re-cast every weight (measured: 3 copies per Linear call).
@torch.no_grad()
def beam_search(
    model: Seq2Seq,
    src: Tensor,
    src_mask: Tensor,
    *,
    beam_size: int = BEAM_SIZE,
    alpha: float = ALPHA,
    max_len_ratio: float = MAX_LEN_RATIO,
    max_len_offset: int = MAX_LEN_OFFSET,
    nbest: int = 1,
    need_attn: bool = False,
    max_len: Tensor | int | None = None,
) -> list[list[Hypothesis]]:
    """Beam search over a batch; returns ``nbest`` hypotheses per sentence, in batch order.

    Args:
        src: (batch, src_len) source token ids, right-padded.
        src_mask: (batch, src_len) bool, True = real token.
        beam_size: live hypotheses per sentence (>= 1; 1 gives exactly greedy search).
            Unchecked here, as ``nbest``: :func:`~seq2seq.decoding.driver.translate_batches`,
            the decoding library's entry point, checks both once per call.
        alpha: GNMT length penalty exponent; hypotheses are ranked by
            ``log_prob / ((5 + length) / 6) ** alpha`` with length = decoding steps incl. EOS
            (0: by the plain log-prob).
        max_len_ratio, max_len_offset: per-sentence limit on decoding steps,
            ``ceil(ratio * src_len) + offset`` (src_len counts the source EOS).
        nbest: hypotheses returned per sentence (1 <= nbest <= beam_size).
        need_attn: also return each hypothesis' (steps, real src_len) attention matrix.
        max_len: overrides ratio/offset with an int or a (batch,) tensor of step limits.
            Either way capped at ``model.max_decode_length`` when that is not None.

    Each sentence's list is sorted best first: finished hypotheses (ended with EOS) by score,
    then, only if fewer than ``nbest`` finished, unfinished ones cut at the max length.
    """
    num_sentences = src.size(0)
    device = src.device
    if max_len is None:
        max_len = max_output_lengths(src_mask, max_len_ratio, max_len_offset)
    sent_max_len = resolve_max_len(
        max_len, num_sentences, device, model
    )  # (n,) of active sentences
    max_len_penalty = length_penalty(sent_max_len, alpha)  # (n,) largest penalty reachable
    neg_inf = float("-inf")
    beam_positions = torch.arange(beam_size, device=device)

    # The encoder and the first decoder step run once per sentence (every beam starts from the
    # same BOS); the first step's output and state are then copied to each sentence's K rows.
    state = model.encode(src, src_mask)
    to_beams = torch.arange(num_sentences, device=device).repeat_interleave(beam_size)  # (n*K,)

    sentence_ids = torch.arange(num_sentences, device=device)  # (n,) input index per sentence
    # Only beam 0 is live at step 0, so the K copies of BOS do not yield K identical beams.
    beam_scores = torch.full((num_sentences, beam_size), neg_inf, device=device)
    beam_scores[:, 0] = 0.0
    prev_tokens = torch.full((num_sentences,), model.bos_id, dtype=torch.long, device=device)
    num_finished = torch.zeros(num_sentences, dtype=torch.long, device=device)
    # best nbest finished scores per sentence, sorted descending, -inf where none yet
    nbest_finished_scores = torch.full((num_sentences, nbest), neg_inf, device=device)

    # Back-pointers: tokens_fed[t] (rows_t,) are the tokens fed at step t (layout t);
    # parents[t] (rows_{t+1},) maps layout t+1 rows to their layout t rows;
    # attn_steps[t] (rows_t, src_width) are the attention weights of step t.
    tokens_fed: list[Tensor] = []
    parents: list[Tensor] = []
    attn_steps: list[Tensor] = []
    ended: list[_Candidates] = []

    for step in range(int(sent_max_len.max())):
        num_active = sentence_ids.numel()
        out = model.decode_step(prev_tokens, state, step, need_attn=need_attn)
        if step == 0:  # one row per sentence so far: copy it to the sentence's K beams
            out.log_probs = out.log_probs.index_select(0, to_beams)
            if out.attn_weights is not None:
                out.attn_weights = out.attn_weights.index_select(0, to_beams)
            out.state = model.reorder_state(out.state, RowOrder(to_beams))  # every sentence stays
            prev_tokens = prev_tokens.index_select(0, to_beams)
        log_probs = ban_special_tokens_(out.log_probs, model)  # (n*K, V)
        vocab_size = log_probs.size(1)
        tokens_fed.append(prev_tokens)
        if need_attn and out.attn_weights is not None:
            attn_steps.append(out.attn_weights.float())

        # in place: log_probs is this step's own fresh tensor
        candidate_scores = log_probs.view(num_active, beam_size, -1).add_(beam_scores.unsqueeze(2))
        num_candidates = min(2 * beam_size, beam_size * vocab_size)
        top_scores, top_flat = top_k(candidate_scores.view(num_active, -1), num_candidates)
        top_tokens = top_flat % vocab_size
        # parent row in layout t: sentence offset + beam index
        top_rows = (
            top_flat // vocab_size + beam_size * torch.arange(num_active, device=device)[:, None]
        )
        top_is_eos = top_tokens == model.eos_id
        step_penalty = length_penalty(step + 1, alpha)

        # 1. EOS candidates within the top K are finished hypotheses. Counted on the device
        # whether or not there are any (no host sync); picked below, once the step's flags
        # are read.
        new_finished = top_is_eos & (top_scores > neg_inf)
        new_finished[:, beam_size:] = False
        num_finished += new_finished.sum(dim=1)
        finished_step_scores = torch.where(new_finished, top_scores / step_penalty, neg_inf)
        nbest_finished_scores = (
            torch.cat([nbest_finished_scores, finished_step_scores], dim=1)
            .topk(nbest, dim=1)
            .values
        )

        # 2. The first K non-EOS candidates (a stable sort keeps their score order) are the beams.
        alive_pos = torch.sort(top_is_eos.to(torch.uint8), dim=1, stable=True).indices[
            :, :beam_size
        ]
        alive_scores = top_scores.gather(1, alive_pos)  # (n, K), best first
        alive_tokens = top_tokens.gather(1, alive_pos)
        alive_rows = top_rows.gather(1, alive_pos)

        # 3. Which sentences are done.
        at_max_len = step + 1 >= sent_max_len
        best_reachable = alive_scores[:, 0] / max_len_penalty
        done = (
            at_max_len
            | (num_finished >= beam_size)
            | (nbest_finished_scores[:, -1] >= best_reachable)
        )
        # Sentences ending without nbest finished hypotheses (max length reached) return their
        # live beams as unfinished ones; -inf beams are kept only at position 0 so that every
        # sentence has at least one hypothesis.
        short_of_nbest = done & (num_finished < nbest)
        # the step's one host sync: what ended, whether all or some sentences are done
        any_finished, any_short, all_done, any_done = torch.stack(
            [new_finished.any(), short_of_nbest.any(), done.all(), done.any()]
        ).tolist()
        if any_finished:
            ended.append(
                _Candidates.pick(
                    new_finished,
                    sentence_ids,
                    top_scores,
                    top_rows,
                    top_tokens,
                    step=step,
                    penalty=step_penalty,
                    finished=True,
                )
            )
        if any_short:
            keep_alive = short_of_nbest[:, None] & (
                (alive_scores > neg_inf) | (beam_positions == 0)[None, :]
            )
            ended.append(
                _Candidates.pick(
                    keep_alive,
                    sentence_ids,
                    alive_scores,
                    alive_rows,
                    alive_tokens,
                    step=step,
                    penalty=step_penalty,
                    finished=False,
                )
            )
        if all_done:
            break
        keep = None  # (n',) the sentences that stay; None while every sentence stays
        if any_done:
            keep = (~done).nonzero().squeeze(1)
            sentence_ids = sentence_ids[keep]
            sent_max_len = sent_max_len[keep]
            max_len_penalty = max_len_penalty[keep]
            num_finished = num_finished[keep]
            nbest_finished_scores = nbest_finished_scores[keep]
            alive_scores = alive_scores[keep]
            alive_tokens = alive_tokens[keep]
            alive_rows = alive_rows[keep]

        next_rows = alive_rows.reshape(-1)  # layout t+1 -> layout t
        parents.append(next_rows)
        state = model.reorder_state(out.state, RowOrder(next_rows, sentences=keep))
        prev_tokens = alive_tokens.reshape(-1)
        beam_scores = alive_scores

    chosen = _select_nbest(ended, num_sentences, nbest)
    return _build_hypotheses(chosen, tokens_fed, parents, attn_steps, src_mask, model)


def _select_nbest(ended: list[_Candidates], num_sentences: int, nbest: int) -> _Candidates:
    """Keep each sentence's ``nbest`` best ended hypotheses, grouped by sentence in input order,
    best first (finished before unfinished, then by score)."""
    pool = _Candidates(
        *(torch.cat([getattr(c, name) for c in ended]) for name in _Candidates.__dataclass_fields__)
    )
    # Successive stable sorts = a lexicographic sort on (sentence, not finished, -score).
    order = pool.score.argsort(descending=True, stable=True)
    order = order[(~pool.finished[order]).to(torch.uint8).argsort(stable=True)]
    order = order[pool.sentence[order].argsort(stable=True)]
    sorted_sentences = pool.sentence[order]
    counts = torch.bincount(sorted_sentences, minlength=num_sentences)
    group_starts = counts.cumsum(0) - counts
    rank_in_sentence = (
        torch.arange(order.numel(), device=order.device) - group_starts[sorted_sentences]
    )
    chosen = order[rank_in_sentence < nbest]
    return _Candidates(*(getattr(pool, name)[chosen] for name in _Candidates.__dataclass_fields__))


def _build_hypotheses(
    chosen: _Candidates,
    tokens_fed: list[Tensor],
    parents: list[Tensor],
    attn_steps: list[Tensor],
    src_mask: Tensor,
    model: Seq2Seq,
) -> list[list[Hypothesis]]:
    """Follow the back-pointers of the chosen hypotheses, all at once, from the last step to
    the first; then split them per sentence."""
    num_hyps = chosen.sentence.numel()
    device = chosen.sentence.device
    num_steps = int(chosen.end_step.max()) + 1
    hyp_index = torch.arange(num_hyps, device=device)
    tokens = torch.full((num_hyps, num_steps), model.pad_id, dtype=torch.long, device=device)
    tokens[hyp_index, chosen.end_step] = chosen.last_token
    with_attn = len(attn_steps) > 0
    attn = (
        torch.zeros(num_hyps, num_steps, attn_steps[0].size(1), device=device)
        if with_attn
        else None
    )

    rows = chosen.parent_row.clone()  # row of each hypothesis in layout `step` (once started)
    for step in range(num_steps - 1, -1, -1):
        rows = torch.where(chosen.end_step == step, chosen.parent_row, rows)
        walking = (chosen.end_step >= step).nonzero().squeeze(1)
        walking_rows = rows[walking]
        if attn is not None:
            attn[walking, step] = attn_steps[step][walking_rows]
        if step > 0:
            # the token fed at step s was emitted at step s - 1
            tokens[walking, step - 1] = tokens_fed[step][walking_rows]
            rows[walking] = parents[step - 1][walking_rows]

    token_rows = tokens.tolist()
    lengths = (chosen.end_step + 1).tolist()
    finished_flags = chosen.finished.tolist()
    scores = chosen.score.tolist()
    raws = chosen.raw.tolist()
    sentences = chosen.sentence.tolist()
    src_lengths = src_mask.sum(dim=1).tolist()
    attn_cpu = attn.cpu() if attn is not None else None

    per_sentence: list[list[Hypothesis]] = [[] for _ in range(src_mask.size(0))]
    for h, sentence in enumerate(sentences):
        length, is_finished = lengths[h], finished_flags[h]
        matrix = None
        if attn_cpu is not None:
            matrix = attn_cpu[h, :length, : src_lengths[sentence]].clone()
        per_sentence[sentence].append(
            Hypothesis(
                tokens=token_rows[h][: length - int(is_finished)],
                score=scores[h],
                log_prob=raws[h],
                attn=matrix,
                finished=is_finished,
            )
        )
    return per_sentence
