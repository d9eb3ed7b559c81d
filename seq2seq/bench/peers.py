"""Peer toolkits for the speed benchmark: Joey NMT 2.3.0 and OpenNMT-py 3.5.1.

Plain functions, no dependency on our model code. Each peer lives in its own virtual
environment (``scripts/install_peers.sh``: ``build/peers/{joeynmt,opennmt}-venv``) and is run as
a subprocess with that venv's python, 2 intra-op threads, fp32, CPU.

Workflow::

    paths = write_peer_data(workdir, train_src, train_tgt, test_src, spm_model)
    result = run_peer("opennmt", "rnn", workdir=workdir, venv_dir="build/peers/opennmt-venv",
                      steps=30, warmup_steps=5, batch_target_tokens=4000,
                      decode_beam=(1, 5), decode_max_len=30)

Same pieces for every toolkit: the corpus is segmented once with OUR sentencepiece model and
written as pieces joined by spaces; both peers are configured to split on spaces only (Joey
``level: word`` with no tokenizer, OpenNMT with no transforms), and both get a vocabulary file
holding exactly our 8000 pieces.

How throughput is measured (the same for both peers): the peer's own entry point
(``joeynmt train`` / ``onmt_train``) runs inside a small runner (``RUNNER_SOURCE``, written to
the work directory) that only observes. It registers a global torch optimizer post-step hook
that writes one JSON line per optimizer step: ``time.perf_counter()`` right after the step and
the REAL target tokens of that step (non-pad target positions, EOS included, BOS excluded; the
unit our trainer reports). Joey: ``batch.ntokens`` of every batch given to
``TrainManager._train_step``; OpenNMT: ``batch["tgt"][:, 1:].ne(pad).sum()`` of the batches
given to ``Trainer._gradient_accumulation``. Tokens/s = sum of the tokens of steps
``warmup+1 .. warmup+steps`` / (time after the last step - time after the warm-up's last step),
so it covers everything a step costs (data loading, forward, backward, clipping, Adam, logging).
The peer's own log figure (Joey's "Tokens per Sec", OpenNMT's "tgt tok/s") is parsed too and
returned beside it as a cross-check.

Batch size: each toolkit's unit differs, so the configured size is calibrated to carry
``batch_target_tokens`` real target tokens per step on average, by replaying the peer's own
batching rule over the segmented corpus (``simulate_batches``):

* Joey ``batch_type: token``: a random shuffle (no bucketing); a batch closes once
  ``len(batch) * max_i max(src_i + 1, tgt_i + 1) >= batch_size`` (padded length incl. EOS/BOS).
* OpenNMT ``batch_type tokens``: buckets of ``bucket_size`` examples sorted by length; a batch
  closes once ``len(batch) * max_i max(src_i, tgt_i + 2) >= batch_size`` (source without EOS,
  target with BOS and EOS).

The measured mean real target tokens per step is returned (``real_tgt_tokens_per_batch``).

Decoding: checkpoint-independent workload. ``min_length = max_length = decode_max_len`` in both
peers (Joey ``min_output_length``/``max_output_length``; OpenNMT ``-min_length``/``-max_length``
with ``-max_length_ratio 0``), so every hypothesis has exactly ``decode_max_len`` tokens whatever
the (undertrained) model prefers; output tokens are counted in the output file. Batches of
``decode_batch_size`` sentences; beam search with GNMT length penalty alpha 0.6. Decode time is the
peer's own generation time (Joey "Generation took", OpenNMT ``-report_time`` "Total translation
time"), wall time of the whole process (start-up and model load included) is returned too.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TOOLKITS = ("joeynmt", "opennmt")
FAMILIES = ("rnn", "transformer")

# Our model configuration (configs/model/*.yaml, seq2seq/config.py): the peers are set to match.
RNN = {"emb_size": 256, "enc_hidden_per_dir": 512, "dec_hidden": 512, "dropout": 0.2}
TRANSFORMER = {"layers": 3, "d_model": 256, "heads": 4, "ff_size": 1024, "dropout": 0.1}
OPTIM = {"lr": 1e-3, "betas": (0.9, 0.98), "clip_grad_norm": 1.0, "label_smoothing": 0.1}
BEAM_ALPHA = 0.6
SEED = 1234
OPENNMT_BUCKET_SIZE = 32768  # the default 262144 stalls for minutes on a 29k-pair corpus
DEFAULT_TIMEOUT_S = 3600

# Our sentencepiece ids: pad=0, unk=1, bos=2, eos=3 (seq2seq/data/vocab.py).
SPM_SPECIALS = 4
# Joey's Vocabulary always puts its specials first in the order unk, pad, bos, eos, so its ids
# must be unk=0, pad=1, bos=2, eos=3 (our pad/unk swapped: the peers read pieces as text, so the
# id permutation is harmless).
JOEY_SPECIALS = ("<unk>", "<pad>", "<s>", "</s>")
# OpenNMT prepends its default specials <unk>, <blank>, <s>, </s> to the vocabulary file.
OPENNMT_SPECIALS = ("<unk>", "<blank>", "<s>", "</s>")


class PeerError(RuntimeError):
    """A peer run failed; the message names the log file."""


# --------------------------------------------------------------------------- data


def _pieces(spm_model_path: str | Path) -> list[str]:
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_model_path))
    ids = (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id())
    if ids != (0, 1, 2, 3):
        raise ValueError(f"sentencepiece model has pad/unk/bos/eos ids {ids}; expected 0, 1, 2, 3")
    # ids 0-3 are specials (control/unknown), never emitted as text pieces
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
    return pieces


def joey_vocab_lines(pieces: Sequence[str]) -> list[str]:
    """Joey ``voc_file`` lines (line i = Joey id i): its specials, then our pieces 4.. in id order."""
    return list(JOEY_SPECIALS) + list(pieces[SPM_SPECIALS:])


def opennmt_vocab_lines(pieces: Sequence[str]) -> list[str]:
    """OpenNMT ``src_vocab`` lines: our pieces 4.. (it prepends its 4 specials itself)."""
    return list(pieces[SPM_SPECIALS:])


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")


def write_peer_data(
    workdir: str | Path,
    train_src: Sequence[str],
    train_tgt: Sequence[str],
    test_src: Sequence[str],
    spm_model_path: str | Path,
    *,
    src_lang: str = "de",
    tgt_lang: str = "en",
) -> dict[str, str]:
    """Segment raw sentences with OUR sentencepiece model and write what both peers read.

    ``workdir/data/{train.<src>,train.<tgt>,test.<src>,dev.<src>}`` (dev: 16 test lines, which
    Joey loads but never uses here): pieces joined by single spaces, one
    sentence per line (empty segmentations get the unknown piece so no line is empty);
    ``workdir/data/vocab.joey.txt`` and ``vocab.onmt.txt``; ``workdir/data/meta.json``.
    Returns the paths by name.
    """
    import sentencepiece as spm

    if len(train_src) != len(train_tgt):
        raise ValueError(f"{len(train_src)} source vs {len(train_tgt)} target training lines")
    data = Path(workdir) / "data"
    data.mkdir(parents=True, exist_ok=True)
    pieces = _pieces(spm_model_path)
    sp = spm.SentencePieceProcessor(model_file=str(spm_model_path))

    def segment(lines: Sequence[str]) -> list[str]:
        out = sp.encode([line.strip() for line in lines], out_type=str)
        return [" ".join(p) if p else pieces[1] for p in out]

    paths = {
        "train_src": data / f"train.{src_lang}",
        "train_tgt": data / f"train.{tgt_lang}",
        "test_src": data / f"test.{src_lang}",
        "dev_src": data / f"dev.{src_lang}",
        "joey_vocab": data / "vocab.joey.txt",
        "onmt_vocab": data / "vocab.onmt.txt",
        "meta": data / "meta.json",
    }
    _write_lines(paths["train_src"], segment(train_src))
    _write_lines(paths["train_tgt"], segment(train_tgt))
    test_lines = segment(test_src)
    _write_lines(paths["test_src"], test_lines)
    # Joey's training loop needs a dev set object even when it never validates
    _write_lines(paths["dev_src"], test_lines[:16])
    _write_lines(paths["joey_vocab"], joey_vocab_lines(pieces))
    _write_lines(paths["onmt_vocab"], opennmt_vocab_lines(pieces))
    meta = {
        "src_lang": src_lang,
        "tgt_lang": tgt_lang,
        "spm_model": str(Path(spm_model_path).resolve()),
        "vocab_size": len(pieces),
        "train_pairs": len(train_src),
        "test_sentences": len(test_src),
    }
    paths["meta"].write_text(json.dumps(meta, indent=1))
    return {name: str(path.resolve()) for name, path in paths.items()}


def _read_meta(workdir: Path) -> dict:
    path = workdir / "data" / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: call write_peer_data(workdir, ...) first")
    return json.loads(path.read_text())


def _lengths(path: Path) -> list[int]:
    with open(path, encoding="utf-8") as f:
        return [len(line.split()) for line in f]


# --------------------------------------------------------------------------- batching


def simulate_batches(
    toolkit: str,
    src_lens: Sequence[int],
    tgt_lens: Sequence[int],
    batch_size: int,
    *,
    seed: int = SEED,
    bucket_size: int = OPENNMT_BUCKET_SIZE,
) -> list[list[int]]:
    """Replay the peer's training batching rule on piece counts (no specials) -> index lists."""
    n = len(src_lens)
    if toolkit == "joeynmt":
        order = list(range(n))
        random.Random(seed).shuffle(order)

        def cost(i: int) -> int:
            return max(src_lens[i] + 1, tgt_lens[i] + 1)

        buckets = [order]
    elif toolkit == "opennmt":

        def cost(i: int) -> int:
            return max(src_lens[i], tgt_lens[i] + 2)

        buckets = []
        for start in range(0, n, bucket_size):
            bucket = list(range(start, min(n, start + bucket_size)))
            bucket.sort(key=lambda i: (src_lens[i], tgt_lens[i] + 2))
            buckets.append(bucket)
    else:
        raise ValueError(f"unknown toolkit {toolkit!r}; valid: {', '.join(TOOLKITS)}")
    batches: list[list[int]] = []
    for bucket in buckets:
        batch: list[int] = []
        longest = 0
        for i in bucket:
            candidate = max(longest, cost(i))
            if toolkit == "opennmt" and batch and candidate * (len(batch) + 1) > batch_size:
                # OpenNMT yields the batch without the overflowing example
                batches.append(batch)
                batch, candidate = [], cost(i)
            batch.append(i)
            longest = candidate
            if longest * len(batch) >= batch_size:
                batches.append(batch)
                batch, longest = [], 0
        if batch:
            batches.append(batch)
    return batches


