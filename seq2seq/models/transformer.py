"""Transformer encoder-decoder baseline (Vaswani et al., 2017) on the shared Seq2Seq contract.

Read top to bottom: positions -> attention core (fast SDPA path and one explicit path that
returns weights) -> self/cross attention -> feed-forward -> encoder/decoder layers -> masks ->
decoding state -> model (the model family ``transformer``: its schema ``TransformerModelConfig``
and range checks). The self-attention cache is its own module, ``models/kv_cache.py``.

Shapes: B batch, S source length, T target length, D d_model, H heads, dh = D / H, V vocab,
L decoder layers. Masks are bool with True = real token (project convention); inside attention
they become SDPA's boolean ``attn_mask`` with True = may attend, broadcast to (B, 1, T, S).

Defaults follow the paper with the now-standard pre-LayerNorm (``pre_norm=False`` gives the
paper's post-LN): embeddings scaled by sqrt(D), sinusoidal positions (learned optional),
residual dropout after every sub-layer and on embeddings + positions, ReLU feed-forward,
optional shared source/target embeddings and tied output projection.

Incremental decoding keeps a :class:`TransformerState`: the source part (the attention mask and,
per decoder layer, the cross-attention keys and values, computed once in ``encode``) with ONE row
per sentence, and per decoder layer a self-attention :class:`~seq2seq.models.kv_cache.KVCache`
with one row per hypothesis. A sentence's G hypothesis rows (its beams) attend over its single
source row together (``CrossAttention.step``), so beam search never copies the source to the
beams; ``reorder_state`` selects the source only when sentences leave, and the caches by row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..modules.dropout import Dropout
from .base import RowOrder, Seq2Seq, Seq2SeqOutput, StepOutput, at_least, in_range
from .kv_cache import KVCache
from .registry import register_model

# --------------------------------------------------------------------------- positions


class SinusoidalPositions(nn.Module):
    """Fixed sin/cos table: PE[p, 2i] = sin(p / 10000^(2i/D)), PE[p, 2i+1] = cos(same)."""

    def __init__(self, max_positions: int, d_model: int) -> None:
        super().__init__()
        pos = torch.arange(max_positions, dtype=torch.float32)[:, None]  # (P, 1)
        inv_freq = torch.exp(
            torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model)
        )  # (ceil(D/2),)
        table = torch.zeros(max_positions, d_model)
        table[:, 0::2] = torch.sin(pos * inv_freq)
        table[:, 1::2] = torch.cos(pos * inv_freq[: d_model // 2])
        self.register_buffer("table", table, persistent=False)  # (P, D)

    def forward(self, start: int, length: int) -> Tensor:
        """Positions start .. start+length-1 -> (length, D)."""
        return self.table[start : start + length]


class LearnedPositions(nn.Module):
    """One trained vector per position (BERT/fairseq-style learned positional embeddings)."""

    def __init__(self, max_positions: int, d_model: int) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.empty(max_positions, d_model))
        nn.init.normal_(self.table, std=d_model**-0.5)

    def forward(self, start: int, length: int) -> Tensor:
        """Positions start .. start+length-1 -> (length, D)."""
        return self.table[start : start + length]


# --------------------------------------------------------------------------- attention core


_LOW_PRECISION = (torch.bfloat16, torch.float16)


def _slow_cpu_sdpa(q: Tensor, decoding_step: bool) -> bool:
    """True where torch's CPU SDPA is measured slower than the written-out path (see ``attend``):
    the low-precision backward, and a decoding step's few query positions."""
    if q.device.type != "cpu":
        return False
    return (q.requires_grad and q.dtype in _LOW_PRECISION) or decoding_step


