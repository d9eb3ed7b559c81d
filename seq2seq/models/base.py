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
    logits: Tensor  # (batch, tgt_len, vocab)
    attn_weights: Tensor | None  # (batch, tgt_len, src_len) alignment, or None


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

    def forward(
        self,
        src: Tensor,  # (batch, src_len) token ids
        src_mask: Tensor,  # (batch, src_len) bool, True = real token
        tgt_in: Tensor,  # (batch, tgt_len) BOS + target ids (teacher forcing)
        tgt_mask: Tensor,  # (batch, tgt_len) bool
        *,
        need_attn: bool = False,
    ) -> Seq2SeqOutput:
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

    @property
    def has_alignment(self) -> bool:
        """False for models that produce no attention weights (attention=none)."""
        return True

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def reorder_state(state: DecoderState, index: Tensor) -> DecoderState:
    """Select/reorder the batch dimension of every tensor in ``state`` (beam search)."""
    return {key: value.index_select(0, index) for key, value in state.items()}


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """(batch,) lengths -> (batch, max_len) bool mask, True = real token."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]