def mean_real_tgt_tokens(batches: Sequence[Sequence[int]], tgt_lens: Sequence[int]) -> float:
    """Mean real target tokens (pieces + EOS) per batch, the last (partial) batch excluded."""
    full = batches[:-1] if len(batches) > 1 else batches
    return sum(sum(tgt_lens[i] + 1 for i in b) for b in full) / max(1, len(full))


def calibrate_batch_size(
    toolkit: str,
    src_lens: Sequence[int],
    tgt_lens: Sequence[int],
    target_real_tokens: int,
    *,
    seed: int = SEED,
) -> tuple[int, float]:
    """Smallest configured ``batch_size`` whose simulated batches carry >= ``target_real_tokens``
    real target tokens on average -> (batch_size, simulated mean)."""
    lo, hi = 1, max(8, target_real_tokens)
    while (
        mean_real_tgt_tokens(simulate_batches(toolkit, src_lens, tgt_lens, hi, seed=seed), tgt_lens)
        < target_real_tokens
    ):
        lo, hi = hi, hi * 2
        if hi > 1 << 24:
            break
    while lo < hi:
        mid = (lo + hi) // 2
        real = mean_real_tgt_tokens(
            simulate_batches(toolkit, src_lens, tgt_lens, mid, seed=seed), tgt_lens
        )
        if real < target_real_tokens:
            lo = mid + 1
        else:
            hi = mid
    real = mean_real_tgt_tokens(
        simulate_batches(toolkit, src_lens, tgt_lens, lo, seed=seed), tgt_lens
    )
    return lo, real


