"""int8 decoding: every Linear but the ones read by weight is quantized, the float model is left
alone, and decoding stays close to fp32 on both families and every attention variant."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seq2seq.decoding import translate_batches
from seq2seq.decoding.precision import decoding_autocast, decoding_model
from seq2seq.decoding.quantize import int8_engine, quantize_int8
from seq2seq.errors import ConfigError
from seq2seq.models.rnn import RNNSeq2Seq
from seq2seq.models.transformer import TransformerSeq2Seq
from seq2seq.modules.attention import ATTENTIONS
from tests.conftest import tiny_transformer

pytestmark = pytest.mark.skipif(int8_engine() is None, reason="no x86/fbgemm quantized engine")

V = 40


def transformer() -> TransformerSeq2Seq:
    return tiny_transformer(V, V, encoder_layers=3, decoder_layers=3)


def rnn(attention: str):
    torch.manual_seed(0)
    model = {"emb_size": 16, "hidden_size": 32, "dropout": 0.0}
    attn = {"name": attention, "wiring": None, "input_feeding": True}  # the variant's defaults
    return RNNSeq2Seq.build(model, attn, src_vocab_size=V, tgt_vocab_size=V).eval()


def sources(n: int = 12) -> list[list[int]]:
    g = torch.Generator().manual_seed(1)
    return [
        torch.randint(4, V, (int(k),), generator=g).tolist() + [3]
        for k in torch.randint(2, 12, (n,), generator=g)
    ]


@pytest.mark.parametrize("family", ["transformer", *ATTENTIONS])
def test_int8_copy_decodes_close_to_fp32_and_leaves_the_float_model(family):
    model = transformer() if family == "transformer" else rnn(family)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantized = quantize_int8(model)

    float_linears = [m for m in model.modules() if type(m) is nn.Linear]
    assert float_linears and all(type(m) is nn.Linear for m in float_linears)  # untouched
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    q_names = {n for n, m in quantized.named_modules() if "quantized" in type(m).__module__}
    kept = {  # Linear children of modules that read their weight directly (location): float
        f"{owner}.{child}"
        for owner, module in model.named_modules()
        if getattr(module, "reads_linear_weights", False)
        for child, sub in module.named_children()
        if type(sub) is nn.Linear
    }
    assert bool(kept) == (family != "transformer" and ATTENTIONS[family].reads_linear_weights)
    quantized_modules = dict(quantized.named_modules())
    for name in kept:
        assert name not in q_names and type(quantized_modules[name]) is nn.Linear, name
    assert len(q_names) >= len(float_linears) - len(kept)

    srcs = sources()
    ref = translate_batches(model, srcs, beam_size=1, batch_size=4)
    got = translate_batches(quantized, srcs, beam_size=1, batch_size=4)
    # the same first token for (nearly) every sentence
    agree = sum(r.tokens[:1] == g.tokens[:1] for r, g in zip(ref, got, strict=True))
    assert agree >= len(srcs) - 2
    beam = translate_batches(quantized, srcs, beam_size=3, batch_size=4)
    assert all(h.length >= 1 for h in beam)


def test_int8_log_probs_track_fp32():
    model = transformer()
    quantized = quantize_int8(model)
    g = torch.Generator().manual_seed(2)
    src = torch.randint(4, V, (6, 9), generator=g)
    mask = torch.ones(6, 9, dtype=torch.bool)
    with torch.no_grad():
        a = model.decode_step(torch.full((6,), 2), model.encode(src, mask), 0).log_probs
        b = quantized.decode_step(torch.full((6,), 2), quantized.encode(src, mask), 0).log_probs
    assert (a - b).abs().max() < 0.1  # per-channel int8 weights, per-call int8 activations
    assert torch.equal(a.argmax(-1), b.argmax(-1))


def test_decoding_precisions():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert decoding_autocast("int8", cpu) is None
    assert decoding_autocast("fp32", cpu) is None
    assert decoding_autocast("bf16", cpu) is torch.bfloat16
    with pytest.raises(ConfigError, match="precision=int8 decodes on the CPU only, not on cuda"):
        decoding_autocast("int8", cuda)
    model = transformer()
    same = decoding_model(model, "fp32")
    assert same is model
    quantized = decoding_model(model, "int8")
    assert quantized is not model
    assert any("quantized" in type(m).__module__ for m in quantized.modules())
