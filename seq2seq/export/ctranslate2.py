"""A trained Transformer run as a CTranslate2 model directory (``seq2seq-export format=ctranslate2``).

The weights go through CTranslate2's spec API (``ctranslate2.specs.TransformerSpec``), layer by
layer as its own fairseq and OpenNMT-py converters map theirs: fused QKV self-attention
(``linear[0]``), query and fused KV cross-attention (``linear[0]``, ``linear[1]``), the output
projections last; each sub-layer's LayerNorm on its spec (applied before the sub-layer with
``pre_norm``, after the residual without); embeddings scaled by sqrt(d_model); ReLU.

What makes the exported model decode as ours does (tests/export/test_ctranslate2.py checks
greedy outputs token for token):

* Special tokens: our sentencepiece models put ``<pad>`` 0, ``<unk>`` 1, ``<s>`` 2, ``</s>`` 3
  (seq2seq.data.vocab). CTranslate2 finds unk/bos/eos by name, and the names we register are
  those very pieces, so no id is remapped; ``<pad>`` is never read (CTranslate2 pads by
  lengths). The source gets ``</s>`` appended (``add_source_eos``, as ``encode_src`` does); the
  target starts from ``<s>`` (``decoder_start_token``) and ends at ``</s>``.
* Our decoders never emit ``<pad>`` or ``<s>`` (``decoding.common.ban_special_tokens_``). The
  model has no output bias, so the export gives the projection one: ``BANNED_LOGIT`` on those
  two rows, 0 elsewhere. Their probability underflows to exactly 0 next to any real logit, so
  CTranslate2 never picks them and every other token's log-prob is unchanged.
* Positions: our own table (interleaved sin/cos from position 0, or the learned one) is
  written as the encodings; CTranslate2's built-in sinusoids are laid out differently.
* One LayerNorm epsilon for the whole model (``layer_norm_epsilon``), ours (1e-5).

Decoding options that match ours: ``min_decoding_length=0`` (ours may stop at once),
``max_decoding_length`` from :func:`max_decoding_lengths`. Beam search ranks differently:
CTranslate2 divides by ``length ** length_penalty``, ours by GNMT's ``((5 + length) / 6) ** alpha``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import ExportQuantization
from ..data.vocab import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from ..decode_defaults import MAX_LEN_OFFSET, MAX_LEN_RATIO
from ..decoding.common import max_output_lengths
from ..errors import ExportError
from ..models.base import lengths_to_mask
from ..models.transformer import (
    CrossAttention,
    FeedForward,
    SelfAttention,
    TransformerSeq2Seq,
)

FORMAT = "ctranslate2"
SOURCE_SPM, TARGET_SPM = "source.spm", "target.spm"  # sentencepiece models, beside model.bin
EXPORT_INFO = "seq2seq_export.json"  # where the export came from; marks a directory as ours
# the projection bias of the tokens our decoders never emit: float16-safe, and exp() of it next
# to any real logit is exactly 0
BANNED_LOGIT = -1.0e4
# CTranslate2's weight types; float32 keeps the weights as trained
QUANTIZATIONS = tuple(q.value for q in ExportQuantization)


def require_ctranslate2():
    """The ctranslate2 module, or ExportError naming the extra that installs it."""
    try:
        import ctranslate2
    except ImportError:
        raise ExportError(
            "ctranslate2 is not installed: pip install 'seq2seq[export]' (or pip install ctranslate2)"
        ) from None
    return ctranslate2


def check_exportable(model: nn.Module) -> None:
    """ExportError in one line unless CTranslate2 can express ``model``."""
    if not isinstance(model, TransformerSeq2Seq):
        raise ExportError(
            f"CTranslate2 exports Transformers only; this run's model is {type(model).__name__}"
        )
    if len(model.encoder) == 0:
        raise ExportError("CTranslate2 needs at least one encoder layer; this model has none")
    if model.src_positions is None or model.tgt_positions is None:
        raise ExportError("CTranslate2 needs position encodings; this model has none")
    eps = {m.eps for m in model.modules() if isinstance(m, nn.LayerNorm)}
    if len(eps) > 1:
        raise ExportError(f"CTranslate2 has one LayerNorm epsilon; this model has {sorted(eps)}")


def _array(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().to("cpu", torch.float32).numpy())


def _set_linear(spec, linear: nn.Linear) -> None:
    spec.weight = _array(linear.weight)  # (out, in), as CTranslate2 stores it
    if linear.bias is not None:
        spec.bias = _array(linear.bias)


def _set_norm(spec, norm: nn.LayerNorm) -> None:
    spec.gamma = _array(norm.weight)
    spec.beta = _array(norm.bias)


def _set_self_attention(spec, attn: SelfAttention, norm: nn.LayerNorm) -> None:
    _set_linear(spec.linear[0], attn.qkv)  # (3D, D): queries, keys, values, each head-major
    _set_linear(spec.linear[1], attn.out)
    _set_norm(spec.layer_norm, norm)


def _set_cross_attention(spec, attn: CrossAttention, norm: nn.LayerNorm) -> None:
    _set_linear(spec.linear[0], attn.q)
    _set_linear(spec.linear[1], attn.kv)  # (2D, D): keys, values
    _set_linear(spec.linear[2], attn.out)
    _set_norm(spec.layer_norm, norm)


def _set_ffn(spec, ff: FeedForward, norm: nn.LayerNorm) -> None:
    _set_linear(spec.linear_0, ff.fc1)
    _set_linear(spec.linear_1, ff.fc2)
    _set_norm(spec.layer_norm, norm)


def _set_inputs(spec, embeddings_spec, embed: nn.Embedding, positions: nn.Module) -> None:
    embeddings_spec.weight = _array(embed.weight)  # (V, D)
    spec.scale_embeddings = True  # x * sqrt(D), as TransformerSeq2Seq._embed
    spec.position_encodings.encodings = _array(positions.table)  # (max_positions, D)


def alignment_heads(model: TransformerSeq2Seq) -> int:
    """CTranslate2 averages the first N heads of the alignment layer (0: all). Ours reads one
    head or the mean: head 0 is N = 1, the mean is 0; another single head has no equivalent,
    so CTranslate2's ``return_attention`` gives the mean over heads there."""
    if model.alignment_head is None or model.alignment_head > 0:
        return 0
    return 1