# --------------------------------------------------------------------------- configs


def joey_config(
    family: str,
    *,
    data_dir: str | Path,
    model_dir: str | Path,
    src_lang: str,
    tgt_lang: str,
    total_steps: int,
    batch_size: int,
    decode_beam: int = 1,
    decode_max_len: int = 30,
    decode_batch_size: int = 64,
    load_model: str | Path | None = None,
) -> dict[str, Any]:
    """Joey NMT 2.3.0 config (train and test) matching our model sizes."""
    data_dir = Path(data_dir)
    side = {
        "level": "word",  # pre-segmented: split on spaces only
        "lowercase": False,
        "normalize": False,
        "max_length": -1,
        "min_length": -1,
        "voc_file": str(data_dir / "vocab.joey.txt"),
    }
    special_symbols = {
        "unk_token": JOEY_SPECIALS[0],
        "unk_id": 0,
        "pad_token": JOEY_SPECIALS[1],
        "pad_id": 1,
        "bos_token": JOEY_SPECIALS[2],
        "bos_id": 2,
        "eos_token": JOEY_SPECIALS[3],
        "eos_id": 3,
    }
    if family == "rnn":
        emb = {"embedding_dim": RNN["emb_size"], "scale": False}
        model = {
            "initializer": "xavier_uniform",
            "bias_initializer": "zeros",
            "embed_initializer": "normal",
            "embed_init_weight": 0.1,
            "tied_embeddings": False,
            "tied_softmax": False,
            "encoder": {
                "type": "recurrent",
                "rnn_type": "gru",
                "embeddings": emb,
                "hidden_size": RNN["enc_hidden_per_dir"],  # per direction
                "bidirectional": True,
                "dropout": RNN["dropout"],
                "num_layers": 1,
            },
            "decoder": {
                "type": "recurrent",
                "rnn_type": "gru",
                "embeddings": dict(emb),
                "hidden_size": RNN["dec_hidden"],
                "dropout": RNN["dropout"],
                "hidden_dropout": RNN["dropout"],
                "num_layers": 1,
                "input_feeding": True,
                "init_hidden": "bridge",
                "attention": "bahdanau",
            },
        }
    elif family == "transformer":
        t = TRANSFORMER
        emb = {"embedding_dim": t["d_model"], "scale": True}
        stack = {
            "type": "transformer",
            "num_layers": t["layers"],
            "num_heads": t["heads"],
            "embeddings": emb,
            "hidden_size": t["d_model"],
            "ff_size": t["ff_size"],
            "dropout": t["dropout"],
            "layer_norm": "pre",
        }
        model = {
            "initializer": "xavier_uniform",
            "bias_initializer": "zeros",
            "embed_initializer": "xavier_uniform",
            "tied_embeddings": False,  # ours: separate source embedding
            "tied_softmax": True,  # ours: tie_output=True
            "encoder": dict(stack, embeddings=dict(emb)),
            "decoder": dict(stack, embeddings=dict(emb)),
        }
    else:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    testing: dict[str, Any] = {
        "n_best": 1,
        "beam_size": decode_beam,
        "beam_alpha": BEAM_ALPHA,
        "batch_size": decode_batch_size,
        "batch_type": "sentence",
        "eval_metrics": [],
        "max_output_length": decode_max_len,
        "min_output_length": decode_max_len,
        "return_prob": "none",
        "generate_unk": True,
    }
    if load_model is not None:
        testing["load_model"] = str(load_model)
    return {
        "name": f"bench_joey_{family}",
        "joeynmt_version": "2.3.0",
        "model_dir": str(model_dir),
        "use_cuda": False,
        "fp16": False,
        "random_seed": SEED,
        "num_workers": 0,
        "data": {
            "train": str(data_dir / "train"),
            "dev": str(data_dir / "dev"),
            "test": str(data_dir / "test"),
            "dataset_type": "plain",
            "src": dict(side, lang=src_lang),
            "trg": dict(side, lang=tgt_lang),
            "special_symbols": special_symbols,
        },
        "testing": testing,
        "training": {
            "random_seed": SEED,
            "optimizer": "adam",
            "adam_betas": list(OPTIM["betas"]),
            "learning_rate": OPTIM["lr"],
            "learning_rate_min": 1e-8,
            # constant lr: Joey 2.3.0 rejects no scheduler, and its "plateau" passes the
            # `verbose` argument that torch 2.13 removed; ExponentialLR with gamma 1 is constant
            "scheduling": "exponential",
            "decrease_factor": 1.0,
            "clip_grad_norm": OPTIM["clip_grad_norm"],
            "weight_decay": 0.0,
            "loss": "crossentropy",
            "label_smoothing": OPTIM["label_smoothing"],
            "batch_size": batch_size,
            "batch_type": "token",
            "batch_multiplier": 1,
            "normalization": "tokens",
            "epochs": 1000,
            "updates": total_steps,
            "logging_freq": 1,
            "validation_freq": 1_000_000,  # never validate inside the benchmark
            "early_stopping_metric": "loss",
            "model_dir": str(model_dir),
            "overwrite": True,
            "shuffle": True,
            "use_cuda": False,
            "fp16": False,
            "print_valid_sents": [],
            "keep_best_ckpts": 1,
            "num_workers": 0,
        },
        "model": model,
    }


