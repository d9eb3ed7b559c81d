"""Joey NMT 2.3.0 for the speed benchmark.

Data: pieces joined by spaces, read with ``level: word`` and no tokenizer. Joey's Vocabulary
always puts its specials first in the order unk, pad, bos, eos, so its ids are unk=0, pad=1,
bos=2, eos=3 (our pad/unk swapped: the peers read pieces as text, so the permutation is harmless).

Batching (``batch_type: token``): a random shuffle (no bucketing); a batch closes once
``len(batch) * max_i max(src_i + 1, tgt_i + 1) >= batch_size`` (padded length incl. EOS/BOS).

Tokens counted per step: ``batch.ntokens`` of every batch given to ``TrainManager._train_step``.
Decode time: its log's "Generation took" (the generation loop only).
"""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import Observer, Peer, PeerRun, check_family, dump_yaml
from .ours import BEAM_ALPHA, OPTIM, RNN, SEED, TRANSFORMER


class JoeyNMT(Peer):
    name = "joeynmt"
    version = "2.3.0"
    batch_size_unit = (
        "Joey batch_type token: rows * max(src+1, tgt+1) incl. padding, random batches"
    )
    decode_time_source = "Joey log 'Generation took' (generation loop only)"
    vocab_specials = ("<unk>", "<pad>", "<s>", "</s>")
    step_pattern = re.compile(
        r"Step:\s+(?P<step>\d+),.*?Tokens per Sec:\s+(?P<tgt_tok_per_s>[\d.]+)"
    )
    params_pattern = re.compile(r"Total params:\s*(\d+)")
    decode_seconds_pattern = re.compile(
        r"Predicting \d+ example\(s\).*?Generation took (?P<seconds>[\d.]+)\[sec\]", re.S
    )
    checkpoint_glob = "*.ckpt"

    def batch_order(self, src_lens: Sequence[int], tgt_lens: Sequence[int], seed: int) -> list:
        order = list(range(len(src_lens)))
        random.Random(seed).shuffle(order)
        return [order]

    def batch_cost(self, src_len: int, tgt_len: int) -> int:
        return max(src_len + 1, tgt_len + 1)

    def config(
        self,
        run: PeerRun,
        *,
        decode_beam: int = 1,
        load_model: str | Path | None = None,
        test: str | Path | None = None,
    ) -> dict[str, Any]:
        """Joey NMT config (train and test) matching our model sizes."""
        data_dir = run.data_dir
        side = {
            "level": "word",  # pre-segmented: split on spaces only
            "lowercase": False,
            "normalize": False,
            "max_length": -1,
            "min_length": -1,
            "voc_file": str(self.vocab_path(data_dir)),
        }
        names = ("unk", "pad", "bos", "eos")
        special_symbols: dict[str, Any] = {}
        for i, (name, token) in enumerate(zip(names, self.vocab_specials, strict=True)):
            special_symbols.update({f"{name}_token": token, f"{name}_id": i})
        testing: dict[str, Any] = {
            "n_best": 1,
            "beam_size": decode_beam,
            "beam_alpha": BEAM_ALPHA,
            "batch_size": run.decode_batch_size,
            "batch_type": "sentence",
            "eval_metrics": [],
            "max_output_length": run.decode_max_len,
            "min_output_length": run.decode_max_len,
            "return_prob": "none",
            "generate_unk": True,
        }
        if load_model is not None:
            testing["load_model"] = str(load_model)
        return {
            "name": f"bench_joey_{run.family}",
            "joeynmt_version": self.version,
            "model_dir": str(run.model_dir),
            "use_cuda": False,
            "fp16": False,
            "random_seed": SEED,
            "num_workers": 0,
            "data": {
                "train": str(data_dir / "train"),
                "dev": str(data_dir / "dev"),
                "test": str(test if test is not None else data_dir / "test"),
                "dataset_type": "plain",
                "src": dict(side, lang=run.src_lang),
                "trg": dict(side, lang=run.tgt_lang),
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
                "batch_size": run.batch_size,
                "batch_type": "token",
                "batch_multiplier": 1,
                "normalization": "tokens",
                "epochs": 1000,
                "updates": run.total_steps,
                "logging_freq": 1,
                "validation_freq": 1_000_000,  # never validate inside the benchmark
                "early_stopping_metric": "loss",
                "model_dir": str(run.model_dir),
                "overwrite": True,
                "shuffle": True,
                "use_cuda": False,
                "fp16": False,
                "print_valid_sents": [],
                "keep_best_ckpts": 1,
                "num_workers": 0,
            },
            "model": self.model(run.family),
        }

    @staticmethod
    def model(family: str) -> dict[str, Any]:
        check_family(family)
        if family == "rnn":
            emb = {"embedding_dim": RNN["emb_size"], "scale": False}
            return {
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
        return {
            "initializer": "xavier_uniform",
            "bias_initializer": "zeros",
            "embed_initializer": "xavier_uniform",
            "tied_embeddings": False,  # ours: separate source embedding
            "tied_softmax": True,  # ours: tie_output=True
            "encoder": dict(stack, embeddings=dict(emb)),
            "decoder": dict(stack, embeddings=dict(emb)),
        }

    def train_args(self, run: PeerRun) -> list[str]:
        path = dump_yaml(self.config(run), run.run_dir / "train.yaml")
        return ["train", str(path), "--skip-test"]

    def decode_args(
        self, run: PeerRun, *, beam: int, checkpoint: Path, src: Path, output: Path
    ) -> tuple[list[str], Path]:
        config = self.config(run, decode_beam=beam, load_model=checkpoint, test=src.with_suffix(""))
        path = dump_yaml(config, run.run_dir / f"decode.beam{beam}.yaml")
        # joey writes <output_path>.test
        return ["test", str(path), "--output-path", str(output)], Path(f"{output}.test")

    def checkpoint_names(self, total_steps: int) -> list[str]:
        return [f"{total_steps}.ckpt", "latest.ckpt"]

    def enter(self, mode: str, args: list[str], observer: Observer):
        import joeynmt.training as training

        observer.count_tokens(
            training.TrainManager, "_train_step", lambda _, batch: int(batch.ntokens)
        )
        if mode == "test":
            fix_min_output_length(Path(args[0]))
        from joeynmt.__main__ import main

        sys.argv = ["joeynmt", mode, *args]
        return main


def fix_min_output_length(config_path: Path) -> None:
    """joeynmt 2.3.0's predict() does not pass testing.min_output_length on to search() (search()
    supports it): pass the config's value here so the output length can be fixed."""
    import functools

    import joeynmt.prediction as prediction
    import yaml

    length = yaml.safe_load(config_path.read_text(encoding="utf-8"))["testing"]["min_output_length"]
    prediction.search = functools.partial(prediction.search, min_output_length=int(length))


PEER = JoeyNMT()
