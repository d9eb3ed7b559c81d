"""Small deterministic models implementing the Seq2Seq contract, for the decoding tests.

* :class:`ToyGRUSeq2Seq`: a tiny GRU encoder-decoder with dot attention and random weights
  from a fixed seed: realistic tensors, shapes and padding behaviour. Its state keeps the
  source part apart and copies it only when sentences leave (as the RNN does).
* :class:`CopyAllToyGRU`: the same model copying its whole state at every reorder.
* :class:`SourceFreeSeq2Seq`: a model whose whole state is ONE (rows, hidden) tensor that
  holds nothing of the source after ``encode``: the decoders never look inside a state.
* :class:`TableSeq2Seq`: the next-token distribution is looked up from a hand-written table
  keyed by the prefix emitted so far, so the best sequence and its score are known by hand.
* :class:`CallRecorder`: wraps a model and records the batch size of every decode_step call.
* :func:`teacher_forced`: scores a given output by feeding it to decode_step, for checks.
"""

from __future__ import annotations

import math
import random

import torch
from torch import Tensor, nn

from seq2seq.models.base import DecodingState, RowOrder, Seq2Seq, StepOutput

PAD, UNK, BOS, EOS = 0, 1, 2, 3


class ToyGRUSeq2Seq(Seq2Seq):
    """GRU encoder, GRUCell decoder, dot attention over the encoder outputs.

    Random weights put about 1/V of the mass on EOS at every step, which would make output
    lengths unrelated to the source; a logit bias on EOS growing with ``step - src_len`` makes
    outputs end around the source length, as a trained model's do.
    """

    def __init__(
        self,
        vocab_size: int = 24,
        emb_size: int = 16,
        hidden_size: int = 32,
        seed: int = 0,
        sharpness: float = 3.0,
        eos_slope: float = 0.5,
    ) -> None:
        super().__init__()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.src_emb = nn.Embedding(vocab_size, emb_size, padding_idx=PAD)
        self.tgt_emb = nn.Embedding(vocab_size, emb_size, padding_idx=PAD)
        self.encoder = nn.GRU(emb_size, hidden_size, batch_first=True)
        self.cell = nn.GRUCell(emb_size, hidden_size)
        self.out = nn.Linear(2 * hidden_size, vocab_size)
        torch.random.set_rng_state(generator_state)
        self.sharpness = sharpness  # peaked distributions, like a trained model's
        self.eos_slope = eos_slope
        self.vocab_size = vocab_size

    SOURCE_KEYS = frozenset(["memory", "src_mask", "src_len"])  # the same for a sentence's rows

    def encode(self, src: Tensor, src_mask: Tensor) -> dict[str, Tensor]:
        # A unidirectional GRU is causal, so right padding does not change real positions.
        memory, _ = self.encoder(self.src_emb(src))  # (B, S, H)
        src_lengths = src_mask.sum(dim=1)
        last = memory[torch.arange(src.size(0)), src_lengths - 1]  # (B, H)
        return {
            "hidden": last,
            "memory": memory,
            "src_mask": src_mask,
            "src_len": src_lengths.float(),
        }

    def reorder_state(self, state: dict[str, Tensor], order: RowOrder) -> dict[str, Tensor]:
        """``hidden`` follows the rows; the source part is copied only when sentences leave or
        the rows per sentence change (its rows are the same for every row of a sentence)."""
        same_sentences = order.sentences is None and order.rows.numel() == state["hidden"].size(0)
        return {
            key: value
            if same_sentences and key in self.SOURCE_KEYS
            else value.index_select(0, order.rows)
            for key, value in state.items()
        }

    def decode_step(
        self, prev_tokens: Tensor, state: dict[str, Tensor], step: int, *, need_attn: bool = False
    ) -> StepOutput:
        hidden = self.cell(self.tgt_emb(prev_tokens), state["hidden"])  # (B, H)
        energies = torch.bmm(state["memory"], hidden.unsqueeze(2)).squeeze(2)  # (B, S)
        energies = energies.masked_fill(~state["src_mask"], float("-inf"))
        weights = torch.softmax(energies, dim=-1)
        context = torch.bmm(weights.unsqueeze(1), state["memory"]).squeeze(1)  # (B, H)
        logits = self.sharpness * self.out(torch.cat([hidden, context], dim=-1))
        eos_bias = self.eos_slope * (step + 1 - state["src_len"])
        logits = logits.index_add(1, torch.tensor([EOS]), eos_bias.unsqueeze(1))
        new_state = dict(state)
        new_state["hidden"] = hidden
        return StepOutput(
            torch.log_softmax(logits.float(), dim=-1), new_state, weights if need_attn else None
        )


