"""The attention interface shared by every variant (docs/layout.md: a variant is one file).

Shapes used throughout (B = batch, T = target rows attended at once, S = source length):

    query   (B, T, query_size)   decoder state(s); T = 1 for one decoder step, T = tgt_len for a
                                 whole teacher-forced sequence (Luong wiring without input feeding)
    keys    (B, S, key_size)     encoder states
    keys_p  (B, S, *)            ``prepare(keys)``: whatever the variant precomputes per sentence
    values  (B, S, value_size)   what the weights average (the encoder states, in the RNN model)
    mask    (B, S) bool          True = real source token
    scores  (B, T, S)            energies
    weights (B, T, S)            exactly 0 on padding
    context (B, T, value_size)   (B, T, 0) for ``none``

``prepare`` runs once per source batch and its output is kept by the caller (never on
``self``), so beam search can reorder it together with the rest of the decoder state.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

import torch
from omegaconf import MISSING
from torch import Tensor, nn


class Wiring(str, Enum):
    """How attention is wired into the RNN decoder (see seq2seq.models.rnn)."""

    bahdanau = "bahdanau"  # attend with s_{t-1}, context feeds the recurrent step
    luong = "luong"  # attend with h_t, attentional state tanh(W_c [c; h]) + input feeding


@dataclass
class AttentionConfig:
    """Fields every variant's schema has; a variant's schema subclasses this, sets ``name`` to
    its registered name and adds its options (the keyword arguments of its constructor)."""

    name: str = MISSING
    wiring: Wiring | None = None  # None: the default of the variant's paper
    input_feeding: bool = True  # luong wiring: feed the attentional state into the next step


def at_least(options: Mapping[str, Any], key: str, minimum: int, *, optional: bool = False):
    """``["attention.<key> must be >= minimum, got v"]`` when ``options[key]`` is below
    ``minimum`` (or unset and not ``optional``), else ``[]``: for ``check_options``."""
    value = options.get(key)
    if value is None:
        return [] if optional else [f"attention.{key} must be set (>= {minimum})"]
    return [f"attention.{key} must be >= {minimum}, got {value}"] if value < minimum else []


def enum_value(option: Any) -> Any:
    """An option's plain value: an enum member's value (a DictConfig holds choices as enum
    members), else the option as given."""
    return getattr(option, "value", option)


def check_choice(key: str, option: Any, valid: Sequence[str]) -> Any:
    """``option``'s plain value when it is one of ``valid``; otherwise ValueError
    ``unknown <key> 'x'; valid: a, b`` (key as users write it: ``attention.score``, or
    ``attention`` for the variant's name), the one wording of every attention choice."""
    value = enum_value(option)
    if value not in valid:
        raise ValueError(f"unknown {key} {value!r}; valid: {', '.join(valid)}")
    return value


@dataclass
class AttentionState:
    """Per-call information a variant may need besides query and keys.

    step:        decoder step of query row 0; row i of a (B, T, *) query is step ``step + i``
                 (local-m centres its window on it).
    src_lengths: (B,) long, real source lengths; None -> computed from the mask when needed.
    extras:      room for later variants (e.g. a coverage vector (B, S)), keyed by name.
    """

    step: int = 0
    src_lengths: Tensor | None = None
    extras: dict[str, Tensor] = field(default_factory=dict)

    def lengths(self, mask: Tensor) -> Tensor:
        """(B,) source lengths, from ``src_lengths`` or the (B, S) mask."""
        return self.src_lengths if self.src_lengths is not None else mask.sum(-1)


def float32_region(like: Tensor) -> contextlib.AbstractContextManager:
    """Autocast off on ``like``'s device while inside, when it is on; else a no-op."""
    device = like.device.type
    if torch.is_autocast_enabled(device):
        return torch.autocast(device, enabled=False)
    return contextlib.nullcontext()


def to_float32(x: Tensor) -> Tensor:
    """A floating-point tensor as float32 (the same tensor when it already is)."""
    return x.float() if x.is_floating_point() and x.dtype != torch.float32 else x


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax of (B, T, S) ``scores`` over real positions of the (B, S) or (B, T, S) ``mask``.

    Masked positions get exactly 0. A row with no real position (only possible for a
    restricted mask, e.g. an empty local window) is all zeros instead of NaN.
    """
    mask = mask if mask.dim() == scores.dim() else mask.unsqueeze(1)  # (B, 1|T, S)
    scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    return torch.softmax(scores, dim=-1).masked_fill(~mask, 0.0)


class Attention(nn.Module):
    """Base class: subclasses write ``score`` (and, rarely, ``prepare``/``normalize``).

    Constructors are keyword-only and receive ``query_size``, ``key_size`` and the
    variant's options (the fields of its ``*AttentionConfig``).

    Class attributes and classmethods read by the rest of the package (which never names a
    variant):
      name, schema, presets   set by ``@register_attention`` (seq2seq.modules.attention.registry)
      paper_wiring  "bahdanau" | "luong": the decoder wiring of the variant's paper, used
                    when ``attention.wiring`` is null (the RNN model).
      has_weights   False only for ``none`` (no alignment is produced).
      reads_linear_weights  True if the module reads its nn.Linear children's ``weight``
                    directly (a quantized Linear has none): int8 decoding keeps them float.
      check_options(options)  range problems of a config's options, one line each
                    (seq2seq.validation, before any work).
      label(options)  the variant's short name in comparison tables (seq2seq.compare).
      compares_query_and_keys(options)  the reason key_size must equal query_size, or None
                    (seq2seq.validation and the RNN builder refuse a mismatch).
      auxiliary_loss(tgt_mask)  after a training forward pass, the variant's own term of the
                    objective as a function of the per-token NLL, or None (the default; hard
                    attention's REINFORCE term is one). The RNN model returns it as its
                    output's ``aux_loss``, which the training step adds.
      presets entries may hold ``model.<key>`` options a preset needs besides its own
                    (e.g. ``"model.split_directions": True``), see the registry.

    Every variant's scores and weights are computed in float32 (``attention_weights``).
    """

    name: ClassVar[str]
    schema: ClassVar[type[AttentionConfig]]
    presets: ClassVar[dict[str, dict[str, Any]]]
    paper_wiring: ClassVar[str] = "luong"
    has_weights: ClassVar[bool] = True
    reads_linear_weights: ClassVar[bool] = False

    def __init__(self, *, query_size: int, key_size: int, value_size: int | None = None) -> None:
        super().__init__()
        self.query_size = query_size
        self.key_size = key_size
        self.value_size = key_size if value_size is None else value_size

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[str]:
        """Problems of the config ``options`` (the attention node: name, wiring, ... and the
        variant's fields) that a type cannot express, as ``attention.<key> must be ...`` lines;
        [] when there are none. See :func:`at_least`."""
        return []

    @classmethod
    def label(cls, options: Mapping[str, Any]) -> str:
        """Short name of a run with these options in comparison tables, e.g. ``additive``;
        ``options`` is the attention node of a run's saved config (plain dict). seq2seq.compare
        appends `` (wiring)`` when the wiring is set."""
        return cls.name

    @classmethod
    def compares_query_and_keys(cls, options: Mapping[str, Any]) -> str | None:
        """With these options, does the score compare query and keys directly, with no
        parameter between them (so key_size must equal query_size)? Then the reason, as the
        start of a sentence naming the option (``attention.score=dot compares decoder and
        encoder states directly``), else None. The model builder and seq2seq.validation refuse
        a width mismatch with it, before any work; nothing projects the keys to fit."""
        return None

    def observe_source(self, mask: Tensor) -> None:
        """Called by the model once per source batch with its (B, S) mask (one row per
        sentence, before any beam expansion); does nothing by default. A variant that can
        address only some source positions says so here (location attention warns)."""

    def auxiliary_loss(self, tgt_mask: Tensor) -> Callable[[Tensor], Tensor] | None:
        """Called by the model after each teacher-forced forward pass (every call since the
        last ``observe_source``), with its (B, T) bool target mask: None (the default), or a
        function of the per-token NLL (B, T) (float32, detached, 0 on padding) returning this
        variant's scalar term of the objective, summed over the batch like the loss. A
        variant whose training forward samples (hard attention) rewards its samples with it;
        it is for training: in eval mode it is None."""
        return None

    @property
    def context_size(self) -> int:
        """Last dimension of the context this module returns."""
        return self.value_size

    def prepare(self, keys: Tensor) -> Tensor:
        """(B, S, key_size) -> projected keys (B, S, *); identity unless overridden."""
        return keys

    def score(self, query: Tensor, keys_p: Tensor, state: AttentionState) -> Tensor:
        """(B, T, query_size), (B, S, *) -> energies (B, T, S)."""
        raise NotImplementedError

    def normalize(self, scores: Tensor, mask: Tensor, state: AttentionState) -> Tensor:
        """(B, T, S) energies, (B, S) mask -> weights (B, T, S); masked softmax by default."""
        return masked_softmax(scores, mask)

    def step_state(self, query: Tensor, mask: Tensor, state: AttentionState) -> AttentionState:
        """The state ``score`` and ``normalize`` see for this call; ``state`` by default.
        A variant that derives per-call values from the query (local-p's centres) returns a
        copy with them in ``extras``. Runs in float32, like the score."""
        return state

    def attention_weights(
        self, query: Tensor, keys_p: Tensor, mask: Tensor, state: AttentionState
    ) -> Tensor:
        """``step_state`` -> ``score`` -> ``normalize``: (B, T, S) weights, always float32.

        Under any autocast, the scores and their softmax run in float32 with autocast off
        (they are small; a bf16 softmax over large energies rounds most weights to 0), on
        float32 copies of the query and the prepared keys, and every variant inherits this."""
        with float32_region(query):
            query, keys_p = to_float32(query), to_float32(keys_p)
            state = self.step_state(query, mask, state)
            scores = to_float32(self.score(query, keys_p, state))
            return to_float32(self.normalize(scores, mask, state))

    def forward(
        self,
        query: Tensor,  # (B, T, query_size)
        keys_p: Tensor,  # (B, S, *) from prepare()
        values: Tensor,  # (B, S, value_size)
        mask: Tensor,  # (B, S) bool, True = real token
        state: AttentionState | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """-> context (B, T, value_size), float32 weights (B, T, S). The weights are computed
        in float32 (``attention_weights``); the context bmm runs in the values' dtype."""
        state = AttentionState() if state is None else state
        weights = self.attention_weights(query, keys_p, mask, state)
        context = torch.bmm(weights.to(values.dtype), values)  # (B, T, value_size)
        return context, weights

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}, key_size={self.key_size}"