def attend(
    q: Tensor,  # (B, H, T, dh)
    k: Tensor,  # (B, H, S, dh)
    v: Tensor,  # (B, H, S, dh)
    mask: Tensor | None,  # bool, True = may attend, broadcastable to (B, H, T, S)
    *,
    dropout_p: float = 0.0,
    need_weights: bool = False,
    decoding_step: bool = False,
    causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    """Scaled dot-product attention -> (context (B, H, T, dh), weights (B, H, T, S) or None).

    ``causal=True`` (with ``mask=None``): query i attends to keys 0..i, SDPA's ``is_causal``,
    which CUDA's flash kernel takes (it takes no boolean mask). Over right-padded targets that
    is exact for every real position: their keys 0..i are all real; padding queries see
    padding keys, but their outputs are never used (the loss masks them, and no real query
    attends to them).

    ``need_weights=False``: torch's fused SDPA (flash / memory-efficient kernels on CUDA, the
    fused CPU kernel here). ``need_weights=True``: the same computation written out, returning
    the float32 weights; used when attention weights are asked for (alignments). Every mask
    row the model builds has at least one True entry, so neither path can produce NaN.

    Two measured exceptions on CPU take the explicit path too (weights dropped): bf16/fp16 with
    autograd, because torch's CPU flash-attention *backward* in low precision is 3-5x slower than
    the written-out softmax for translation-length sequences; and a ``decoding_step`` (one query
    per hypothesis, or a sentence's beams together), where the flash kernel's tiling costs up to
    ~10x two small matmuls. CUDA always uses SDPA.
    """
    if not need_weights and not _slow_cpu_sdpa(q, decoding_step):
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=causal
        ), None
    if causal:  # query i sees keys 0..i
        t, s = q.shape[-2], k.shape[-2]
        mask = torch.ones(t, s, dtype=torch.bool, device=q.device).tril()
    scores = torch.matmul(q, k.transpose(-2, -1)).float() * q.shape[-1] ** -0.5  # (B, H, T, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # (B, H, T, S) float32, exactly 0 where masked
    probs = F.dropout(weights, dropout_p) if dropout_p > 0.0 else weights
    ctx = torch.matmul(probs.to(v.dtype), v)  # (B, H, T, dh)
    return ctx, weights if need_weights else None


KV = tuple[Tensor, Tensor]  # keys, values: (B, H, len, dh) each


