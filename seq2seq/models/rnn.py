"""RNN encoder-decoder with every classic attention behind one interface.

Read top to bottom:

1. ``Encoder``: embedding -> (bi)GRU/LSTM over packed sequences (padding never reaches the
   recurrence) -> outputs (B, S, dirs*H_d) and final states (B, L, dirs*H_d), where the
   per-direction size H_d is H, or H/2 with ``split_directions`` (OpenNMT-py's ``brnn``: the
   encoder's output is then exactly as wide as the decoder, K = H).
2. ``RecurrentCore``: the decoder recurrence. It owns an ``nn.GRU``/``nn.LSTM`` whose input is
   the target embedding, plus a separate weight for a per-step "feed" input (the context for
   Bahdanau wiring, h~_{t-1} for Luong input feeding). The embedding part of layer 0's
   input-to-hidden matmul is computed once for the whole target (``embed_part``); a step adds
   the feed part and runs the cell equations (same gate layout and weights as nn.GRU/LSTM).
   Without a feed (Luong, no input feeding) the whole target runs as ONE nn.GRU/LSTM call.
3. ``BahdanauDecoder`` and ``LuongDecoder``: the two wirings, on ``RecurrentDecoder`` (the
   attention, the recurrence, the input feed's width). Each has ``forward`` (teacher forcing
   over the whole target) and ``step`` (one token, for greedy/beam search), both built on the
   same ``_advance``, so they produce the same numbers.
4. ``RNNState``: the decoding state (the source part attention reads, the recurrent state).
   ``RNNSeq2Seq``: glues encoder, bridge, attention and decoder to the Seq2Seq contract; the
   model family ``rnn`` (its schema ``RNNModelConfig``, its constructor's arguments of flat
   config dicts, the attention module built there, range checks and comparison label).

The decoder never names an attention variant: it calls ``attention.prepare`` once per source
batch and ``attention(query, keys_p, values, mask, state)`` per step (or once for all steps).
A variant without attention (``none``) returns a (B, T, 0) context that concatenates like any
other. Shapes: B batch, S source length, T target length, E emb_size, H hidden_size, L layers,
K = dirs*H_d the encoder's output width (the attention's keys and values, unprojected), C
context size, G = gates * H, V target vocab.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..modules.attention import (
    ATTENTIONS,
    Attention,
    AttentionState,
    attention_class,
    build_attention,
)
from ..modules.dropout import Dropout
from .base import RowOrder, Seq2Seq, Seq2SeqOutput, StepOutput, at_least, in_range
from .registry import register_model


class Cell(str, Enum):
    gru = "gru"
    lstm = "lstm"


CELLS = tuple(cell.value for cell in Cell)
WIRINGS = ("bahdanau", "luong")
_RNN_CLASSES = {"gru": nn.GRU, "lstm": nn.LSTM}
# Names of the recurrent state tensors (RNNState.recurrent, in this order), each (B, L, H).
_STATE_NAMES = {"gru": ("hidden",), "lstm": ("hidden", "cell")}

LayerState = tuple[Tensor, ...]  # one layer's (h,) for GRU or (h, c) for LSTM, each (B, H)
Recurrent = tuple[Tensor, ...]  # all layers' (hidden,) or (hidden, cell), each (B, L, H)


def _cpu_autocast_without_native_bf16(x: Tensor) -> bool:
    """Under CPU autocast on a CPU with neither AVX512-BF16 nor AMX."""
    return (
        x.device.type == "cpu"
        and torch.is_autocast_enabled("cpu")
        and not (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    )


def recurrence_in_fp32(x: Tensor) -> bool:
    """Whether nn.GRU/LSTM must run in fp32 here: under CUDA autocast, whose cuDNN RNN wrapper
    casts to fp16 whatever the autocast dtype, so bf16 training would run the recurrence in fp16
    with no gradient scaler (the encoder's gradients, about 1e-5..1e-7 once divided by the
    tokens, flush to zero). In fp32 it uses TF32 tensor cores (runtime.set_matmul_precision
    allows them under autocast), which costs little on a GPU."""
    return x.device.type == "cuda" and torch.is_autocast_enabled("cuda")


def _fp32_state(hx: tuple[Tensor, ...]) -> Tensor | tuple[Tensor, ...]:
    """(h,) or (h, c) in fp32, as nn.GRU (a tensor) or nn.LSTM (a tuple) takes it."""
    hx = tuple(h.float() for h in hx)
    return hx if len(hx) > 1 else hx[0]


# --------------------------------------------------------------------------- encoder


def encoder_direction_size(hidden_size: int, bidirectional: bool, split_directions: bool) -> int:
    """H_d, each direction's hidden size: H, or H/2 when a bidirectional encoder splits H over
    its two directions (ValueError for an odd H then)."""
    if not (bidirectional and split_directions):
        return hidden_size
    if hidden_size % 2:
        raise ValueError(
            f"model.hidden_size must be even with model.split_directions=true, got {hidden_size}"
        )
    return hidden_size // 2


class Encoder(nn.Module):
    """Embedding -> dropout -> (bi)directional GRU/LSTM over packed sequences.

    Each direction has ``hidden_size`` units, or ``hidden_size / 2`` with ``split_directions``
    (bidirectional only), so the output is dirs*H or exactly H wide (``output_size``)."""

    def __init__(
        self,
        *,
        vocab_size: int,
        emb_size: int,
        hidden_size: int,
        num_layers: int,
        cell: str,
        bidirectional: bool,
        dropout: float,
        pad_id: int,
        split_directions: bool = False,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_size, padding_idx=pad_id)
        self.dropout = Dropout(dropout)
        direction_size = encoder_direction_size(hidden_size, bidirectional, split_directions)
        self.rnn = _RNN_CLASSES[cell](
            emb_size,
            direction_size,
            num_layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.num_layers = num_layers
        self.num_directions = 2 if bidirectional else 1
        self.output_size = direction_size * self.num_directions

    def forward(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, list[Tensor]]:
        """src (B, S), lengths (B,) -> outputs (B, S, K) (zeros on padding) and the final
        states [h] (GRU) or [h, c] (LSTM), each (B, L, K) (both directions concatenated),
        K = dirs*H_d."""
        batch, src_len = src.shape
        emb = self.dropout(self.embedding(src))  # (B, S, E)
        fp32 = recurrence_in_fp32(emb)
        packed = pack_padded_sequence(
            emb.float() if fp32 else emb, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        with torch.autocast("cuda", enabled=False) if fp32 else contextlib.nullcontext():
            outputs, finals = self.rnn(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=src_len)
        finals = finals if isinstance(finals, tuple) else (finals,)
        # (L*dirs, B, H) -> (L, dirs, B, H) -> (B, L, dirs, H) -> (B, L, dirs*H)
        finals = [
            f.view(self.num_layers, self.num_directions, batch, -1)
            .permute(2, 0, 1, 3)
            .reshape(batch, self.num_layers, -1)
            for f in finals
        ]
        return outputs, finals


# --------------------------------------------------------------------------- recurrence


def _gru_cell(gi: Tensor, gh: Tensor, state: LayerState) -> LayerState:
    """nn.GRU's equations; gi = W_i x + b_i, gh = W_h h + b_h, both (B, 3H) in order r, z, n."""
    (h,) = state
    size = h.size(-1)
    gi_rz, gi_n = gi.split((2 * size, size), dim=1)  # split, not slicing: cheaper backward
    gh_rz, gh_n = gh.split((2 * size, size), dim=1)
    r, z = torch.sigmoid(gi_rz + gh_rz).chunk(2, dim=1)  # (B, H) each
    n = torch.tanh(gi_n + r * gh_n)  # (B, H)
    return (torch.lerp(n, h, z),)  # (1 - z) * n + z * h