class CopyAllToyGRU(ToyGRUSeq2Seq):
    """:class:`ToyGRUSeq2Seq` whose reorder copies every state tensor, the source part too."""

    def reorder_state(self, state: dict[str, Tensor], order: RowOrder) -> dict[str, Tensor]:
        return {key: value.index_select(0, order.rows) for key, value in state.items()}


class SourceFreeSeq2Seq(Seq2Seq):
    """The opaque-state contract at its barest: ``encode`` folds the source into one
    (rows, hidden + 1) tensor (a GRU summary, and the source length in the last column), and
    that tensor is the whole state; ``reorder_state`` is one ``index_select``. No attention."""

    def __init__(self, vocab_size: int = 24, hidden_size: int = 16, seed: int = 1) -> None:
        super().__init__()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.src_emb = nn.Embedding(vocab_size, hidden_size, padding_idx=PAD)
        self.tgt_emb = nn.Embedding(vocab_size, hidden_size, padding_idx=PAD)
        self.cell = nn.GRUCell(hidden_size, hidden_size)
        self.out = nn.Linear(hidden_size, vocab_size)
        torch.random.set_rng_state(generator_state)

    def encode(self, src: Tensor, src_mask: Tensor) -> Tensor:
        lengths = src_mask.sum(dim=1, keepdim=True).float()  # (B, 1)
        summary = (self.src_emb(src) * src_mask[..., None]).sum(dim=1) / lengths  # (B, H)
        return torch.cat([torch.tanh(summary), lengths], dim=1)  # (B, H + 1)

    def reorder_state(self, state: Tensor, order: RowOrder) -> Tensor:
        return state.index_select(0, order.rows)

    def decode_step(
        self, prev_tokens: Tensor, state: Tensor, step: int, *, need_attn: bool = False
    ) -> StepOutput:
        hidden, lengths = state[:, :-1], state[:, -1:]  # (B, H), (B, 1)
        hidden = self.cell(self.tgt_emb(prev_tokens), hidden)
        logits = 3.0 * self.out(hidden)
        eos_bias = 0.5 * (step + 1 - lengths)  # outputs end around the source length
        logits = logits.index_add(1, torch.tensor([EOS]), eos_bias)
        new_state = torch.cat([hidden, lengths], dim=1)
        return StepOutput(torch.log_softmax(logits, dim=-1), new_state, None)

    @property
    def has_alignment(self) -> bool:
        return False


class TableSeq2Seq(Seq2Seq):
    """Next-token probabilities come from ``table[prefix]`` (prefix = tuple of emitted ids);
    prefixes not in the table get ``default``. Tokens absent from a distribution have
    probability 0 (log-prob -inf). Attention is uniform over the real source tokens."""

    def __init__(
        self,
        table: dict[tuple[int, ...], dict[int, float]],
        vocab_size: int = 8,
        default: dict[int, float] | None = None,
    ) -> None:
        super().__init__()
        self.table = table
        self.vocab_size = vocab_size
        self.default = default if default is not None else {EOS: 1.0}
        self.dummy = nn.Parameter(torch.zeros(1))  # so the model has a device

    def encode(self, src: Tensor, src_mask: Tensor) -> dict[str, Tensor]:
        prefix = torch.zeros(src.size(0), 0, dtype=torch.long)  # grows one column per step
        return {"prefix": prefix, "src_mask": src_mask}

    def _log_probs(self, prefix: tuple[int, ...]) -> list[float]:
        dist = self.table.get(prefix, self.default)
        return [
            math.log(dist[t]) if dist.get(t, 0) > 0 else -math.inf for t in range(self.vocab_size)
        ]

    def reorder_state(self, state: dict[str, Tensor], order: RowOrder) -> dict[str, Tensor]:
        return {key: value.index_select(0, order.rows) for key, value in state.items()}

    def decode_step(
        self, prev_tokens: Tensor, state: dict[str, Tensor], step: int, *, need_attn: bool = False
    ) -> StepOutput:
        prefix = state["prefix"]
        if step > 0:
            prefix = torch.cat([prefix, prev_tokens.unsqueeze(1)], dim=1)
        log_probs = torch.tensor(
            [self._log_probs(tuple(row)) for row in prefix.tolist()], dtype=torch.float32
        ).view(prev_tokens.size(0), self.vocab_size)
        mask = state["src_mask"].float()
        weights = mask / mask.sum(dim=1, keepdim=True)
        return StepOutput(
            log_probs,
            {"prefix": prefix, "src_mask": state["src_mask"]},
            weights if need_attn else None,
        )