def _split_heads(x: Tensor, heads: int) -> Tensor:
    """(B, T, D) -> (B, H, T, dh)."""
    b, t, d = x.shape
    return x.view(b, t, heads, d // heads).transpose(1, 2)


def _merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, dh) -> (B, T, D)."""
    b, h, t, dh = x.shape
    return x.transpose(1, 2).reshape(b, t, h * dh)


def _xavier_blocks(weight: Tensor, blocks: int) -> None:
    """Xavier-uniform init of each (D, D) block of a fused (blocks*D, D) projection, so the fused
    layer starts exactly like separate Q/K/V projections would."""
    for chunk in weight.chunk(blocks, dim=0):
        nn.init.xavier_uniform_(chunk)


class SelfAttention(nn.Module):
    """Multi-head self-attention with one fused QKV projection and an optional KV cache."""

    def __init__(self, d_model: int, heads: int, attention_dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.attention_dropout = attention_dropout
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        _xavier_blocks(self.qkv.weight, 3)
        nn.init.zeros_(self.qkv.bias)
        nn.init.xavier_uniform_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, mask: Tensor | None, *, causal: bool = False) -> Tensor:
        """x (B, T, D), mask bool broadcastable to (B, 1, T, T), or None with ``causal``
        (see :func:`attend`) -> (B, T, D)."""
        b, t, d = x.shape
        qkv = self.qkv(x).view(b, t, 3, self.heads, d // self.heads)  # (B, T, 3, H, dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # 3 x (B, H, T, dh)
        p = self.attention_dropout if self.training else 0.0
        ctx, _ = attend(q, k, v, mask, dropout_p=p, causal=causal)  # (B, H, T, dh)
        return self.out(_merge_heads(ctx))

    def step(self, x: Tensor, cache: KVCache, position: int) -> Tensor:
        """One new position. x (B, 1, D), cache holding positions 0 .. position-1 of the B rows
        -> output (B, 1, D); the cache gets ``position`` written in place. No mask: every
        cached position is a real earlier token (beam search handles finished hypotheses)."""
        b, _, d = x.shape
        q, k, v = self.qkv(x).view(b, 3, self.heads, 1, d // self.heads).unbind(1)  # (B, H, 1, dh)
        keys, values = cache.write(position, k[:, :, 0], v[:, :, 0])  # (B, H, position+1, dh)
        ctx, _ = attend(q, keys.to(q.dtype), values.to(q.dtype), None, decoding_step=True)
        return self.out(_merge_heads(ctx))


class CrossAttention(nn.Module):
    """Multi-head encoder-decoder attention with a fused KV projection of the memory, computed
    once per source batch (``project_memory``) and reused at every step."""

    def __init__(self, d_model: int, heads: int, attention_dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.attention_dropout = attention_dropout
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        nn.init.xavier_uniform_(self.q.weight)
        _xavier_blocks(self.kv.weight, 2)
        nn.init.xavier_uniform_(self.out.weight)
        for bias in (self.q.bias, self.kv.bias, self.out.bias):
            nn.init.zeros_(bias)

    def project_memory(self, memory: Tensor) -> KV:
        """memory (B, S, D) -> keys, values (B, H, S, dh) each (strided views of one matmul)."""
        b, s, d = memory.shape
        kv = self.kv(memory).view(b, s, 2, self.heads, d // self.heads)  # (B, S, 2, H, dh)
        keys, values = kv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, S, dh) each
        return keys, values

    def forward(
        self, x: Tensor, kv: KV, mask: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, T, D), kv: keys, values (B, H, S, dh), mask bool (B, 1, 1, S) -> (B, T, D),
        weights (B, H, T, S) float32 or None."""
        q = _split_heads(self.q(x), self.heads)  # (B, H, T, dh)
        p = self.attention_dropout if self.training else 0.0
        k, v = kv[0].to(q.dtype), kv[1].to(q.dtype)
        ctx, weights = attend(q, k, v, mask, dropout_p=p, need_weights=need_weights)
        return self.out(_merge_heads(ctx)), weights

    def step(
        self, x: Tensor, kv: KV, mask: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        """One decoding step for G hypotheses per sentence. x (G*n, 1, D): each sentence's G
        rows consecutive (beam search's layout; G = 1 in greedy search), kv: keys, values
        (n, H, S, dh) and mask (n, 1, 1, S), one row per sentence -> (G*n, 1, D), weights
        (G*n, H, 1, S) float32 or None.

        A sentence's G queries go through one (G, dh) x (dh, S) product per head, so its keys and
        values are read once, not once per hypothesis: this product is memory-bound, and beam
        search no longer holds K copies of the source state (measured: 2.3x faster at K = 5)."""
        rows, _, d = x.shape
        sentences = kv[0].shape[0]
        if rows % sentences:
            raise ValueError(
                f"{rows} decoder rows cannot be split into equal groups over {sentences} sentences"
            )
        group = rows // sentences
        q = self.q(x).view(sentences, group, self.heads, d // self.heads)  # (n, G, H, dh)
        p = self.attention_dropout if self.training else 0.0
        k, v = kv[0].to(q.dtype), kv[1].to(q.dtype)
        ctx, weights = attend(
            q.transpose(1, 2),
            k,
            v,
            mask,
            dropout_p=p,
            need_weights=need_weights,
            decoding_step=True,
        )  # (n, H, G, dh), (n, H, G, S)
        ctx = ctx.transpose(1, 2).reshape(rows, 1, d)  # (n, G, H, dh) -> (G*n, 1, D)
        if weights is not None:
            weights = weights.transpose(1, 2).reshape(rows, self.heads, 1, -1)  # (G*n, H, 1, S)
        return self.out(ctx), weights


class FeedForward(nn.Module):
    """Position-wise Linear(D, F) -> ReLU -> Linear(F, D)."""

    def __init__(self, d_model: int, ff_size: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, ff_size)
        self.fc2 = nn.Linear(ff_size, d_model)
        for fc in (self.fc1, self.fc2):
            nn.init.xavier_uniform_(fc.weight)
            nn.init.zeros_(fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.relu(self.fc1(x)))


# --------------------------------------------------------------------------- layers


class EncoderLayer(nn.Module):
    """Self-attention + feed-forward, each wrapped as a residual with LayerNorm placed before
    (pre-LN: x + drop(f(LN(x)))) or after (post-LN: LN(x + drop(f(x)))) the sub-layer."""

    def __init__(self, d_model, heads, ff_size, dropout, attention_dropout, pre_norm) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.self_attn = SelfAttention(d_model, heads, attention_dropout)
        self.ff = FeedForward(d_model, ff_size)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.drop = Dropout(dropout)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, S, D), mask (B, 1, 1, S) -> (B, S, D)."""
        if self.pre_norm:
            x = x + self.drop(self.self_attn(self.norm1(x), mask))
            return x + self.drop(self.ff(self.norm2(x)))
        x = self.norm1(x + self.drop(self.self_attn(x, mask)))
        return self.norm2(x + self.drop(self.ff(x)))


class DecoderLayer(nn.Module):
    """Causal self-attention + cross-attention + feed-forward, residual + LayerNorm as above.
    ``forward`` is the teacher-forced pass, ``step`` one incremental position with caches."""

    def __init__(self, d_model, heads, ff_size, dropout, attention_dropout, pre_norm) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.self_attn = SelfAttention(d_model, heads, attention_dropout)
        self.cross_attn = CrossAttention(d_model, heads, attention_dropout)
        self.ff = FeedForward(d_model, ff_size)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.drop = Dropout(dropout)

    def forward(
        self, x: Tensor, self_mask: Tensor | None, kv: KV, src_mask: Tensor, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, T, D), self_mask (B, 1, T, T), or None: causal over right-padded targets
        (SDPA's is_causal, see :func:`attend`), kv: cross keys, values (B, H, S, dh),
        src_mask (B, 1, 1, S)
        -> (B, T, D), cross-attention weights (B, H, T, S) or None."""
        causal = self_mask is None
        if self.pre_norm:
            x = x + self.drop(self.self_attn(self.norm1(x), self_mask, causal=causal))
            ctx, weights = self.cross_attn(self.norm2(x), kv, src_mask, need_weights)
            x = x + self.drop(ctx)
            return x + self.drop(self.ff(self.norm3(x))), weights
        x = self.norm1(x + self.drop(self.self_attn(x, self_mask, causal=causal)))
        ctx, weights = self.cross_attn(x, kv, src_mask, need_weights)
        x = self.norm2(x + self.drop(ctx))
        return self.norm3(x + self.drop(self.ff(x))), weights

    def step(
        self, x: Tensor, cache: KVCache, position: int, kv: KV, src_mask: Tensor, need_weights: bool
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, 1, D), cache: the layer's self-attention cache of the B rows, filled up to
        ``position`` (written there in place), kv: cross keys, values (n, H, S, dh) and
        src_mask (n, 1, 1, S) for the n sentences the B = G*n rows come from (see
        ``CrossAttention.step``) -> (B, 1, D), cross-attention weights (B, H, 1, S) or None."""
        if self.pre_norm:
            x = x + self.drop(self.self_attn.step(self.norm1(x), cache, position))
            ctx, weights = self.cross_attn.step(self.norm2(x), kv, src_mask, need_weights)
            x = x + self.drop(ctx)
            return x + self.drop(self.ff(self.norm3(x))), weights
        x = self.norm1(x + self.drop(self.self_attn.step(x, cache, position)))
        ctx, weights = self.cross_attn.step(x, kv, src_mask, need_weights)
        x = self.norm2(x + self.drop(ctx))
        return self.norm3(x + self.drop(self.ff(x))), weights


# --------------------------------------------------------------------------- masks


def key_mask(mask: Tensor) -> Tensor:
    """(B, S) bool real-token mask -> (B, 1, 1, S) attention mask. A row with no real token
    (empty sentence) may attend everywhere, so its output stays finite (and is never used)."""
    mask = mask | ~mask.any(dim=-1, keepdim=True)  # (B, S)
    return mask[:, None, None, :]


def causal_mask(tgt_mask: Tensor) -> Tensor:
    """(B, T) bool real-token mask -> (B, 1, T, T): query i may attend to real keys j <= i, and
    always to itself (so padding queries never see an all-False row)."""
    t = tgt_mask.shape[1]
    ones = torch.ones(t, t, dtype=torch.bool, device=tgt_mask.device)
    tri, eye = torch.tril(ones), torch.eye(t, dtype=torch.bool, device=tgt_mask.device)
    return ((tri & tgt_mask[:, None, :]) | eye)[:, None]  # (B, 1, T, T)


# --------------------------------------------------------------------------- decoding state


@dataclass
class TransformerSource:
    """What decoding reads from the source, ONE row per sentence (n rows) whatever the number
    of hypothesis rows: it depends only on the sentence, so its beams share it."""

    attn_mask: Tensor  # (n, 1, 1, S) bool, see ``key_mask``
    cross: list[KV]  # per decoder layer: cross-attention keys, values (n, H, S, dh) each

    def select(self, sentences: Tensor) -> TransformerSource:
        """The source of ``sentences`` (n',) -> n' rows."""
        return TransformerSource(
            self.attn_mask.index_select(0, sentences),
            [(k.index_select(0, sentences), v.index_select(0, sentences)) for k, v in self.cross],
        )


@dataclass
class TransformerState:
    """The Transformer's decoding state: the shared source part (n rows), and per decoder layer
    a self-attention cache of the G*n hypothesis rows (each sentence's G rows consecutive)."""

    source: TransformerSource
    caches: list[KVCache]


# --------------------------------------------------------------------------- model


@dataclass
class TransformerModelConfig:
    """``model=transformer``: the Transformer baseline (Vaswani 2017), sized for Multi30k on a
    small machine. It has its own attention: the ``attention`` group does not apply."""

    name: str = "transformer"
    d_model: int = 256
    heads: int = 4
    ff_size: int = 1024
    num_layers: int = 3  # encoder and decoder each, unless the two below are set
    encoder_layers: int | None = None
    decoder_layers: int | None = None
    dropout: float = 0.1
    pre_norm: bool = True
    learned_positions: bool = False
    max_positions: int = 1024
    share_embeddings: bool = False  # source = target embedding (needs a joint vocabulary)
    tie_output: bool = True  # target embedding = output projection
    alignment_layer: int = -1  # cross-attention layer whose weights are the alignment
    alignment_head: int | None = None  # None: average over heads


@register_model("transformer", schema=TransformerModelConfig)
class TransformerSeq2Seq(Seq2Seq):
    """Encoder-decoder Transformer. Alignment = cross-attention weights of decoder layer
    ``alignment_layer``, head ``alignment_head`` (None: mean over heads)."""

    own_attention: ClassVar[str] = "multihead"

    @classmethod
    def init_arguments(cls, options: dict[str, Any], attention: dict[str, Any]) -> dict[str, Any]:
        """TransformerModelConfig's fields -> the constructor's: ``encoder_layers`` /
        ``decoder_layers`` of None fall back to ``num_layers``."""
        num_layers = options.pop("num_layers", 3)
        for side in ("encoder_layers", "decoder_layers"):
            if options.get(side) is None:
                options[side] = num_layers
        return options

    @classmethod
    def check_options(cls, options: Mapping[str, Any], attention: Mapping[str, Any]) -> list[str]:
        keys = ("d_model", "heads", "ff_size", "num_layers", "max_positions")
        problems = [at_least(options, key, 1) for key in keys]
        problems += [
            at_least(options, key, 1, optional=True) for key in ("encoder_layers", "decoder_layers")
        ]
        lines = [line for found in problems for line in found]
        d_model, heads = options.get("d_model"), options.get("heads")
        layers = options.get("decoder_layers") or options.get("num_layers")
        layer, head = options.get("alignment_layer"), options.get("alignment_head")
        if isinstance(layers, int) and layers >= 1 and isinstance(layer, int):
            if not -layers <= layer < layers:
                lines.append(
                    f"model.alignment_layer must be in [{-layers}, {layers}) (the decoder's "
                    f"layers, negative from the end), got {layer}"
                )
        if isinstance(heads, int) and heads >= 1 and isinstance(head, int):
            if not 0 <= head < heads:
                lines.append(
                    f"model.alignment_head must be null (the mean of the heads) or in "
                    f"[0, {heads}), got {head}"
                )
        if d_model and heads and d_model >= 1 and heads >= 1 and d_model % heads:
            lines.append(
                f"model.d_model={d_model} must be a multiple of model.heads={heads} "
                f"(e.g. model.d_model={-(-d_model // heads) * heads})"
            )
        return lines + in_range(options, "dropout", 0.0, 1.0, closed=False)

    def __init__(
        self,
        *,
        src_vocab_size: int,
        tgt_vocab_size: int,
        d_model: int = 256,
        heads: int = 4,
        ff_size: int = 1024,
        encoder_layers: int = 3,
        decoder_layers: int = 3,
        dropout: float = 0.1,
        attention_dropout: float = 0.0,
        pre_norm: bool = True,
        learned_positions: bool = False,
        max_positions: int = 1024,
        share_embeddings: bool = False,
        tie_output: bool = True,
        alignment_layer: int = -1,
        alignment_head: int | None = None,
    ) -> None:
        super().__init__()
        for name, value in (
            ("src_vocab_size", src_vocab_size),
            ("tgt_vocab_size", tgt_vocab_size),
            ("d_model", d_model),
            ("heads", heads),
            ("ff_size", ff_size),
            ("decoder_layers", decoder_layers),
            ("max_positions", max_positions),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if encoder_layers < 0:
            raise ValueError(f"encoder_layers must be >= 0, got {encoder_layers}")
        if d_model % heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by heads ({heads})")
        for name, value in (("dropout", dropout), ("attention_dropout", attention_dropout)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if share_embeddings and src_vocab_size != tgt_vocab_size:
            raise ValueError(
                "share_embeddings=true needs one joint vocabulary, got src_vocab_size="
                f"{src_vocab_size} != tgt_vocab_size={tgt_vocab_size}"
            )
        if not -decoder_layers <= alignment_layer < decoder_layers:
            raise ValueError(
                f"alignment_layer must be in [{-decoder_layers}, {decoder_layers}), "
                f"got {alignment_layer}"
            )
        if alignment_head is not None and not 0 <= alignment_head < heads:
            raise ValueError(
                f"alignment_head must be None or in [0, {heads}), got {alignment_head}"
            )

        self.d_model, self.heads = d_model, heads
        self.max_positions = max_positions
        self.alignment_layer = alignment_layer % decoder_layers
        self.alignment_head = alignment_head
        self.emb_scale = math.sqrt(d_model)

        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model, padding_idx=self.pad_id)
        self.src_embed = (
            self.tgt_embed
            if share_embeddings
            else nn.Embedding(src_vocab_size, d_model, padding_idx=self.pad_id)
        )
        # N(0, D^-1/2): unit scale after * sqrt(D); fixed order keeps seeded init reproducible
        for emb in dict.fromkeys([self.tgt_embed, self.src_embed]):
            nn.init.normal_(emb.weight, std=d_model**-0.5)
            with torch.no_grad():
                emb.weight[self.pad_id].zero_()
        positions = LearnedPositions if learned_positions else SinusoidalPositions
        # None disables positions (tests: a position-free encoder is permutation-equivariant)
        self.src_positions: nn.Module | None = positions(max_positions, d_model)
        self.tgt_positions: nn.Module | None = positions(max_positions, d_model)
        self.drop = Dropout(dropout)

        layer_args = (d_model, heads, ff_size, dropout, attention_dropout, pre_norm)
        self.encoder = nn.ModuleList(EncoderLayer(*layer_args) for _ in range(encoder_layers))
        self.decoder = nn.ModuleList(DecoderLayer(*layer_args) for _ in range(decoder_layers))
        # pre-LN leaves the residual stream un-normalised: one final LayerNorm on each side
        self.encoder_norm = nn.LayerNorm(d_model) if pre_norm else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if pre_norm else nn.Identity()

        self.output = nn.Linear(d_model, tgt_vocab_size, bias=False)
        if tie_output:
            self.output.weight = self.tgt_embed.weight
        else:
            nn.init.normal_(self.output.weight, std=d_model**-0.5)

    # ------------------------------------------------------------------ embeddings

    def _embed(self, embed: nn.Embedding, positions: nn.Module | None, ids: Tensor, start: int):
        """ids (B, T) -> drop(emb * sqrt(D) + PE[start : start+T]) (B, T, D)."""
        x = embed(ids) * self.emb_scale  # (B, T, D)
        if positions is not None:
            if start + ids.shape[1] > self.max_positions:
                raise ValueError(
                    f"sequence position {start + ids.shape[1] - 1} exceeds max_positions="
                    f"{self.max_positions}; raise model.max_positions"
                )
            x = x + positions(start, ids.shape[1]).to(x.dtype)
        return self.drop(x)

    # ------------------------------------------------------------------ encoder / decoder

    def _encode(self, src: Tensor, src_mask: Tensor) -> tuple[Tensor, Tensor]:
        """src (B, S), src_mask (B, S) -> memory (B, S, D), attention mask (B, 1, 1, S)."""
        mask = key_mask(src_mask)  # (B, 1, 1, S)
        x = self._embed(self.src_embed, self.src_positions, src, 0)  # (B, S, D)
        for layer in self.encoder:
            x = layer(x, mask)
        return self.encoder_norm(x), mask

    def _decode(
        self,
        memory: Tensor,  # (B, S, D)
        attn_mask: Tensor,  # (B, 1, 1, S)
        tgt_in: Tensor,  # (B, T)
        tgt_mask: Tensor,  # (B, T)
        weights_from: set[int],  # decoder layers whose cross-attention weights are returned
    ) -> tuple[Tensor, list[Tensor | None]]:
        """Teacher-forced decoder -> features (B, T, D) (the output layer's input), per-layer
        weights (B, H, T, S) or None."""
        # causal: targets are right-padded, so is_causal (the flash kernel's) is exact for
        # every real position; causal_mask(tgt_mask) would rule that kernel out
        self_mask = None
        x = self._embed(self.tgt_embed, self.tgt_positions, tgt_in, 0)  # (B, T, D)
        all_weights: list[Tensor | None] = []
        for i, layer in enumerate(self.decoder):
            kv = layer.cross_attn.project_memory(memory)  # keys, values (B, H, S, dh)
            x, weights = layer(x, self_mask, kv, attn_mask, i in weights_from)
            all_weights.append(weights)
        return self.decoder_norm(x), all_weights

    def _alignment(self, weights: Tensor) -> Tensor:
        """(B, H, T, S) -> (B, T, S): the configured head, or the mean over heads."""
        if self.alignment_head is None:
            return weights.mean(dim=1)
        return weights[:, self.alignment_head]

    # ------------------------------------------------------------------ the contract

    def forward(
        self,
        src: Tensor,  # (B, S)
        src_mask: Tensor,  # (B, S) bool
        tgt_in: Tensor,  # (B, T)
        tgt_mask: Tensor,  # (B, T) bool
        *,
        need_attn: bool = False,
        features_only: bool = False,
    ) -> Seq2SeqOutput:
        """-> logits (B, T, V) (or, with ``features_only``, features (B, T, D) and no logits);
        attn_weights (B, T, S) float32 of the alignment layer/head when ``need_attn`` (computed
        by the explicit attention path), else None."""
        memory, attn_mask = self._encode(src, src_mask)
        wanted = {self.alignment_layer} if need_attn else set()
        features, weights = self._decode(memory, attn_mask, tgt_in, tgt_mask, wanted)
        attn = self._alignment(weights[self.alignment_layer]) if need_attn else None
        if features_only:
            return Seq2SeqOutput(logits=None, attn_weights=attn, features=features)
        return Seq2SeqOutput(logits=self.output(features), attn_weights=attn)

    @property
    def output_layer(self) -> nn.Linear:
        return self.output

    def cross_attention_weights(
        self, src: Tensor, src_mask: Tensor, tgt_in: Tensor, tgt_mask: Tensor
    ) -> Tensor:
        """Every decoder layer's and head's cross-attention weights (alignment dumping):
        -> (B, L, H, T, S) float32, rows sum to 1, exactly 0 on source padding."""
        memory, attn_mask = self._encode(src, src_mask)
        _, weights = self._decode(
            memory, attn_mask, tgt_in, tgt_mask, set(range(len(self.decoder)))
        )
        return torch.stack(weights, dim=1)  # (B, L, H, T, S)

    def encode(self, src: Tensor, src_mask: Tensor) -> TransformerState:
        """-> the state of B sentences, one row each: the source part (attention mask
        (B, 1, 1, S), per decoder layer cross keys and values (B, H, S, dh), computed once) and
        per decoder layer an empty self-attention cache (B, H, CACHE_CHUNK, dh)."""
        memory, attn_mask = self._encode(src, src_mask)
        b, dh = src.shape[0], self.d_model // self.heads
        cross, caches = [], []
        for layer in self.decoder:
            keys, values = layer.cross_attn.project_memory(memory)  # (B, H, S, dh) each
            cross.append((keys.contiguous(), values.contiguous()))
            caches.append(KVCache.empty(b, self.heads, dh, like=keys))
        return TransformerState(TransformerSource(attn_mask, cross), caches)

    def reorder_state(self, state: TransformerState, order: RowOrder) -> TransformerState:
        """The caches follow ``order.rows`` (copying only their filled positions, see
        ``KVCache.select``); the source part keeps one row per sentence, so it is selected
        only when sentences leave (``order.sentences``) and never copied to the beams."""
        source = state.source
        if order.sentences is not None:
            source = source.select(order.sentences)
        return TransformerState(source, [cache.select(order.rows) for cache in state.caches])

    @property
    def max_decode_length(self) -> int:
        """The position table's size: decoding past it would fail."""
        return self.max_positions

    def decode_step(
        self,
        prev_tokens: Tensor,  # (B,)
        state: TransformerState,
        step: int,
        *,
        need_attn: bool = False,
    ) -> StepOutput:
        """Consume prev_tokens at position ``step`` -> float32 log-probs (B, V), the state (the
        same object: every cache gets position ``step`` written in place), alignment weights
        (B, S) or None. The B = G*n rows run over the n source rows (``CrossAttention.step``).
        Calling again with the same ``step`` overwrites the same position, which is still
        correct."""
        source = state.source
        x = self._embed(self.tgt_embed, self.tgt_positions, prev_tokens[:, None], step)
        attn = None
        for i, (layer, cache, cross) in enumerate(
            zip(self.decoder, state.caches, source.cross, strict=True)
        ):
            want = need_attn and i == self.alignment_layer
            x, weights = layer.step(x, cache, step, cross, source.attn_mask, want)
            if want:
                attn = self._alignment(weights)[:, 0]  # (B, S)
        logits = self.output(self.decoder_norm(x))[:, 0]  # (B, V)
        log_probs = torch.log_softmax(logits, dim=-1, dtype=torch.float32)  # even under autocast
        return StepOutput(log_probs=log_probs, state=state, attn_weights=attn)