def _lstm_cell(gi: Tensor, gh: Tensor, state: LayerState) -> LayerState:
    """nn.LSTM's equations; gi, gh (B, 4H) in order i, f, g, o."""
    h, c = state
    i, f, g, o = (gi + gh).chunk(4, 1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


_CELL_FUNCTIONS = {"gru": _gru_cell, "lstm": _lstm_cell}


@dataclass(frozen=True)
class RecurrenceSpec:
    """The decoder recurrence as the model's options give it, the same for both wirings."""

    cell: str  # "gru" or "lstm"
    emb_size: int  # E, the target embedding (layer 0's input besides the feed)
    hidden_size: int  # H
    num_layers: int  # L
    dropout: float  # between stacked layers


class RecurrentCore(nn.Module):
    """Stacked GRU/LSTM decoder recurrence whose layer-0 input is [embedding; feed].

    ``rnn`` (an nn.GRU/LSTM over the E-dim embeddings) holds every weight except the feed part
    of layer 0's input matrix, ``weight_feed`` (G, feed_size). Without a feed (feed_size 0),
    ``rnn`` alone is the recurrence and can run a whole sequence in one call, and there is no
    ``weight_feed`` at all: a parameter that no forward uses makes DDP fail at its second step
    ("Expected to have finished reduction in the prior iteration").
    """

    def __init__(self, spec: RecurrenceSpec, *, feed_size: int) -> None:
        super().__init__()
        between_layers = spec.dropout if spec.num_layers > 1 else 0.0
        self.rnn = _RNN_CLASSES[spec.cell](
            spec.emb_size,
            spec.hidden_size,
            spec.num_layers,
            batch_first=True,
            dropout=between_layers,
        )
        gates = self.rnn.weight_hh_l0.size(0)  # G = 3H (GRU) or 4H (LSTM)
        bound = spec.hidden_size**-0.5  # nn.GRU/LSTM's default init
        if feed_size > 0:
            self.weight_feed = nn.Parameter(torch.empty(gates, feed_size).uniform_(-bound, bound))
        else:
            self.register_parameter("weight_feed", None)
        self.cell_fn = _CELL_FUNCTIONS[spec.cell]
        self.state_names = _STATE_NAMES[spec.cell]
        self.num_layers = spec.num_layers
        self.dropout = Dropout(between_layers)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        """Checkpoints written before ``weight_feed`` was optional hold an empty (G, 0) one."""
        key = f"{prefix}weight_feed"
        if self.weight_feed is None and key in state_dict and state_dict[key].numel() == 0:
            del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def embed_part(self, emb: Tensor) -> Tensor:
        """(..., E) -> (..., G): W_ih^(emb) x + b_ih of layer 0 (hoisted out of the loop)."""
        return F.linear(emb, self.rnn.weight_ih_l0, self.rnn.bias_ih_l0)

    def layer_weights(self) -> list[list[Tensor]]:
        """Per layer [w_ih, w_hh, b_ih, b_hh]; fetch once before a loop."""
        return self.rnn.all_weights

    def step(
        self,
        pre0: Tensor,  # (B, G) embed_part() of this step's input token
        feed: Tensor,  # (B, feed_size)
        layers: list[LayerState],
        weights: list[list[Tensor]],
    ) -> list[LayerState]:
        """One time step through all layers -> the new per-layer states."""
        gi = pre0 if self.weight_feed is None else pre0 + F.linear(feed, self.weight_feed)
        new: list[LayerState] = []
        for index, (state, (w_ih, w_hh, b_ih, b_hh)) in enumerate(
            zip(layers, weights, strict=True)
        ):
            if index > 0:
                gi = F.linear(self.dropout(new[-1][0]), w_ih, b_ih)  # (B, G)
            new.append(self.cell_fn(gi, F.linear(state[0], w_hh, b_hh), state))
        return new

    def sequence(self, emb: Tensor, recurrent: Recurrent) -> Tensor:
        """The whole sequence in one nn.GRU/LSTM call (feed_size must be 0): (B, T, E) and the
        initial state -> top layer outputs (B, T, H)."""
        hx = tuple(t.transpose(0, 1).contiguous() for t in recurrent)
        if recurrence_in_fp32(emb):  # CUDA autocast: the recurrence in fp32 (see there)
            with torch.autocast("cuda", enabled=False):
                outputs, _ = self.rnn(emb.float(), _fp32_state(hx))
            return outputs
        if isinstance(self.rnn, nn.LSTM) and _cpu_autocast_without_native_bf16(emb):
            # CPU autocast runs nn.LSTM in bf16 through oneDNN, whose kernel fails to build
            # without AVX512-BF16/AMX: run it in fp32 there (CPU autocast leaves nn.GRU in fp32)
            with torch.autocast("cpu", enabled=False):
                outputs, _ = self.rnn(emb.float(), _fp32_state(hx))
            return outputs
        outputs, _ = self.rnn(emb, hx if len(hx) > 1 else hx[0])  # hx: (L, B, H)
        return outputs

    def unpack(self, recurrent: Recurrent) -> list[LayerState]:
        """(hidden[, cell]) (B, L, H) -> per-layer tuples of (B, H)."""
        return [tuple(t[:, layer] for t in recurrent) for layer in range(self.num_layers)]

    def pack(self, layers: list[LayerState]) -> Recurrent:
        """Per-layer tuples -> (hidden[, cell]), each (B, L, H)."""
        return tuple(
            torch.stack([layer[i] for layer in layers], dim=1) for i in range(len(self.state_names))
        )


# --------------------------------------------------------------------------- decoding state


@dataclass
class RNNSource:
    """What attention reads from the source, one row per hypothesis row (attention variants
    take equal batch sizes): the same for every row of a sentence."""

    keys: Tensor  # (B, S, *) ``attention.prepare(memory)``, once per source batch
    memory: Tensor  # (B, S, K) the attention values
    mask: Tensor  # (B, S) bool, True = real token
    lengths: Tensor  # (B,) real source lengths

    def select(self, rows: Tensor) -> RNNSource:
        """The source of ``rows`` (B',) -> B' rows."""
        return RNNSource(
            *(t.index_select(0, rows) for t in (self.keys, self.memory, self.mask, self.lengths))
        )


@dataclass
class RNNState:
    """The RNN's decoding state (and teacher forcing's initial state): B rows."""

    source: RNNSource
    recurrent: Recurrent  # (hidden,) for GRU or (hidden, cell) for LSTM, each (B, L, H)
    input_feed: Tensor  # (B, H) h~_{t-1} for Luong input feeding, else (B, 0)


def _source(state: RNNState) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """What attention reads from the state: keys_p (B, S, *), memory (B, S, K), mask (B, S),
    lengths (B,)."""
    source = state.source
    return source.keys, source.memory, source.mask, source.lengths


# --------------------------------------------------------------------------- decoders


class RecurrentDecoder(nn.Module):
    """What the two wirings share: ``attention``; ``core``, the recurrence, whose layer 0 reads
    the target embedding and a per-step input ``core_feed_size`` wide (Bahdanau's context,
    Luong's h~_{t-1}); ``feed_size``, the width of the state's input feed (RNNState.input_feed,
    (B, feed_size): what a step hands the next besides the recurrent state). A wiring adds its
    output layer and writes ``forward`` and ``step``."""

    def __init__(
        self, attention: Attention, spec: RecurrenceSpec, *, core_feed_size: int, feed_size: int
    ) -> None:
        super().__init__()
        self.attention = attention
        self.feed_size = feed_size
        self.core = RecurrentCore(spec, feed_size=core_feed_size)

    def _start(
        self, emb: Tensor, state: RNNState
    ) -> tuple[Tensor, list[LayerState], list[list[Tensor]]]:
        """emb (B, [T,] E) -> layer 0's embedding part (B, [T,] G), computed once for the whole
        target; the per-layer states of ``state``; the layer weights, fetched once per loop."""
        core = self.core
        return core.embed_part(emb), core.unpack(state.recurrent), core.layer_weights()


def _step_weights(attn: Tensor | None, need_attn: bool) -> Tensor | None:
    """A step's attention weights (B, 1, S) -> (B, S) when asked for, else None."""
    return attn.squeeze(1) if need_attn and attn is not None else None


class BahdanauDecoder(RecurrentDecoder):
    """Bahdanau et al. 2015 wiring (App. A.2):

        c_t  = attend(query = s_{t-1})                       top layer of the previous state
        s_t  = RNN(s_{t-1}, [E y_{t-1}; c_t])                context enters layer 0 only
        o_t  = tanh(W_o [s_t; c_t; E y_{t-1}])               (B, H) features for the output layer

    The paper's readout is a maxout over U_o s + V_o E y + C_o c; we use tanh and the new state
    s_t (as in Nematus / OpenNMT). Nothing is fed between steps, so ``feed_size`` is 0 (and
    ``input_feeding`` does not apply).
    """

    def __init__(self, attention: Attention, spec: RecurrenceSpec, *, input_feeding: bool) -> None:
        context = attention.context_size
        super().__init__(attention, spec, core_feed_size=context, feed_size=0)
        hidden = spec.hidden_size
        self.readout = nn.Linear(hidden + context + spec.emb_size, hidden)  # W_o

    def _advance(
        self, pre: Tensor, layers: list[LayerState], weights, step: int, src
    ) -> tuple[list[LayerState], Tensor, Tensor | None]:
        """One step: -> new layers, context (B, C), weights (B, 1, S) or None."""
        keys, memory, mask, lengths = src
        query = layers[-1][0].unsqueeze(1)  # s_{t-1}: (B, 1, H)
        context, attn = self.attention(query, keys, memory, mask, AttentionState(step, lengths))
        context = context.squeeze(1)  # (B, C)
        return self.core.step(pre, context, layers, weights), context, attn

    def forward(
        self, emb: Tensor, state: RNNState, *, need_attn: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: emb (B, T, E) -> features (B, T, H), weights (B, T, S) or None."""
        collect = need_attn and self.attention.has_weights
        src = _source(state)
        pre, layers, weights = self._start(emb, state)
        tops, contexts, attns = [], [], []
        # unbind (not pre[:, t]) so backward stacks the step gradients once instead of adding T
        # full-size (B, T, G) tensors
        for t, pre_t in enumerate(pre.unbind(1)):
            layers, context, attn = self._advance(pre_t, layers, weights, t, src)
            tops.append(layers[-1][0])
            contexts.append(context)
            if collect:
                attns.append(attn)
        s = torch.stack(tops, dim=1)  # (B, T, H)
        c = torch.stack(contexts, dim=1)  # (B, T, C)
        features = torch.tanh(self.readout(torch.cat([s, c, emb], dim=-1)))  # (B, T, H)
        return features, torch.cat(attns, dim=1) if collect else None

    def step(
        self, emb: Tensor, state: RNNState, step: int, *, need_attn: bool = False
    ) -> tuple[Tensor, RNNState, Tensor | None]:
        """emb (B, E) -> features (B, H), new state, weights (B, S) or None."""
        pre, layers, weights = self._start(emb, state)
        layers, context, attn = self._advance(pre, layers, weights, step, _source(state))
        features = torch.tanh(self.readout(torch.cat([layers[-1][0], context, emb], dim=-1)))
        new_state = RNNState(state.source, self.core.pack(layers), state.input_feed)
        return features, new_state, _step_weights(attn, need_attn)


class LuongDecoder(RecurrentDecoder):
    """Luong et al. 2015 wiring (Sec. 3):

        h_t  = RNN(h_{t-1}, [E y_{t-1}; h~_{t-1}])      input feeding (Sec. 3.3), layer 0 only
        c_t  = attend(query = h_t)                      top layer of the current state
        h~_t = tanh(W_c [c_t; h_t])                     (Eq. 5), the (B, H) output features

    With ``input_feeding=False`` the recurrence does not depend on attention, so under teacher
    forcing it runs as ONE nn.GRU/LSTM call over the whole target and attention is computed for
    all T steps at once (the fast path).
    """

    def __init__(self, attention: Attention, spec: RecurrenceSpec, *, input_feeding: bool) -> None:
        hidden = spec.hidden_size
        feed = hidden if input_feeding else 0  # h~_{t-1} enters layer 0 and the state
        super().__init__(attention, spec, core_feed_size=feed, feed_size=feed)
        self.input_feeding = input_feeding
        self.combine = nn.Linear(attention.context_size + hidden, hidden, bias=False)  # W_c

    def _attend(self, h: Tensor, step: int, src) -> tuple[Tensor, Tensor | None]:
        """h (B, T, H) -> h~ (B, T, H), weights (B, T, S) or None."""
        keys, memory, mask, lengths = src
        context, attn = self.attention(h, keys, memory, mask, AttentionState(step, lengths))
        return torch.tanh(self.combine(torch.cat([context, h], dim=-1))), attn  # Eq. 5

    def _advance(
        self, pre: Tensor, feed: Tensor, layers: list[LayerState], weights, step: int, src
    ) -> tuple[list[LayerState], Tensor, Tensor | None]:
        """One step: -> new layers, h~ (B, H), weights (B, 1, S) or None."""
        layers = self.core.step(pre, feed, layers, weights)
        h_tilde, attn = self._attend(layers[-1][0].unsqueeze(1), step, src)
        return layers, h_tilde.squeeze(1), attn

    def forward(
        self, emb: Tensor, state: RNNState, *, need_attn: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """Teacher forcing: emb (B, T, E) -> features (B, T, H), weights (B, T, S) or None."""
        src = _source(state)
        if not self.input_feeding:  # fast path: one recurrent call, one attention call
            h_tilde, attn = self._attend(self.core.sequence(emb, state.recurrent), 0, src)
            return h_tilde, attn if need_attn else None
        collect = need_attn and self.attention.has_weights
        pre, layers, weights = self._start(emb, state)
        feed = state.input_feed  # (B, H)
        outputs, attns = [], []
        for t, pre_t in enumerate(pre.unbind(1)):  # unbind: see BahdanauDecoder
            layers, feed, attn = self._advance(pre_t, feed, layers, weights, t, src)
            outputs.append(feed)
            if collect:
                attns.append(attn)
        return torch.stack(outputs, dim=1), torch.cat(attns, dim=1) if collect else None

    def step(
        self, emb: Tensor, state: RNNState, step: int, *, need_attn: bool = False
    ) -> tuple[Tensor, RNNState, Tensor | None]:
        """emb (B, E) -> features (B, H), new state, weights (B, S) or None."""
        pre, layers, weights = self._start(emb, state)
        feed = state.input_feed  # (B, H) or (B, 0)
        layers, h_tilde, attn = self._advance(pre, feed, layers, weights, step, _source(state))
        feed = h_tilde[:, : self.feed_size]  # (B, H) or (B, 0)
        new_state = RNNState(state.source, self.core.pack(layers), feed)
        return h_tilde, new_state, _step_weights(attn, need_attn)


_DECODERS: dict[str, type[RecurrentDecoder]] = {
    "bahdanau": BahdanauDecoder,
    "luong": LuongDecoder,
}


# --------------------------------------------------------------------------- model


@dataclass
class RNNModelConfig:
    """``model=rnn``: an RNN encoder-decoder (bidirectional encoder; attention chosen by the
    ``attention`` group)."""

    name: str = "rnn"
    emb_size: int = 256
    hidden_size: int = 512
    num_layers: int = 1
    cell: Cell = Cell.gru
    bidirectional: bool = True
    # each direction hidden_size/2, so the encoder's output is as wide as the decoder
    # (OpenNMT-py's brnn); needed by attention scores with no parameter between decoder and
    # encoder states (dot, scaled_dot), whose presets set it
    split_directions: bool = False
    dropout: float = 0.2
    tie_embeddings: bool = False  # decoder input embedding = output projection
    teacher_forcing: float = 1.0


def attention_width_problem(model: Mapping[str, Any], attention: Mapping[str, Any]) -> str | None:
    """The line refusing an RNN whose attention compares decoder and encoder states directly
    (its class's ``compares_query_and_keys``, e.g. a dot product: no parameter between them)
    while the bidirectional encoder's output (2 x hidden_size) is wider than the decoder
    (hidden_size); None when the widths match or the variant has learned projections.
    ``model``: the RNN model options (``name`` optional), ``attention``: the attention node.
    Both the range checks and :meth:`RNNSeq2Seq.init_arguments` refuse with it."""
    variant = ATTENTIONS.get(str(attention.get("name")))
    reason = None if variant is None else variant.compares_query_and_keys(attention)
    hidden = model.get("hidden_size", 512)
    if reason is None or not isinstance(hidden, int) or hidden < 1:
        return None  # a bad hidden_size is reported by the range checks
    if not model.get("bidirectional", True) or model.get("split_directions", False):
        return None  # the encoder is as wide as the decoder
    return (
        f"{reason}, so their widths must match: the encoder gives {2 * hidden} (2 directions x "
        f"{hidden}), the decoder {hidden}; set model.split_directions=true (or "
        f"model.bidirectional=false)"
    )


@register_model("rnn", schema=RNNModelConfig)
class RNNSeq2Seq(Seq2Seq):
    """Bidirectional RNN encoder, bridge, attention, Bahdanau or Luong decoder.

    Bridge: initial decoder state of layer l = tanh(W_b [h_fwd; h_bwd] of encoder layer l)
    (one W_b: (H, K) for h, another for the LSTM cell c; decoder and encoder have the same L).
    Memory: the encoder outputs (B, S, K) as they are, both the keys and the values of
    attention (``attention.key_size`` must be K); nothing is projected between the encoder and
    a score, so dot and scaled_dot compare decoder and encoder states directly, which needs
    K == H: ``split_directions=True`` (each direction H/2) or ``bidirectional=False``.
    Output: logits = W_out(dropout(features)), with features (B, T, H) from the decoder;
    with ``tie_embeddings`` a projection H -> E precedes W_out, whose weight is the target
    embedding. Dropout: on embeddings, between stacked layers, and on the features.
    Teacher forcing < 1 (training only): at every step, each sentence independently gets the
    gold previous token with that probability, else the model's own previous argmax.
    ``tgt_mask`` is not needed by the decoder (it is causal); the loss masks padding. The
    attention's ``auxiliary_loss(tgt_mask)`` becomes the output's ``aux_loss`` (None unless
    the variant has a term of its own, e.g. hard attention in training).
    """

    @classmethod
    def init_arguments(cls, options: dict[str, Any], attention: dict[str, Any]) -> dict[str, Any]:
        """``options``: RNNModelConfig's fields. ``attention``: 'name', 'wiring' (None -> the
        variant's ``paper_wiring``), 'input_feeding' and the variant's options, of which the
        attention module is built, its keys as wide as the encoder's output.

        ConfigError (one line, the same as the range checks') for an attention that compares
        decoder and encoder states directly over an encoder wider than the decoder."""
        problem = attention_width_problem(options, attention)
        if problem is not None:
            from ..errors import ConfigError

            raise ConfigError(problem)
        name = attention.pop("name")
        wiring = attention.pop("wiring", None)
        input_feeding = attention.pop("input_feeding", True)
        variant = attention_class(name)
        hidden = options.get("hidden_size", 512)
        bidirectional = options.get("bidirectional", True)
        direction_size = encoder_direction_size(
            hidden, bidirectional, options.get("split_directions", False)
        )
        key_size = direction_size * (2 if bidirectional else 1)  # the encoder's output size
        module = build_attention(name=name, query_size=hidden, key_size=key_size, **attention)
        return {
            **options,
            "attention": module,
            "wiring": wiring or variant.paper_wiring,
            "input_feeding": input_feeding,
        }

    @classmethod
    def check_options(cls, options: Mapping[str, Any], attention: Mapping[str, Any]) -> list[str]:
        problems = [at_least(options, key, 1) for key in ("emb_size", "hidden_size", "num_layers")]
        lines = [line for found in problems for line in found]
        lines += in_range(options, "teacher_forcing", 0.0, 1.0, closed=True)
        hidden = options.get("hidden_size")
        split = options.get("split_directions") and options.get("bidirectional", True)
        if split and isinstance(hidden, int) and hidden >= 1 and hidden % 2:
            lines.append(
                f"model.hidden_size must be even with model.split_directions=true (each "
                f"direction gets half), got {hidden}"
            )
        lines += in_range(options, "dropout", 0.0, 1.0, closed=False)
        width = attention_width_problem(options, attention)
        return lines + ([width] if width is not None else [])

    @classmethod
    def label(cls, options: Mapping[str, Any], attention: Mapping[str, Any]) -> str:
        """The attention variant's own label (e.g. ``local-m/general``), with a wiring that
        was chosen: ``additive (luong)``."""
        name = attention.get("name") or "?"
        variant = ATTENTIONS.get(name)
        try:
            label = variant.label(attention) if variant is not None else name
        except Exception:  # noqa: BLE001 - an odd saved config costs only the label's detail
            label = name
        if attention.get("wiring"):
            label += f" ({attention['wiring']})"
        return label

    def __init__(
        self,
        *,
        src_vocab_size: int,
        tgt_vocab_size: int,
        attention: Attention,
        emb_size: int = 256,
        hidden_size: int = 512,
        num_layers: int = 1,
        cell: str = "gru",
        bidirectional: bool = True,
        split_directions: bool = False,
        dropout: float = 0.2,
        tie_embeddings: bool = False,
        teacher_forcing: float = 1.0,
        wiring: str = "bahdanau",
        input_feeding: bool = True,
    ) -> None:
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"unknown model.cell {cell!r}; valid: {', '.join(CELLS)}")
        if wiring not in WIRINGS:
            raise ValueError(f"unknown attention.wiring {wiring!r}; valid: {', '.join(WIRINGS)}")
        if num_layers < 1:
            raise ValueError(f"model.num_layers must be >= 1, got {num_layers}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"model.dropout must be in [0, 1), got {dropout}")
        if not 0.0 <= teacher_forcing <= 1.0:
            raise ValueError(f"model.teacher_forcing must be in [0, 1], got {teacher_forcing}")
        if attention.query_size != hidden_size:
            raise ValueError(
                f"attention query size {attention.query_size} != model.hidden_size {hidden_size}"
            )
        self.wiring = wiring
        self.input_feeding = input_feeding
        self.teacher_forcing = teacher_forcing
        self.encoder = Encoder(
            vocab_size=src_vocab_size,
            emb_size=emb_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            cell=cell,
            bidirectional=bidirectional,
            dropout=dropout,
            pad_id=self.pad_id,
            split_directions=split_directions,
        )
        enc_size = self.encoder.output_size
        if attention.key_size != enc_size:
            raise ValueError(
                f"attention key size {attention.key_size} != the encoder's output size {enc_size}"
            )
        self.state_names = _STATE_NAMES[cell]
        self.bridge = nn.ModuleList(nn.Linear(enc_size, hidden_size) for _ in self.state_names)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, emb_size, padding_idx=self.pad_id)
        spec = RecurrenceSpec(
            cell=cell,
            emb_size=emb_size,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout,
        )
        self.decoder = _DECODERS[wiring](attention, spec, input_feeding=input_feeding)
        self.dropout = Dropout(dropout)
        self.out_proj = nn.Linear(hidden_size, emb_size) if tie_embeddings else nn.Identity()
        self.generator = nn.Linear(emb_size if tie_embeddings else hidden_size, tgt_vocab_size)
        if tie_embeddings:
            self.generator.weight = self.tgt_embedding.weight

    @property
    def attention(self) -> Attention:
        return self.decoder.attention

    @property
    def has_alignment(self) -> bool:
        return self.attention.has_weights

    # ------------------------------------------------------------------ contract

    def encode(self, src: Tensor, src_mask: Tensor) -> RNNState:
        """-> the state of B sentences, one row each: source (keys (B, S, *), memory (B, S, K),
        mask (B, S), lengths (B,)), recurrent (hidden[, cell]) (B, L, H) from the bridge,
        input_feed zeros (B, H or 0)."""
        lengths = src_mask.sum(dim=1)  # (B,)
        self.attention.observe_source(src_mask)  # once per source batch, one row per sentence
        memory, finals = self.encoder(src, lengths)  # (B, S, K), [(B, L, K)]
        device = memory.device.type
        if torch.is_autocast_enabled(device):  # cast once here, not in every step's bmm
            memory = memory.to(torch.get_autocast_dtype(device))
        recurrent = tuple(
            torch.tanh(bridge(final))  # (B, L, H)
            for bridge, final in zip(self.bridge, finals, strict=True)
        )
        keys = self.attention.prepare(memory)  # once per source batch
        source = RNNSource(keys, memory, src_mask, lengths)
        return RNNState(source, recurrent, memory.new_zeros(src.size(0), self.decoder.feed_size))

    def reorder_state(self, state: RNNState, order: RowOrder) -> RNNState:
        """The recurrent state and input feed follow ``order.rows``. The source part holds one
        row per hypothesis but is the same for every row of a sentence, so it is copied only
        when the rows change sentence: a sentence left, or the rows per sentence changed
        (beam search expanding step 0 to K beams). Then ``order.rows`` selects it too, since
        each new row's old row belongs to the same sentence."""
        rows = order.rows
        source = state.source
        if order.sentences is not None or rows.numel() != source.lengths.numel():
            source = source.select(rows)
        recurrent = tuple(t.index_select(0, rows) for t in state.recurrent)
        return RNNState(source, recurrent, state.input_feed.index_select(0, rows))

    def _output_features(self, features: Tensor) -> Tensor:
        """Decoder features (..., H) -> the generator's input (..., E or H)."""
        return self.out_proj(self.dropout(features))

    @property
    def output_layer(self) -> nn.Linear:
        return self.generator

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor,
        tgt_in: Tensor,
        tgt_mask: Tensor,
        *,
        need_attn: bool = False,
        features_only: bool = False,
    ) -> Seq2SeqOutput:
        state = self.encode(src, src_mask)
        if self.training and self.teacher_forcing < 1.0:
            out = self._forward_sampled(tgt_in, state, need_attn=need_attn)
        else:
            emb = self.dropout(self.tgt_embedding(tgt_in))  # (B, T, E)
            features, attn = self.decoder(emb, state, need_attn=need_attn)  # (B, T, H)
            out = Seq2SeqOutput(None, attn, self._output_features(features))
        out.aux_loss = self.attention.auxiliary_loss(tgt_mask)  # None for most variants
        if not features_only:  # the output layer runs once, on every position
            out.logits, out.features = self.output_layer(out.features).float(), None
        return out

    def _step(
        self, prev_tokens: Tensor, state: RNNState, step: int, need_attn: bool
    ) -> tuple[Tensor, RNNState, Tensor | None]:
        """-> output features (B, E or H), new state, weights (B, S) or None."""
        emb = self.dropout(self.tgt_embedding(prev_tokens))  # (B, E)
        features, state, attn = self.decoder.step(emb, state, step, need_attn=need_attn)
        return self._output_features(features), state, attn

    def decode_step(
        self, prev_tokens: Tensor, state: RNNState, step: int, *, need_attn: bool = False
    ) -> StepOutput:
        """prev_tokens (B,) -> float32 log-probs (B, V), a new state (the source part is the
        same object), weights (B, S) or None."""
        features, state, attn = self._step(prev_tokens, state, step, need_attn)
        logits = self.generator(features)  # (B, V)
        return StepOutput(torch.log_softmax(logits, dim=-1, dtype=torch.float32), state, attn)

    def _forward_sampled(
        self, tgt_in: Tensor, state: RNNState, *, need_attn: bool
    ) -> Seq2SeqOutput:
        """Training with teacher_forcing < 1: a step loop feeding back argmax predictions
        -> output features (B, T, E or H), no logits."""
        collect = need_attn and self.has_alignment
        tokens = tgt_in[:, 0]  # (B,) BOS
        features, attns = [], []
        for t in range(tgt_in.size(1)):
            step_features, state, attn = self._step(tokens, state, t, collect)
            features.append(step_features)
            if collect:
                attns.append(attn)
            if t + 1 < tgt_in.size(1):
                gold = torch.rand(tokens.shape, device=tokens.device) < self.teacher_forcing
                with torch.no_grad():  # the fed-back prediction needs no gradient
                    predicted = self.generator(step_features).argmax(dim=-1)
                tokens = torch.where(gold, tgt_in[:, t + 1], predicted)
        attn_weights = torch.stack(attns, dim=1) if collect else None
        return Seq2SeqOutput(None, attn_weights, torch.stack(features, dim=1))