class CallRecorder(Seq2Seq):
    """Delegates to ``inner`` and records ``prev_tokens.size(0)`` of every decode_step call."""

    def __init__(self, inner: Seq2Seq) -> None:
        super().__init__()
        self.inner = inner
        self.batch_sizes: list[int] = []

    @property
    def max_decode_length(self) -> int | None:
        return self.inner.max_decode_length

    @property
    def has_alignment(self) -> bool:
        return self.inner.has_alignment

    def encode(self, src: Tensor, src_mask: Tensor) -> DecodingState:
        return self.inner.encode(src, src_mask)

    def reorder_state(self, state: DecodingState, order: RowOrder) -> DecodingState:
        return self.inner.reorder_state(state, order)

    def decode_step(
        self, prev_tokens: Tensor, state: DecodingState, step: int, *, need_attn: bool = False
    ) -> StepOutput:
        self.batch_sizes.append(prev_tokens.size(0))
        return self.inner.decode_step(prev_tokens, state, step, need_attn=need_attn)


def random_sources(
    num_sentences: int, *, min_len: int = 1, max_len: int = 12, vocab_size: int = 24, seed: int = 0
) -> list[list[int]]:
    """Source id lists of varied lengths, each ending with EOS, using ids >= 4 for words."""
    rng = random.Random(seed)
    return [
        [rng.randrange(4, vocab_size) for _ in range(rng.randint(min_len, max_len) - 1)] + [EOS]
        for _ in range(num_sentences)
    ]


def padded(sources: list[list[int]]) -> tuple[Tensor, Tensor]:
    """(batch, max_len) ids right-padded with PAD, and the bool mask."""
    width = max(len(s) for s in sources)
    src = torch.tensor([s + [PAD] * (width - len(s)) for s in sources], dtype=torch.long)
    return src, src != PAD


@torch.inference_mode()
def teacher_forced(
    model: Seq2Seq, source: list[int], tokens: list[int], finished: bool
) -> tuple[float, torch.Tensor]:
    """Score ``tokens`` (+ EOS when finished) for one unpadded source by feeding them to
    decode_step one at a time; returns (sum of log-probs, (steps, src_len) attention)."""
    src = torch.tensor([source])
    state = model.encode(src, torch.ones_like(src, dtype=torch.bool))
    targets = tokens + ([EOS] if finished else [])
    prev = torch.tensor([BOS])
    total = 0.0
    rows = []
    for step, target in enumerate(targets):
        out = model.decode_step(prev, state, step, need_attn=True)
        total += float(out.log_probs[0, target])
        rows.append(out.attn_weights[0])
        state, prev = out.state, torch.tensor([target])
    return total, torch.stack(rows)


def assert_close(actual: Tensor, expected: Tensor, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Shape and values equal within tolerance; cheaper than torch.testing.assert_close, whose
    first call imports sympy (~2 s)."""
    assert actual.shape == expected.shape, (tuple(actual.shape), tuple(expected.shape))
    assert torch.allclose(actual, expected, atol=atol, rtol=rtol), (actual - expected).abs().max()
