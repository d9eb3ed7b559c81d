"""The contract shared by both model families, so training and decoding never branch on one.

Every model is a :class:`Seq2Seq`: teacher-forced ``forward`` for training, and
``encode`` + ``decode_step`` for greedy and beam search. Decoder state is a flat
``dict[str, Tensor]`` whose tensors all have the batch (or batch*beam) dimension first, so
beam search reorders any family's state with ``index_select(0, idx)`` and never looks inside.

Token conventions (seq2seq.data.vocab): pad=0, unk=1, bos=2, eos=3. Masks are boolean with
True = real token, everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

DecoderState = dict[str, Tensor]


@dataclass
class Seq2SeqOutput:
    logits: Tensor | None  # (batch, tgt_len, vocab); None when forward(features_only=True)
    attn_weights: Tensor | None  # (batch, tgt_len, src_len) alignment, or None
    # (batch, tgt_len, out_features): the input of ``output_layer``, when features_only=True
    features: Tensor | None = None


@dataclass
class StepOutput:
    log_probs: Tensor  # (batch, vocab), float32 log-softmax over the target vocabulary
    state: DecoderState  # the state after consuming prev_tokens
    attn_weights: Tensor | None  # (batch, src_len) weights of this step, or None


class Seq2Seq(nn.Module):
    """Base class of every encoder-decoder. Subclasses implement the three methods below."""

    pad_id: int = 0
    bos_id: int = 2
    eos_id: int = 3

    # Decoder-state keys that depend only on the source sentence (encoder memory, its mask,
    # projected attention keys): ``decode_step`` passes them through unchanged, and every beam of
    # a sentence holds the same rows, so beam search re-selects them only when a sentence leaves
    # the batch instead of copying them at every step (see ``reorder_beams``).
    source_state_keys: frozenset[str] = frozenset()

    # True when ``decode_step`` takes G*n hypothesis rows over a source state of n rows (each
    # sentence's G rows consecutive): beam search then keeps one copy of the source state per
    # sentence instead of one per beam, and never copies it to the beams.
    beam_shares_source: bool = False

    def forward(
        self,
        src: Tensor,  # (batch, src_len) token ids
        src_mask: Tensor,  # (batch, src_len) bool, True = real token
        tgt_in: Tensor,  # (batch, tgt_len) BOS + target ids (teacher forcing)
        tgt_mask: Tensor,  # (batch, tgt_len) bool
        *,
        need_attn: bool = False,
        features_only: bool = False,
    ) -> Seq2SeqOutput:
        """Teacher-forced pass. ``features_only=True`` stops before the vocabulary projection
        and returns ``features`` (logits=None): training computes the projection and the loss
        together in chunks (``training.loss.output_losses``) instead of materialising
        (batch, tgt_len, vocab) logits."""
        raise NotImplementedError

    @property
    def output_layer(self) -> nn.Linear:
        """The final (out_features -> vocab) projection that turns ``features`` into logits."""
        raise NotImplementedError

    def encode(self, src: Tensor, src_mask: Tensor) -> DecoderState:
        """Run the encoder once; return the initial decoder state (all tensors batch-first,
        including whatever the decoder needs from the source, e.g. memory, mask, projected keys)."""
        raise NotImplementedError

    def decode_step(
        self,
        prev_tokens: Tensor,  # (batch,) last emitted token (BOS at step 0)
        state: DecoderState,
        step: int,  # 0-based index of the target position being predicted
        *,
        need_attn: bool = False,
    ) -> StepOutput:
        raise NotImplementedError

    def select_rows(
        self, state: DecoderState, rows: Tensor, source_rows: Tensor | None, *, step: int
    ) -> DecoderState:
        """Greedy's and beam search's row selection of the state ``decode_step(..., step)``
        returned: ``rows`` for the per-hypothesis tensors, ``source_rows`` (or nothing, when
        None) for ``source_state_keys``; see :func:`reorder_beams`. A model whose state holds
        buffers filled only up to ``step`` overrides this to copy just the filled part."""
        return reorder_beams(state, rows, source_rows, self.source_state_keys)

    @property
    def has_alignment(self) -> bool:
        """False for models that produce no attention weights (attention=none)."""
        return True

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def reorder_state(state: DecoderState, index: Tensor) -> DecoderState:
    """Select/reorder the batch dimension of every tensor in ``state`` (beam search)."""
    return {key: value.index_select(0, index) for key, value in state.items()}


def reorder_beams(
    state: DecoderState,
    beam_rows: Tensor,
    source_rows: Tensor | None,
    source_keys: frozenset[str],
) -> DecoderState:
    """Beam search's reorder: ``beam_rows`` selects the per-hypothesis tensors; the source
    tensors (``source_keys``) are the same for every beam of a sentence, so they only need
    ``source_rows`` (any row of each kept sentence, one per new row), or nothing at all
    (``None``) when no sentence left the batch.
    """
    reordered = {}
    for key, value in state.items():
        if key not in source_keys:
            reordered[key] = value.index_select(0, beam_rows)
        elif source_rows is not None:
            reordered[key] = value.index_select(0, source_rows)
        else:
            reordered[key] = value
    return reordered


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """(batch,) lengths -> (batch, max_len) bool mask, True = real token."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]
