"""The contract shared by every model family, so training and decoding never branch on one.

Every model is a :class:`Seq2Seq`: teacher-forced ``forward`` for training, and for greedy and
beam search ``encode``, ``decode_step`` and ``reorder_state``. The decoding state is the
model's own object: ``encode`` makes it, ``decode_step`` advances it, ``reorder_state``
rearranges its hypothesis rows. Decoders never look inside it; they only say, with a
:class:`RowOrder`, which rows to keep and in what order (the contract of fairseq's
``reorder_incremental_state(state, new_order)``, plus which *sentences* stay, so that a model
can keep its source part once per sentence and copy it only when a sentence leaves).

Rows are hypotheses grouped by sentence: each sentence's rows are consecutive and every
sentence has the same number of them (1 after ``encode`` and in greedy search; the beam size
after beam search expands step 0). What a model shares between a sentence's rows (encoder
memory, projected keys, masks) is its own business; so is a buffer filled up to the current
step (the Transformer's self-attention cache, ``seq2seq.models.kv_cache``).

The output-length cap is part of the contract too: ``max_decode_length`` (None, or the most
decoding steps the model can take, e.g. the Transformer's position table).

A family is also recorded in :mod:`seq2seq.models.registry` with its schema; the class
attributes and class methods below (``own_attention``, ``build`` with ``init_arguments``,
``check_options``, ``label``) are what the rest of the package asks of a family instead of
testing its name.

Token conventions (seq2seq.data.vocab): pad=0, unk=1, bos=2, eos=3. Masks are boolean with
True = real token, everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

# Whatever a model's ``encode`` returns and its ``decode_step`` / ``reorder_state`` take: opaque
# to the decoders, which only pass it back to the model that made it.
DecodingState = Any


@dataclass
class Seq2SeqOutput:
    logits: Tensor | None  # (batch, tgt_len, vocab); None when forward(features_only=True)
    attn_weights: Tensor | None  # (batch, tgt_len, src_len) alignment, or None
    # (batch, tgt_len, out_features): the input of ``output_layer``, when features_only=True
    features: Tensor | None = None
    # Training only, None for most models: a term the model adds to its objective once the
    # targets' likelihood is known (e.g. hard attention's REINFORCE term, which rewards the
    # sampled positions with log p(y | ...)). It takes the plain per-token NLL, (batch,
    # tgt_len) float32, detached, 0 on padding, and returns a scalar summed over the batch like
    # the loss is (the training step adds it before dividing by the tokens). Call it once.
    aux_loss: Callable[[Tensor], Tensor] | None = None


@dataclass
class StepOutput:
    log_probs: Tensor  # (rows, vocab), float32 log-softmax over the target vocabulary
    state: DecodingState  # the state after consuming prev_tokens (the only valid one now)
    attn_weights: Tensor | None  # (rows, src_len) weights of this step, or None


@dataclass(frozen=True)
class RowOrder:
    """How a decoder rearranges the hypothesis rows of a decoding state: the argument of
    :meth:`Seq2Seq.reorder_state`.

    ``rows`` (R',) long: new row i continues the hypothesis in current row ``rows[i]``, which
    always belongs to the same sentence as new row i (a beam's parent, or the sentence's single
    row when beam search expands step 0 to K beams). The new rows are grouped by sentence, each
    sentence's rows consecutive and equally many (R' = G' * n').

    ``sentences`` (n',) long or None: the sentences that stay, as indices into the current
    order of sentences (greedy and beam search drop finished ones, keeping the order). None
    when every sentence stays, in order: then a model's per-sentence part needs no copy.
    """

    rows: Tensor
    sentences: Tensor | None = None


class Seq2Seq(nn.Module):
    """Base class of every encoder-decoder. Subclasses implement the methods below; a family
    (a subclass decorated with ``@register_model``) may override ``own_attention``,
    ``init_arguments`` (how ``build`` turns config dicts into its constructor's arguments),
    ``check_options`` and ``label``."""

    pad_id: int = 0
    bos_id: int = 2
    eos_id: int = 3

    # set by @register_model: the family's name (``model=<name>``) and config dataclass
    name: ClassVar[str]
    schema: ClassVar[type]
    # the attention the family always uses, as metrics.json's ``attention`` names it (the
    # Transformer's "multihead"); None: the one the ``attention`` config group chooses (the
    # RNN), which then names and labels its runs
    own_attention: ClassVar[str | None] = None

    @classmethod
    def build(
        cls,
        options: Mapping[str, Any],
        attention: Mapping[str, Any] | None,
        *,
        src_vocab_size: int,
        tgt_vocab_size: int,
    ) -> Seq2Seq:
        """The model of plain config dicts: ``options`` (the schema's fields; a ``name`` key
        must name this family) and ``attention`` (the attention node, None for none; a family
        with ``own_attention`` ignores it). The constructor, called with the vocabulary sizes
        and :meth:`init_arguments`."""
        options = dict(options)
        family = options.pop("name", cls.name)
        if family != cls.name:
            raise ValueError(f"{cls.__name__}.build was given the options of model={family}")
        arguments = cls.init_arguments(options, dict(attention or {}))
        return cls(src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size, **arguments)

    @classmethod
    def init_arguments(cls, options: dict[str, Any], attention: dict[str, Any]) -> dict[str, Any]:
        """The constructor's keyword arguments other than the vocabulary sizes, of the config
        dicts ``build`` takes (copies, free to change). Default: ``options`` as they are, for a
        family whose constructor takes its schema's fields."""
        return options

    @classmethod
    def check_options(cls, options: Mapping[str, Any], attention: Mapping[str, Any]) -> list[str]:
        """Range problems of a config's ``model`` options (with its ``attention`` node, for a
        family that reads it), one line each (``model.<key> must be ..., got ...``); run before
        any work by seq2seq.validation."""
        return []

    @classmethod
    def label(cls, options: Mapping[str, Any], attention: Mapping[str, Any]) -> str:
        """A run's name in comparison tables (seq2seq-compare groups runs by it); default: the
        family's name."""
        return cls.name

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

    def encode(self, src: Tensor, src_mask: Tensor) -> DecodingState:
        """Run the encoder once; return the initial decoding state: one hypothesis row per
        sentence of ``src`` (batch, src_len), in batch order."""
        raise NotImplementedError

    def decode_step(
        self,
        prev_tokens: Tensor,  # (rows,) last emitted token of each row (BOS at step 0)
        state: DecodingState,
        step: int,  # 0-based index of the target position being predicted
        *,
        need_attn: bool = False,
    ) -> StepOutput:
        """One decoding step for every row of ``state``. It may advance ``state`` in place
        (the Transformer writes its cache), so only the returned state is valid afterwards:
        a state serves one next step, or one ``reorder_state``."""
        raise NotImplementedError

    def reorder_state(self, state: DecodingState, order: RowOrder) -> DecodingState:
        """The state of the rows ``order`` selects, in its order (see :class:`RowOrder`):
        greedy search drops finished sentences, beam search expands each sentence to its K beams
        at step 0, then reorders the beams and drops finished sentences at every step. Takes
        the state the last ``decode_step`` returned; that state is not used again."""
        raise NotImplementedError

    @property
    def max_decode_length(self) -> int | None:
        """The most decoding steps the model can take (None: no limit of its own). Decoders cap
        every sentence's output length there and return longer hypotheses unfinished."""
        return None

    @property
    def has_alignment(self) -> bool:
        """False for models that produce no attention weights (attention=none)."""
        return True

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad)


def at_least(
    options: Mapping[str, Any], key: str, minimum: int, *, optional: bool = False
) -> list[str]:
    """``["model.<key> must be >= minimum, got v"]`` when ``options[key]`` is below ``minimum``
    (or unset and not ``optional``, or not a finite number), else ``[]``: for
    ``check_options``."""
    value = options.get(key)
    if value is None:
        return [] if optional else [f"model.{key} must be set (>= {minimum})"]
    if isinstance(value, float) and not math.isfinite(value):
        return [f"model.{key} must be a finite number, got {value}"]
    return [f"model.{key} must be >= {minimum}, got {value}"] if value < minimum else []


def in_range(
    options: Mapping[str, Any], key: str, low: float, high: float, *, closed: bool
) -> list[str]:
    """``["model.<key> must be in [low, high], got v"]`` (``[low, high)`` unless ``closed``)
    when ``options[key]`` is set and outside, else ``[]``: for ``check_options``."""
    value = options.get(key)
    if value is None or (low <= value <= high if closed else low <= value < high):
        return []
    interval = f"[{low:g}, {high:g}]" if closed else f"[{low:g}, {high:g})"
    return [f"model.{key} must be in {interval}, got {value}"]


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """(batch,) lengths -> (batch, max_len) bool mask, True = real token."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]