def transformer_spec(model: TransformerSeq2Seq, src_vocab: Sequence[str], tgt_vocab: Sequence[str]):
    """``model``'s weights and vocabularies (pieces by id) as a ``TransformerSpec``, not yet
    validated, optimized or saved."""
    require_ctranslate2()
    from ctranslate2.specs import common_spec
    from ctranslate2.specs.transformer_spec import TransformerSpec

    check_exportable(model)
    if list(src_vocab[: EOS_ID + 1]) != list(tgt_vocab[: EOS_ID + 1]):
        raise ExportError(
            f"source and target special pieces differ ({list(src_vocab[:4])} vs "
            f"{list(tgt_vocab[:4])}): not vocabularies written by seq2seq"
        )
    pre_norm = model.decoder[0].pre_norm
    spec = TransformerSpec.from_config(
        (len(model.encoder), len(model.decoder)),
        model.heads,
        pre_norm=pre_norm,
        activation=common_spec.Activation.RELU,
        alignment_layer=model.alignment_layer,
        alignment_heads=alignment_heads(model),
    )
    encoder, decoder = spec.encoder, spec.decoder
    _set_inputs(encoder, encoder.embeddings[0], model.src_embed, model.src_positions)
    for layer_spec, layer in zip(encoder.layer, model.encoder, strict=True):
        _set_self_attention(layer_spec.self_attention, layer.self_attn, layer.norm1)
        _set_ffn(layer_spec.ffn, layer.ff, layer.norm2)
    _set_inputs(decoder, decoder.embeddings, model.tgt_embed, model.tgt_positions)
    for layer_spec, layer in zip(decoder.layer, model.decoder, strict=True):
        _set_self_attention(layer_spec.self_attention, layer.self_attn, layer.norm1)
        _set_cross_attention(layer_spec.attention, layer.cross_attn, layer.norm2)
        _set_ffn(layer_spec.ffn, layer.ff, layer.norm3)
    if pre_norm:  # post-LN has no final norm (nn.Identity), and the spec none either
        _set_norm(encoder.layer_norm, model.encoder_norm)
        _set_norm(decoder.layer_norm, model.decoder_norm)
    # tied weights stay one variable: optimize() aliases equal arrays
    decoder.projection.weight = _array(model.output.weight)
    bias = np.zeros(model.output.weight.shape[0], dtype=np.float32)
    bias[[PAD_ID, BOS_ID]] = BANNED_LOGIT
    decoder.projection.bias = bias

    spec.register_source_vocabulary(list(src_vocab))
    spec.register_target_vocabulary(list(tgt_vocab))
    config = spec.config
    config.unk_token, config.eos_token = tgt_vocab[UNK_ID], tgt_vocab[EOS_ID]
    config.bos_token = config.decoder_start_token = tgt_vocab[BOS_ID]
    config.add_source_eos = True
    config.layer_norm_epsilon = float(model.decoder[0].norm1.eps)
    return spec