def opennmt_train_config(
    family: str,
    *,
    data_dir: str | Path,
    model_prefix: str | Path,
    src_lang: str,
    tgt_lang: str,
    total_steps: int,
    batch_size: int,
    rnn_hidden: int = 2 * RNN["enc_hidden_per_dir"],
) -> dict[str, Any]:
    """OpenNMT-py 3.5.1 ``onmt_train -config`` content matching our model sizes.

    RNN: OpenNMT's ``brnn`` splits ``enc_hid_size`` over the two directions, and its decoder
    (initialised from the concatenated encoder final state, attention ``Linear(dim, dim)`` over
    the memory bank) needs ``dec_hid_size == enc_hid_size``. ``rnn_hidden=1024`` (default) gives
    our encoder (2 x 512) and a 1024 decoder; ``rnn_hidden=512`` gives our decoder (512) and a
    2 x 256 encoder. Neither matches exactly; the parameter count shows the difference.
    """
    data_dir = Path(data_dir)
    config: dict[str, Any] = {
        "save_data": str(Path(model_prefix).parent / "onmt_data"),
        "overwrite": True,
        "src_vocab": str(data_dir / "vocab.onmt.txt"),
        "tgt_vocab": str(data_dir / "vocab.onmt.txt"),
        "share_vocab": True,
        "src_vocab_size": 100000,
        "tgt_vocab_size": 100000,
        "vocab_size_multiple": 1,
        "data": {
            "corpus_1": {
                "path_src": str(data_dir / f"train.{src_lang}"),
                "path_tgt": str(data_dir / f"train.{tgt_lang}"),
            }
        },
        "save_model": str(model_prefix),
        "save_checkpoint_steps": total_steps,
        "keep_checkpoint": 1,
        "train_steps": total_steps,
        "valid_steps": 1_000_000,
        "report_every": 1,
        "seed": SEED,
        "model_dtype": "fp32",
        "batch_type": "tokens",
        "batch_size": batch_size,
        "batch_size_multiple": 1,
        "bucket_size": OPENNMT_BUCKET_SIZE,
        "num_workers": 0,
        "normalization": "tokens",
        "accum_count": [1],
        "optim": "adam",
        "learning_rate": OPTIM["lr"],
        "adam_beta1": OPTIM["betas"][0],
        "adam_beta2": OPTIM["betas"][1],
        "decay_method": "none",
        "max_grad_norm": OPTIM["clip_grad_norm"],
        "label_smoothing": OPTIM["label_smoothing"],
    }
    if family == "rnn":
        config.update(
            {
                "encoder_type": "brnn",
                "decoder_type": "rnn",
                "rnn_type": "GRU",
                "word_vec_size": RNN["emb_size"],
                "enc_hid_size": rnn_hidden,
                "dec_hid_size": rnn_hidden,
                "enc_layers": 1,
                "dec_layers": 1,
                "global_attention": "mlp",
                "input_feed": 1,
                "bridge": False,
                "dropout": [RNN["dropout"]],
                "param_init": 0.1,
            }
        )
    elif family == "transformer":
        t = TRANSFORMER
        config.update(
            {
                "encoder_type": "transformer",
                "decoder_type": "transformer",
                "position_encoding": True,
                "enc_layers": t["layers"],
                "dec_layers": t["layers"],
                "heads": t["heads"],
                "hidden_size": t["d_model"],
                "word_vec_size": t["d_model"],
                "transformer_ff": t["ff_size"],
                "dropout": [t["dropout"]],
                "attention_dropout": [0.0],  # ours: attention_dropout=0.0 (Joey cannot unset it)
                "share_decoder_embeddings": True,  # ours: tie_output=True
                "share_embeddings": False,
                "param_init": 0.0,
                "param_init_glorot": True,
            }
        )
    else:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    return config


