"""OpenNMT-py 3.5.1 for the speed benchmark.

Data: pieces joined by spaces, no transforms; the vocabulary file holds only our pieces 4..
(OpenNMT prepends its default specials <unk>, <blank>, <s>, </s> itself).

Batching (``batch_type tokens``): buckets of ``bucket_size`` examples sorted by length; a batch
closes once ``len(batch) * max_i max(src_i, tgt_i + 2) >= batch_size`` (source without EOS, target
with BOS and EOS), and an example that would overflow it starts the next one.

Tokens counted per step: ``batch["tgt"][:, 1:].ne(pad).sum()`` of the batches given to
``Trainer._gradient_accumulation``. Decode time: ``-report_time``'s "Total translation time"
(data reading + generation).

RNN: OpenNMT's ``brnn`` splits ``enc_hid_size`` over the two directions, and its decoder
(initialised from the concatenated encoder final state, attention ``Linear(dim, dim)`` over the
memory bank) needs ``dec_hid_size == enc_hid_size``. ``rnn_hidden=1024`` (default) gives our
encoder (2 x 512) and a 1024 decoder; ``OpenNMT(rnn_hidden=512)`` gives our decoder (512) and a
2 x 256 encoder. Neither matches exactly; the parameter count shows the difference.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import Observer, Peer, PeerRun, check_family, dump_yaml
from .ours import BEAM_ALPHA, OPTIM, RNN, SEED, TRANSFORMER

BUCKET_SIZE = 32768  # the default 262144 stalls for minutes on a 29k-pair corpus


class OpenNMT(Peer):
    name = "opennmt"
    version = "3.5.1"
    batch_size_unit = (
        "OpenNMT batch_type tokens: rows * max(src, tgt+2) incl. padding, length-sorted"
    )
    decode_time_source = "OpenNMT -report_time 'Total translation time' (data reading + generation)"
    overflow_starts_next_batch = True
    step_pattern = re.compile(
        r"Step\s+(?P<step>\d+)(?:/\s*\d+)?;.*?bsz:\s*(?P<src_tokens>[\d.]+)/\s*"
        r"(?P<tgt_tokens>[\d.]+)/\s*(?P<sents>[\d.]+);\s*(?P<src_tok_per_s>[\d.]+)/\s*"
        r"(?P<tgt_tok_per_s>[\d.]+) tok/s"
    )
    params_pattern = re.compile(r"\* number of parameters:\s*(\d+)")
    decode_seconds_pattern = re.compile(r"Total translation time \(s\):\s*(?P<seconds>[\d.]+)")
    checkpoint_glob = "model_step_*.pt"

    def __init__(
        self, rnn_hidden: int = 2 * RNN["enc_hidden_per_dir"], bucket_size: int = BUCKET_SIZE
    ):
        self.rnn_hidden = rnn_hidden
        self.bucket_size = bucket_size

    def batch_order(self, src_lens: Sequence[int], tgt_lens: Sequence[int], seed: int) -> list:
        n = len(src_lens)
        buckets = []
        for start in range(0, n, self.bucket_size):
            bucket = list(range(start, min(n, start + self.bucket_size)))
            bucket.sort(key=lambda i: (src_lens[i], tgt_lens[i] + 2))
            buckets.append(bucket)
        return buckets

    def batch_cost(self, src_len: int, tgt_len: int) -> int:
        return max(src_len, tgt_len + 2)

    def train_config(self, run: PeerRun) -> dict[str, Any]:
        """``onmt_train -config`` content matching our model sizes."""
        vocab = str(self.vocab_path(run.data_dir))
        config: dict[str, Any] = {
            "save_data": str(run.model_dir / "onmt_data"),
            "overwrite": True,
            "src_vocab": vocab,
            "tgt_vocab": vocab,
            "share_vocab": True,
            "src_vocab_size": 100000,
            "tgt_vocab_size": 100000,
            "vocab_size_multiple": 1,
            "data": {
                "corpus_1": {
                    "path_src": str(run.data_dir / f"train.{run.src_lang}"),
                    "path_tgt": str(run.data_dir / f"train.{run.tgt_lang}"),
                }
            },
            "save_model": str(run.model_dir / "model"),
            "save_checkpoint_steps": run.total_steps,
            "keep_checkpoint": 1,
            "train_steps": run.total_steps,
            "valid_steps": 1_000_000,
            "report_every": 1,
            "seed": SEED,
            "model_dtype": "fp32",
            "batch_type": "tokens",
            "batch_size": run.batch_size,
            "batch_size_multiple": 1,
            "bucket_size": self.bucket_size,
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
        config.update(self.model(run.family))
        return config

    def model(self, family: str) -> dict[str, Any]:
        check_family(family)
        if family == "rnn":
            return {
                "encoder_type": "brnn",
                "decoder_type": "rnn",
                "rnn_type": "GRU",
                "word_vec_size": RNN["emb_size"],
                "enc_hid_size": self.rnn_hidden,
                "dec_hid_size": self.rnn_hidden,
                "enc_layers": 1,
                "dec_layers": 1,
                "global_attention": "mlp",
                "input_feed": 1,
                "bridge": False,
                "dropout": [RNN["dropout"]],
                "param_init": 0.1,
            }
        t = TRANSFORMER
        return {
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

    def train_args(self, run: PeerRun) -> list[str]:
        run.model_dir.mkdir(parents=True, exist_ok=True)
        path = dump_yaml(self.train_config(run), run.run_dir / "train.yaml")
        return ["train", "-config", str(path)]

    def decode_args(
        self, run: PeerRun, *, beam: int, checkpoint: Path, src: Path, output: Path
    ) -> tuple[list[str], Path]:
        """``onmt_translate`` arguments for a fixed-length decode (min_length = max_length)."""
        args = [
            "-model", str(checkpoint),
            "-src", str(src),
            "-output", str(output),
            "-beam_size", str(beam),
            "-n_best", "1",
            "-batch_size", str(run.decode_batch_size),
            "-batch_type", "sents",
            "-min_length", str(run.decode_max_len),
            "-max_length", str(run.decode_max_len),
            "-max_length_ratio", "0",
            "-length_penalty", "wu",
            "-alpha", str(BEAM_ALPHA),
            "-gpu", "-1",
            "-report_time",
            "-seed", str(SEED),
        ]  # fmt: skip
        return ["translate", *args], output

    def checkpoint_names(self, total_steps: int) -> list[str]:
        return [f"model_step_{total_steps}.pt"]

    def enter(self, mode: str, args: list[str], observer: Observer):
        if mode == "train":
            import onmt.trainer as trainer

            observer.count_tokens(trainer.Trainer, "_gradient_accumulation", target_tokens)
            from onmt.bin.train import main
        else:
            from onmt.bin.translate import main
        sys.argv = [f"onmt_{mode}", *args]
        return main


def target_tokens(trainer, true_batches, *_) -> int:
    """Real target tokens of the batches of one step (BOS excluded, EOS included)."""
    pad = trainer.train_loss.padding_idx
    return sum(int(b["tgt"][:, 1:, 0].ne(pad).sum()) for b in true_batches)


PEER = OpenNMT()