def pieces(processor) -> list[str]:
    """A sentencepiece processor's pieces by id."""
    return [processor.id_to_piece(i) for i in range(processor.get_piece_size())]


def max_decoding_lengths(
    num_pieces: Sequence[int], *, max_len_ratio: float, max_len_offset: int, max_positions: int
) -> list[int]:
    """Our decoders' output cap for sources of ``num_pieces`` pieces each (the source EOS is
    added here, as ours count it), to pass as CTranslate2's ``max_decoding_length``: the same
    decoding steps, the EOS step included, capped at the position table."""
    lengths = torch.tensor([n + 1 for n in num_pieces], dtype=torch.long)
    caps = max_output_lengths(lengths_to_mask(lengths), max_len_ratio, max_len_offset)
    return caps.clamp(max=max_positions).tolist()


def check_output_dir(out: Path, overwrite: bool) -> None:
    """ExportError unless ``out`` is absent, empty, or (with ``overwrite``) an earlier export:
    overwrite never deletes a directory this command did not write."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"out={out} is a file: give a directory")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise ExportError(
            f"output directory {out} exists and is not empty: pass overwrite=true to replace it, "
            "or another out=DIR"
        )
    if not (out / EXPORT_INFO).is_file():
        raise ExportError(
            f"output directory {out} is not an earlier export (no {EXPORT_INFO}), so "
            "overwrite=true does not delete it: choose another out=DIR"
        )


def export_run(
    run_dir: str | Path,
    out: str | Path | None = None,
    *,
    quantization: str = "float32",
    checkpoint: str = "best",
    overwrite: bool = False,
) -> Path:
    """Write ``run_dir``'s Transformer (``checkpoints/<checkpoint>.pt``) as a CTranslate2 model
    directory at ``out`` (default ``<run_dir>/export/ctranslate2``): model.bin, config.json,
    the vocabulary JSON(s), the sentencepiece models as ``source.spm`` and ``target.spm``, and
    ``seq2seq_export.json``. Returns ``out``."""
    from ..evaluation.run import load_run

    ct2 = require_ctranslate2()
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"quantization={quantization}; valid: {', '.join(QUANTIZATIONS)}")
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ExportError(
            f"run directory {run_dir} does not exist; pass run_dir=DIR of a training run"
        )
    out = Path(out) if out else run_dir / "export" / FORMAT
    check_output_dir(out, overwrite)
    run = load_run(run_dir, checkpoint=checkpoint, device="cpu")
    if not isinstance(run.model, TransformerSeq2Seq):
        raise ExportError(
            f"CTranslate2 exports Transformers only; {run_dir} is a model={run.config.model.name} run"
        )
    tokenizer = run.tokenizer
    spec = transformer_spec(run.model, pieces(tokenizer.src), pieces(tokenizer.tgt))
    spec.register_file(tokenizer.src_model_path, SOURCE_SPM)
    spec.register_file(tokenizer.tgt_model_path, TARGET_SPM)
    spec.validate()
    spec.optimize(quantization=quantization)
    info = export_info(run, quantization, ct2.__version__)

    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:  # written beside out, then moved in: an interrupted export leaves no half model
        spec.save(str(staging))
        (staging / EXPORT_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def export_info(run: Any, quantization: str, ct2_version: str) -> dict:
    """What ``seq2seq_export.json`` records: the run, the options, how to decode like ours."""
    model: TransformerSeq2Seq = run.model
    decode = run.config.get("decode", {})
    return {
        "format": FORMAT,
        "ctranslate2_version": ct2_version,
        "run_dir": str(run.run_dir.resolve()),
        "checkpoint": run.checkpoint.name,
        "step": run.step,
        "quantization": quantization,
        "source_spm": SOURCE_SPM,
        "target_spm": TARGET_SPM,
        "joint_vocabulary": run.tokenizer.joint,
        "never_emitted": [run.tokenizer.tgt.id_to_piece(i) for i in (PAD_ID, BOS_ID)],
        "max_positions": model.max_positions,
        "alignment_layer": model.alignment_layer,
        "alignment_heads": alignment_heads(model),
        # CTranslate2 options that decode like seq2seq-evaluate (see max_decoding_lengths)
        "decode_like_seq2seq": {
            "min_decoding_length": 0,
            "max_len_ratio": float(decode.get("max_len_ratio", MAX_LEN_RATIO)),
            "max_len_offset": int(decode.get("max_len_offset", MAX_LEN_OFFSET)),
        },
    }