def opennmt_translate_args(
    *,
    model: str | Path,
    src: str | Path,
    output: str | Path,
    beam: int,
    max_len: int,
    batch_size: int = 64,
) -> list[str]:
    """``onmt_translate`` arguments for a fixed-length decode (min_length = max_length)."""
    return [
        "-model", str(model),
        "-src", str(src),
        "-output", str(output),
        "-beam_size", str(beam),
        "-n_best", "1",
        "-batch_size", str(batch_size),
        "-batch_type", "sents",
        "-min_length", str(max_len),
        "-max_length", str(max_len),
        "-max_length_ratio", "0",
        "-length_penalty", "wu",
        "-alpha", str(BEAM_ALPHA),
        "-gpu", "-1",
        "-report_time",
        "-seed", str(SEED),
    ]  # fmt: skip


def dump_yaml(config: dict, path: str | Path) -> Path:
    """Write ``config`` as YAML (JSON is valid YAML, used when PyYAML is missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        import yaml

        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    except ImportError:  # pragma: no cover
        text = json.dumps(config, indent=1)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- the runner

RUNNER_SOURCE = r'''"""Runs a peer toolkit's own entry point in-process and only observes it (seq2seq bench).

usage: python peer_runner.py joeynmt|opennmt train|test|translate ARGS...
env: PEER_STEPS_FILE (JSON lines: one per optimizer step), PEER_THREADS.
"""
import json, os, sys, time

import torch

torch.set_num_threads(int(os.environ.get("PEER_THREADS", "2")))
toolkit, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
steps_file = os.environ.get("PEER_STEPS_FILE")
state = {"tokens": 0, "step": 0, "out": open(steps_file, "w") if steps_file else None}


def _post_step(optimizer, *_):
    state["step"] += 1
    record = {
        "step": state["step"],
        "t": time.perf_counter(),
        "cpu": time.process_time(),
        "tokens": state["tokens"],
    }
    if state["step"] == 1:
        seen = {id(p): p.numel() for g in optimizer.param_groups for p in g["params"]}
        record["params"] = sum(seen.values())
        record["threads"] = torch.get_num_threads()
    state["tokens"] = 0
    if state["out"]:
        state["out"].write(json.dumps(record) + "\n")
        state["out"].flush()


from torch.optim.optimizer import register_optimizer_step_post_hook

register_optimizer_step_post_hook(_post_step)

if toolkit == "joeynmt":
    import joeynmt.training as training

    _train_step = training.TrainManager._train_step

    def _counting_train_step(self, batch):
        state["tokens"] += int(batch.ntokens)
        return _train_step(self, batch)

    training.TrainManager._train_step = _counting_train_step
    if os.environ.get("PEER_MIN_OUTPUT_LENGTH"):
        # joeynmt 2.3.0's predict() does not pass testing.min_output_length on to search()
        # (search() supports it): pass it here so the output length can be fixed.
        import functools

        import joeynmt.prediction as prediction

        prediction.search = functools.partial(
            prediction.search, min_output_length=int(os.environ["PEER_MIN_OUTPUT_LENGTH"])
        )
    from joeynmt.__main__ import main

    sys.argv = ["joeynmt", mode] + args
elif toolkit == "opennmt":
    if mode == "train":
        import onmt.trainer as trainer

        _accumulate = trainer.Trainer._gradient_accumulation

        def _counting_accumulation(self, true_batches, *rest):
            pad = self.train_loss.padding_idx
            for b in true_batches:
                state["tokens"] += int(b["tgt"][:, 1:, 0].ne(pad).sum())
            return _accumulate(self, true_batches, *rest)

        trainer.Trainer._gradient_accumulation = _counting_accumulation
        from onmt.bin.train import main
    else:
        from onmt.bin.translate import main
    sys.argv = ["onmt_" + mode] + args
else:
    raise SystemExit("unknown toolkit " + toolkit)
main()
'''


def _venv_python(venv_dir: str | Path) -> Path:
    # absolute, but not resolved: bin/python is a symlink out of the venv
    python = Path(os.path.abspath(venv_dir)) / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(f"{python} missing: run scripts/install_peers.sh first")
    return python


def peer_env(threads: int = 2, steps_file: str | Path | None = None) -> dict[str, str]:
    """Environment for a peer subprocess: fixed threads, CPU only, unbuffered output."""
    env = dict(os.environ)
    for var in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"):
        env.pop(var, None)
    env.update(
        {
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": str(threads),
            "PEER_THREADS": str(threads),
            "CUDA_VISIBLE_DEVICES": "",
            "PYTHONUNBUFFERED": "1",
            "TOKENIZERS_PARALLELISM": "false",
            # OpenNMT-py 3.5.1 checkpoints hold pickled objects; torch >= 2.6 refuses them
            "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
        }
    )
    if steps_file is not None:
        env["PEER_STEPS_FILE"] = str(steps_file)
    else:
        env.pop("PEER_STEPS_FILE", None)
    return env


def _run(cmd: list[str], *, env: dict, log_path: Path, cwd: Path, timeout: float) -> float:
    """Run ``cmd`` with stdout+stderr to ``log_path`` -> wall seconds; raise PeerError on failure."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            proc = subprocess.run(
                cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
            )
        except subprocess.TimeoutExpired as err:
            raise PeerError(
                f"timed out after {timeout:.0f} s: {shlex.join(cmd)}; log {log_path}"
            ) from err
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "".join(
            log_path.read_text(encoding="utf-8", errors="replace").splitlines(True)[-15:]
        )
        raise PeerError(f"exit {proc.returncode}: {shlex.join(cmd)}\nlog {log_path}:\n{tail}")
    return wall


