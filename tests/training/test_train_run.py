"""End-to-end training runs on tiny data (CPU): artifacts, budgets, resume, signals, DDP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seq2seq.checkpoint import load_checkpoint
from seq2seq.data.pipeline import load_split_texts
from seq2seq.modules.attention import ATTENTIONS as ATTENTION_CLASSES
from seq2seq.training import train
from tests.conftest import TINY, TINY_RNN, TINY_TRANSFORMER, compose_config, needs_multi30k

pytestmark = needs_multi30k

# every registered attention variant with its defaults, and both local modes
ATTENTIONS = [[f"attention={name}"] for name in ATTENTION_CLASSES] + [
    ["attention=multiplicative", "attention.score=dot", "model.split_directions=true"],
    ["attention=local", "attention.mode=monotonic"],
]
TRANSFORMER = TINY_TRANSFORMER


def tiny(shared_cache: Path, run_dir: Path, *overrides: str):
    sizes = [] if "model=transformer" in overrides else TINY_RNN
    return compose_config(
        *TINY, *sizes, f"data.cache_dir={shared_cache}", f"run_dir={run_dir}", *overrides
    )


@pytest.mark.parametrize(
    "overrides", [*ATTENTIONS, TRANSFORMER], ids=lambda o: "-".join(o).replace("attention=", "")
)
def test_tiny_run_leaves_every_artifact(overrides, shared_cache, tmp_path):
    cfg = tiny(shared_cache, tmp_path, *overrides)
    metrics = train(cfg)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(metrics))
    for key in (
        "val_bleu",
        "test_bleu",
        "test_chrf",
        "sacrebleu_signature",
        "params",
        "steps",
        "train_tokens_per_sec",
        "wall_time_s",
        "model",
        "attention",
    ):
        assert key in saved, key
    assert saved["steps"] == 4 and saved["params"] > 0 and saved["train_tokens_per_sec"] > 0
    assert saved["model"] == cfg.model.name
    assert 0 <= saved["test_bleu"] <= 100 and saved["sacrebleu_signature"].startswith("nrefs:1")
    hyps = (tmp_path / "hyps" / "test.txt").read_text(encoding="utf-8").split("\n")
    assert len(hyps) == 16 + 1 and hyps[-1] == ""  # one line per test sentence
    # beside them the test sources and references they were scored against (compare reads them)
    sources, references = load_split_texts(cfg.data, "test")
    for name, lines in (("test.src.txt", sources), ("test.ref.txt", references)):
        assert (tmp_path / "hyps" / name).read_text(encoding="utf-8") == "".join(
            line + "\n" for line in lines
        )
    assert len(references) == 16
    assert (tmp_path / "checkpoints" / "best.pt").is_file() and (
        tmp_path / "checkpoints" / "last.pt"
    ).is_file()
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["progress"]["step"] == 4 and last["config"]["model"]["name"] == cfg.model.name
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    history = [json.loads(line) for line in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [2, 4]


def test_resume_equals_uninterrupted(shared_cache, tmp_path):
    straight = tmp_path / "straight"
    train(tiny(shared_cache, straight, "trainer.max_steps=6", "trainer.val_every=3"))
    split = tmp_path / "split"
    train(tiny(shared_cache, split, "trainer.max_steps=3", "trainer.val_every=3"))
    assert load_checkpoint(split / "checkpoints" / "last.pt")["progress"]["step"] == 3
    train(
        tiny(
            shared_cache, split, "trainer.max_steps=6", "trainer.val_every=3", "trainer.resume=true"
        )
    )
    a = load_checkpoint(straight / "checkpoints" / "last.pt")
    b = load_checkpoint(split / "checkpoints" / "last.pt")
    assert b["progress"]["step"] == 6
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    assert a["progress"]["history"][-1]["val_loss"] == b["progress"]["history"][-1]["val_loss"]


def test_max_epochs_budget(shared_cache, tmp_path):
    metrics = train(
        tiny(
            shared_cache,
            tmp_path,
            "trainer.max_steps=null",
            "trainer.max_epochs=1",
            "trainer.val_every=1000",
        )
    )
    assert metrics["stop_reason"] == "max_epochs=1"
    assert metrics["epochs"] == pytest.approx(1.0)


def test_max_time_budget(shared_cache, tmp_path):
    metrics = train(
        tiny(
            shared_cache,
            tmp_path,
            "trainer.max_steps=null",
            "trainer.max_time=0.5",
            "trainer.val_every=1000",
        )
    )
    assert metrics["stop_reason"] == "max_time=0.5s"
    assert metrics["train_time_s"] < 30


def test_early_stopping(shared_cache, tmp_path):
    metrics = train(
        tiny(
            shared_cache,
            tmp_path,
            "trainer.max_steps=100",
            "trainer.val_every=1",
            "trainer.patience=2",
            "optim.lr=1e-12",
            "optim.min_lr=0",  # the floor would lift a constant lr to its 1e-6
        )
    )
    assert metrics["stop_reason"].startswith("early stopping")
    assert metrics["steps"] == 3  # best at the 1st validation, no gain at the 2nd and 3rd


def run_cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "seq2seq.cli.train", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kwargs,
    )


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_real_signal_saves_last_and_exits_128_plus_its_number(sig, shared_cache, tmp_path):
    """A real signal from another process (tests/reliability/test_run_directory.py sends them
    at chosen steps in-process)."""
    args = [
        *TINY,
        *TINY_RNN,
        f"data.cache_dir={shared_cache}",
        f"hydra.run.dir={tmp_path}",
        "trainer.max_steps=100000",
        "trainer.val_every=5",
    ]
    proc = run_cli(args)
    deadline = time.time() + 120
    while not (tmp_path / "checkpoints" / "last.pt").is_file() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, out
    assert f"hydra.run.dir={tmp_path} trainer.resume=true" in out
    step = load_checkpoint(tmp_path / "checkpoints" / "last.pt")["progress"]["step"]
    assert step >= 5
    resumed = run_cli(
        [
            *args[:-2],
            "trainer.max_steps=" + str(step + 2),
            "trainer.val_every=5",
            "trainer.resume=true",
        ]
    )
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    assert json.loads((tmp_path / "metrics.json").read_text())["steps"] == step + 2


def test_bad_input_is_one_line(shared_cache, tmp_path):
    proc = run_cli(
        [
            *TINY,
            *TINY_RNN,
            f"data.cache_dir={shared_cache}",
            f"hydra.run.dir={tmp_path}",
            "data.src=xx",
        ]
    )
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "error: data.src='xx' is not a language of multi30k; valid: en, de, fr, cs" in out
    assert "Traceback" not in out


@pytest.mark.slow
def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ddp_two_cpu_processes_match_single_process(shared_cache, tmp_path):
    common = [
        *TINY,
        *TINY_RNN,
        f"data.cache_dir={shared_cache}",
        "model.dropout=0",
        "trainer.max_steps=3",
        "trainer.val_every=3",
    ]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    ddp = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node=2",
            f"--master_port={free_port()}",  # a fixed port collides with a parallel run
            "-m",
            "seq2seq.cli.train",
            *common,
            f"hydra.run.dir={tmp_path / 'ddp'}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ddp.returncode == 0, ddp.stdout[-3000:] + ddp.stderr[-3000:]
    train(
        tiny(
            shared_cache,
            tmp_path / "single",
            "model.dropout=0",
            "trainer.max_steps=3",
            "trainer.val_every=3",
            "optim.accumulate=2",
        )
    )
    a = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "single" / "checkpoints" / "last.pt")
    for name, tensor in a["model"].items():
        torch.testing.assert_close(tensor, b["model"][name], rtol=1e-4, atol=1e-5, msg=name)
    assert a["progress"]["history"][-1]["val_loss"] == pytest.approx(
        b["progress"]["history"][-1]["val_loss"], rel=1e-4
    )


def test_val_bleu_limit_scores_a_fixed_validation_subset(shared_cache, tmp_path, monkeypatch):
    """trainer.val_bleu_limit=N: greedy BLEU on the first N validation sentences at every
    validation (the same N each time), the loss still on the whole split."""
    from seq2seq.training import validate as validate_module

    decoded_counts = []
    real = validate_module.decode_ids

    def counting(model, tokenizer, src_ids, decode, **kwargs):
        decoded_counts.append(len(src_ids))
        return real(model, tokenizer, src_ids, decode, **kwargs)

    monkeypatch.setattr(validate_module, "decode_ids", counting)
    train(tiny(shared_cache, tmp_path, "trainer.val_bleu_limit=5"))
    assert decoded_counts == [5, 5]  # validations at steps 2 and 4


@pytest.mark.slow
def test_bleu_tokenize_scores_validation_and_test(shared_cache, tmp_path, monkeypatch):
    """bleu.tokenize=char: validation BLEU and the final test both score with it, and
    metrics.json records it with sacreBLEU's signature; the test BLEU is what sacreBLEU gives
    the saved hypotheses with that tokenizer."""
    from seq2seq.data.pipeline import load_split_texts
    from seq2seq.evaluation.bleu import corpus_scores
    from seq2seq.training import validate as validate_module

    used = []
    real = validate_module.corpus_scores

    def spy(hyps, refs, **kwargs):
        used.append(kwargs.get("tokenize"))
        return real(hyps, refs, **kwargs)

    monkeypatch.setattr(validate_module, "corpus_scores", spy)
    cfg = tiny(shared_cache, tmp_path, "bleu.tokenize=char")
    metrics = train(cfg)
    assert used == ["char", "char"]  # the validations at steps 2 and 4
    assert metrics["bleu_tokenize"] == "char" and "|tok:char|" in metrics["sacrebleu_signature"]
    hyps = (tmp_path / "hyps" / "test.txt").read_text(encoding="utf-8").splitlines()
    _, refs = load_split_texts(cfg.data, "test")
    expected = corpus_scores(hyps, refs, tokenize="char")
    assert metrics["test_bleu"] == expected["bleu"] and metrics["test_chrf"] == expected["chrf"]