# --------------------------------------------------------------------------- parsing


def read_step_records(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def throughput_from_steps(records: Sequence[dict], warmup_steps: int) -> dict[str, float]:
    """Per-step records -> tokens/s and mean real target tokens per step over the steps after
    the first ``warmup_steps`` (time from the end of step ``warmup`` to the end of the last)."""
    if warmup_steps < 1:
        raise ValueError("warmup_steps must be >= 1 (the first step's start is not observed)")
    if len(records) <= warmup_steps:
        raise ValueError(f"{len(records)} steps recorded, need more than {warmup_steps}")
    measured = records[warmup_steps:]
    seconds = measured[-1]["t"] - records[warmup_steps - 1]["t"]
    tokens = sum(r["tokens"] for r in measured)
    extra = {}
    if "cpu" in measured[-1] and "cpu" in records[warmup_steps - 1]:
        cpu = measured[-1]["cpu"] - records[warmup_steps - 1]["cpu"]
        # CPU seconds of all threads: < threads * seconds when the machine is contended
        extra = {"measured_cpu_seconds": cpu, "cpu_utilisation": cpu / seconds}
    return {
        "train_tokens_per_s": tokens / seconds,
        "real_tgt_tokens_per_batch": tokens / len(measured),
        "measured_steps": len(measured),
        "measured_tokens": tokens,
        "measured_seconds": seconds,
        "seconds_per_step": seconds / len(measured),
        **extra,
    }


_JOEY_STEP = re.compile(r"Step:\s+(\d+),.*?Tokens per Sec:\s+([\d.]+)")
_ONMT_STEP = re.compile(
    r"Step\s+(\d+)(?:/\s*\d+)?;.*?bsz:\s*([\d.]+)/\s*([\d.]+)/\s*([\d.]+);\s*([\d.]+)/\s*([\d.]+) tok/s"
)
_JOEY_GEN = re.compile(r"Predicting (\d+) example\(s\).*?Generation took ([\d.]+)\[sec\]", re.S)
_ONMT_TIME = re.compile(r"Total translation time \(s\):\s*([\d.]+)")
_JOEY_PARAMS = re.compile(r"Total params:\s*(\d+)")
_ONMT_PARAMS = re.compile(r"\* number of parameters:\s*(\d+)")


def parse_train_log(toolkit: str, text: str) -> dict[int, dict[str, float]]:
    """The peer's own per-step log figures -> {step: {'tgt_tok_per_s': ..., ...}}."""
    steps: dict[int, dict[str, float]] = {}
    if toolkit == "joeynmt":
        for m in _JOEY_STEP.finditer(text):
            steps[int(m.group(1))] = {"tgt_tok_per_s": float(m.group(2))}
    elif toolkit == "opennmt":
        for m in _ONMT_STEP.finditer(text):
            steps[int(m.group(1))] = {
                "src_tokens": float(m.group(2)),
                "tgt_tokens": float(m.group(3)),
                "sents": float(m.group(4)),
                "src_tok_per_s": float(m.group(5)),
                "tgt_tok_per_s": float(m.group(6)),
            }
    else:
        raise ValueError(f"unknown toolkit {toolkit!r}")
    return steps


def log_tokens_per_s(toolkit: str, text: str, warmup_steps: int) -> float | None:
    """Harmonic mean of the peer's own per-step target tok/s after warm-up (= tokens / time
    when the steps carry similar token counts); None when the log has no such lines."""
    rates = [
        v["tgt_tok_per_s"] for k, v in parse_train_log(toolkit, text).items() if k > warmup_steps
    ]
    rates = [r for r in rates if r > 0]
    if not rates:
        return None
    return len(rates) / sum(1.0 / r for r in rates)


def parse_params(toolkit: str, text: str) -> int | None:
    pattern = _JOEY_PARAMS if toolkit == "joeynmt" else _ONMT_PARAMS
    found = pattern.findall(text)
    return int(found[-1]) if found else None


def parse_decode_seconds(toolkit: str, text: str) -> float | None:
    """The peer's own generation time for the (last) decoded set."""
    if toolkit == "joeynmt":
        found = _JOEY_GEN.findall(text)
        return float(found[-1][1]) if found else None
    found = _ONMT_TIME.findall(text)
    return float(found[-1]) if found else None


def count_output(path: str | Path) -> tuple[int, int]:
    """(sentences, space-separated tokens) of a decode output file."""
    sentences = tokens = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            sentences += 1
            tokens += len(line.split())
    return sentences, tokens


# --------------------------------------------------------------------------- running


def _latest_checkpoint(toolkit: str, model_dir: Path, total_steps: int) -> Path:
    if toolkit == "joeynmt":
        candidates = [model_dir / f"{total_steps}.ckpt", model_dir / "latest.ckpt"]
    else:
        candidates = [model_dir / f"model_step_{total_steps}.pt"]
    for path in candidates:
        if path.exists():
            return path
    pattern = "*.ckpt" if toolkit == "joeynmt" else "model_step_*.pt"
    found = sorted(model_dir.glob(pattern), key=lambda p: p.stat().st_mtime)
    if not found:
        raise PeerError(f"no checkpoint in {model_dir}")
    return found[-1]


def run_peer(
    toolkit: str,
    family: str,
    *,
    workdir: str | Path,
    venv_dir: str | Path,
    steps: int,
    warmup_steps: int,
    batch_target_tokens: int,
    decode_beam: int | Sequence[int] = (1, 5),
    decode_max_len: int = 30,
    threads: int = 2,
    decode_batch_size: int = 64,
    decode_limit: int | None = None,
    opennmt_rnn_hidden: int = 2 * RNN["enc_hidden_per_dir"],
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[str, Any]:
    """Train ``toolkit``'s ``family`` model for ``warmup_steps + steps`` optimizer steps, then
    decode the test source with each beam size in ``decode_beam`` -> figures (flat JSON-able).

    ``workdir`` must hold ``write_peer_data``'s output; this run writes under
    ``workdir/<toolkit>-<family>/``. ``decode_limit``: decode only the first N test sentences.
    Throughput is measured over the last ``steps`` steps (see the module docstring).
    """
    if toolkit not in TOOLKITS:
        raise ValueError(f"unknown toolkit {toolkit!r}; valid: {', '.join(TOOLKITS)}")
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; valid: {', '.join(FAMILIES)}")
    if steps < 1 or warmup_steps < 1:
        raise ValueError("steps and warmup_steps must be >= 1")
    beams = [decode_beam] if isinstance(decode_beam, int) else list(decode_beam)
    workdir = Path(workdir).resolve()
    meta = _read_meta(workdir)
    src_lang, tgt_lang = meta["src_lang"], meta["tgt_lang"]
    data_dir = workdir / "data"
    python = _venv_python(venv_dir)
    run_dir = workdir / f"{toolkit}-{family}"
    run_dir.mkdir(parents=True, exist_ok=True)
    runner = run_dir / "peer_runner.py"
    runner.write_text(RUNNER_SOURCE, encoding="utf-8")
    total_steps = warmup_steps + steps

    # batch size calibration on the real corpus
    src_lens = _lengths(data_dir / f"train.{src_lang}")
    tgt_lens = _lengths(data_dir / f"train.{tgt_lang}")
    batch_size, simulated = calibrate_batch_size(toolkit, src_lens, tgt_lens, batch_target_tokens)

    # ---- training
    model_dir = run_dir / "model"
    steps_file = run_dir / "steps.jsonl"
    train_log = run_dir / "train.log"
    if toolkit == "joeynmt":
        cfg = joey_config(
            family,
            data_dir=data_dir,
            model_dir=model_dir,
            src_lang=src_lang,
            tgt_lang=tgt_lang,
            total_steps=total_steps,
            batch_size=batch_size,
        )
        cfg_path = dump_yaml(cfg, run_dir / "train.yaml")
        train_cmd = [str(python), str(runner), "joeynmt", "train", str(cfg_path), "--skip-test"]
    else:
        model_dir.mkdir(parents=True, exist_ok=True)
        cfg = opennmt_train_config(
            family,
            data_dir=data_dir,
            model_prefix=model_dir / "model",
            src_lang=src_lang,
            tgt_lang=tgt_lang,
            total_steps=total_steps,
            batch_size=batch_size,
            rnn_hidden=opennmt_rnn_hidden,
        )
        cfg_path = dump_yaml(cfg, run_dir / "train.yaml")
        train_cmd = [str(python), str(runner), "opennmt", "train", "-config", str(cfg_path)]
    load_before = os.getloadavg()[0]
    train_wall = _run(
        train_cmd,
        env=peer_env(threads, steps_file),
        log_path=train_log,
        cwd=run_dir,
        timeout=timeout_s,
    )
    records = read_step_records(steps_file)
    figures = throughput_from_steps(records, warmup_steps)
    log_text = train_log.read_text(encoding="utf-8", errors="replace")
    params = records[0].get("params") if records else None
    result: dict[str, Any] = {
        "toolkit": toolkit,
        "family": family,
        "version": "2.3.0" if toolkit == "joeynmt" else "3.5.1",
        "params": params,
        "params_logged": parse_params(toolkit, log_text),
        "threads": records[0].get("threads") if records else None,
        "steps": steps,
        "warmup_steps": warmup_steps,
        "total_steps": len(records),
        "batch_target_tokens": batch_target_tokens,
        "batch_size_configured": batch_size,
        "batch_size_unit": (
            "Joey batch_type token: rows * max(src+1, tgt+1) incl. padding, random batches"
            if toolkit == "joeynmt"
            else "OpenNMT batch_type tokens: rows * max(src, tgt+2) incl. padding, length-sorted"
        ),
        "simulated_real_tgt_tokens_per_batch": round(simulated, 1),
        **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in figures.items()},
        "train_tokens_per_s_logged": log_tokens_per_s(toolkit, log_text, warmup_steps),
        "train_wall_s": round(train_wall, 2),
        "loadavg_1min_before_after_train": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "train_command": shlex.join(train_cmd),
        "train_config": str(cfg_path),
        "train_log": str(train_log),
    }
    if result["train_tokens_per_s_logged"] is not None:
        result["train_tokens_per_s_logged"] = round(result["train_tokens_per_s_logged"], 1)

    # ---- decoding
    ckpt = _latest_checkpoint(toolkit, model_dir, total_steps)
    test_src = data_dir / f"test.{src_lang}"
    if decode_limit is not None:
        with open(test_src, encoding="utf-8") as f:
            lines = [line for _, line in zip(range(decode_limit), f, strict=False)]
        limited = run_dir / "decode_data"
        test_src = limited / f"test.{src_lang}"
        limited.mkdir(exist_ok=True)
        test_src.write_text("".join(lines), encoding="utf-8")
    for beam in beams:
        out = run_dir / f"hyp.beam{beam}.txt"
        log_path = run_dir / f"decode.beam{beam}.log"
        if toolkit == "joeynmt":
            dcfg = joey_config(
                family,
                data_dir=data_dir,
                model_dir=model_dir,
                src_lang=src_lang,
                tgt_lang=tgt_lang,
                total_steps=total_steps,
                batch_size=batch_size,
                decode_beam=beam,
                decode_max_len=decode_max_len,
                decode_batch_size=decode_batch_size,
                load_model=ckpt,
            )
            dcfg["data"]["test"] = str(test_src.with_suffix(""))
            dcfg_path = dump_yaml(dcfg, run_dir / f"decode.beam{beam}.yaml")
            # joey writes <output_path>.test
            cmd = [
                str(python),
                str(runner),
                "joeynmt",
                "test",
                str(dcfg_path),
                "--output-path",
                str(out),
            ]
            produced = Path(str(out) + ".test")
        else:
            args = opennmt_translate_args(
                model=ckpt,
                src=test_src,
                output=out,
                beam=beam,
                max_len=decode_max_len,
                batch_size=decode_batch_size,
            )
            cmd = [str(python), str(runner), "opennmt", "translate", *args]
            produced = out
        env = peer_env(threads)
        if toolkit == "joeynmt":
            env["PEER_MIN_OUTPUT_LENGTH"] = str(decode_max_len)
        wall = _run(cmd, env=env, log_path=log_path, cwd=run_dir, timeout=timeout_s)
        text = log_path.read_text(encoding="utf-8", errors="replace")
        seconds = parse_decode_seconds(toolkit, text)
        sentences, tokens = count_output(produced)
        key = "greedy" if beam == 1 else f"beam{beam}"
        timed = seconds if seconds else wall
        result.update(
            {
                f"decode_{key}_sentences": sentences,
                f"decode_{key}_output_tokens": tokens,
                f"decode_{key}_expected_tokens": sentences * decode_max_len,
                f"decode_{key}_seconds": round(timed, 3),
                f"decode_{key}_wall_s": round(wall, 2),
                f"decode_{key}_sentences_per_s": round(sentences / timed, 2),
                f"decode_{key}_tokens_per_s": round(tokens / timed, 1),
                f"decode_{key}_command": shlex.join(cmd),
            }
        )
    result["decode_max_len"] = decode_max_len
    result["decode_batch_size"] = decode_batch_size
    result["decode_time_source"] = (
        "Joey log 'Generation took' (generation loop only)"
        if toolkit == "joeynmt"
        else "OpenNMT -report_time 'Total translation time' (data reading + generation)"
    )
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """python -m seq2seq.bench.peers WORKDIR TOOLKIT FAMILY VENV [STEPS WARMUP TOKENS MAXLEN]."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 4:
        raise SystemExit(main.__doc__)
    workdir, toolkit, family, venv = argv[:4]
    nums = [int(x) for x in argv[4:8]] + [30, 5, 4000, 30][len(argv[4:8]) :]
    result = run_peer(
        toolkit,
        family,
        workdir=workdir,
        venv_dir=venv,
        steps=nums[0],
        warmup_steps=nums[1],
        batch_target_tokens=nums[2],
        decode_max_len=nums[3],
    )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":  # pragma: no cover
    main()

__all__ = [
    "FAMILIES",
    "TOOLKITS",
    "PeerError",
    "calibrate_batch_size",
    "count_output",
    "joey_config",
    "joey_vocab_lines",
    "log_tokens_per_s",
    "opennmt_train_config",
    "opennmt_translate_args",
    "opennmt_vocab_lines",
    "parse_decode_seconds",
    "parse_params",
    "parse_train_log",
    "read_step_records",
    "run_peer",
    "simulate_batches",
    "throughput_from_steps",
    "write_peer_data",
]
