"""Defects that gave a traceback, were silently wrong or misled: now one ``error:`` line (or a
stated warning), each test run through the entry point as its console script would run it.

Tracebacks: a full disk while saving a checkpoint, seq2seq-evaluate without ``run_dir``, an
uncreatable ``hydra.run.dir``, corrupt cache entries. Silently wrong: a ``+key`` the schema
lacks, gold links out of range, ``data.max_tokens`` below every pair, the fallback to last.pt,
``print_alignment`` without attention. Misleading: evaluate's device key, an unknown checkpoint
name, a directory as ``src_file``, the weights_only refusal.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
import sentencepiece as spm
import torch

import seq2seq.checkpoint as checkpoint_module
from seq2seq.checkpoint import load_checkpoint, save_checkpoint
from seq2seq.config import DecodeConfig, TrainerConfig
from seq2seq.data.batching import BatchPlan
from seq2seq.data.pipeline import PreparedData, TokenizedSplit
from seq2seq.data.token_store import entry_files
from seq2seq.errors import CheckpointError, ConfigError
from seq2seq.runtime import DistInfo
from seq2seq.training import setup
from seq2seq.validation import check_run_dir
from tests.cli.runner import assert_one_error_line, run_main
from tests.conftest import needs_multi30k, tiny_overrides
from tests.reliability.reliability_tools import write_corpus

FAST_EVAL = ["device=cpu", "limit=2", "decode.beam_size=1"]
# the schemas' fields, sorted: the message lists them all
TRAINER_KEYS = ", ".join(sorted(f.name for f in dataclasses.fields(TrainerConfig)))
DECODE_KEYS = ", ".join(sorted(f.name for f in dataclasses.fields(DecodeConfig)))


def output(result) -> str:
    return result.stdout + result.stderr


# --------------------------------------------------------------------------- 6. tracebacks

ENOSPC = OSError(errno.ENOSPC, "No space left on device")
SHORT_WRITE = RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 123 vs 456")


def _wrapped_enospc() -> RuntimeError:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("PytorchStreamWriter failed") from inner
    except RuntimeError as outer:
        return outer


def failing_save(error: BaseException):
    """torch.save that writes part of the file, then fails as a full disk makes it fail."""

    def save(payload, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise error

    return save


@pytest.mark.parametrize(
    "error,what",
    [
        (ENOSPC, "the disk is full"),
        (SHORT_WRITE, "the disk is full (the write was cut short)"),
        (_wrapped_enospc(), "the disk is full"),  # torch's error over the OSError
    ],
    ids=["ENOSPC", "unexpected-pos", "wrapped-ENOSPC"],
)
def test_a_full_disk_while_saving_leaves_the_good_checkpoint(error, what, tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "best.pt"
    save_checkpoint({"model": {"w": torch.ones(3)}}, path)
    good = path.read_bytes()
    monkeypatch.setattr(checkpoint_module.torch, "save", failing_save(error))
    with pytest.raises(CheckpointError) as err:
        save_checkpoint({"model": {"w": torch.zeros(3)}}, path)
    message = str(err.value)
    prefix = f"cannot save checkpoint {path}: {what} ("
    assert message.startswith(prefix), message
    assert re.fullmatch(
        rf"\d+\.\d MiB free in {re.escape(str(path.parent))}\); "
        r"free some space or choose another hydra\.run\.dir=DIR",
        message[len(prefix) :],
    ), message
    assert "\n" not in message
    assert path.read_bytes() == good  # the previous checkpoint is untouched
    assert [p.name for p in path.parent.iterdir()] == ["best.pt"]  # no temporary file left
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(3))


def test_a_bug_inside_torch_save_is_not_called_a_full_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module.torch, "save", failing_save(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="^a bug$"):
        save_checkpoint({"model": {}}, tmp_path / "last.pt")
    assert list(tmp_path.iterdir()) == []


@needs_multi30k
def test_a_full_disk_during_training_is_one_line(shared_cache, tmp_path, capfd, monkeypatch):
    monkeypatch.setattr(checkpoint_module.torch, "save", failing_save(ENOSPC))
    run_dir = tmp_path / "run"
    result = run_main(
        "train", tiny_overrides(shared_cache, f"hydra.run.dir={run_dir}"), capfd, monkeypatch
    )
    assert_one_error_line(result, f"cannot save checkpoint {run_dir / 'checkpoints'}/", prefix=True)
    assert ".pt: the disk is full (" in result.error_lines[0]
    assert not list((run_dir / "checkpoints").glob("*.tmp"))
    assert not list((run_dir / "checkpoints").glob(".*"))


def test_evaluate_and_translate_without_run_dir(capfd, monkeypatch):
    result = run_main("evaluate", ["device=cpu"], capfd, monkeypatch)
    assert_one_error_line(result, "run_dir=DIR is required: the directory of a training run")
    result = run_main("translate", ["device=cpu"], capfd, monkeypatch, stdin=b"Hallo\n")
    assert_one_error_line(result, "run_dir=DIR is required: the directory of a training run")


def uncreatable_dirs(tmp_path: Path) -> list[tuple[Path, str]]:
    """(run directory, the reason in its error line): /proc/x, and a directory under a
    read-only one (as root, who writes there anyway: under a regular file)."""
    cases = [(Path("/proc/x"), "nothing can be created in /proc: No such file or directory")]
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root
        blocker = tmp_path / "file"
        blocker.write_text("x")
        cases.append((blocker / "x", f"{blocker} is a file, not a directory"))
    else:
        cases.append((locked / "run", f"{locked}: permission denied"))
    return cases


def test_an_uncreatable_run_directory_is_one_line(shared_cache, tmp_path, capfd, monkeypatch):
    for run_dir, reason in uncreatable_dirs(tmp_path):
        line = f"run directory {run_dir} cannot be created ({reason}); choose hydra.run.dir=DIR"
        argv = tiny_overrides(shared_cache, f"hydra.run.dir={run_dir}")
        assert_one_error_line(run_main("train", argv, capfd, monkeypatch), line)
        with pytest.raises(ConfigError) as err:
            check_run_dir(run_dir)
        assert str(err.value) == line
        # a sweep: -m and hydra.sweep.dir (Hydra would make it before any job runs)
        argv = ["-m", *tiny_overrides(shared_cache, f"hydra.sweep.dir={run_dir}")]
        assert_one_error_line(
            run_main("train", argv, capfd, monkeypatch),
            line.replace("hydra.run.dir", "hydra.sweep.dir"),
        )
        assert not run_dir.exists()
    (tmp_path / "locked").chmod(stat.S_IRWXU)
    assert sorted(p.name for p in tmp_path.iterdir()) in (["file", "locked"], ["locked"])
    assert not any((tmp_path / "locked").iterdir())  # the probe left nothing behind


def token_entries(directory: Path) -> dict[Path, dict[str, bytes | None]]:
    """Each token-cache entry's header -> the bytes of its header and four arrays (None: gone)."""
    return {
        header: {
            name: path.read_bytes() if path.is_file() else None
            for name, path in {"header": header, **entry_files(header)}.items()
        }
        for header in sorted(directory.glob("tok_*.json"))
    }


def break_entry(header: Path, how: int) -> None:
    """Damage one entry, a different way by ``how``: cut an array in half, flip a byte of one
    (same size), cut the header, or delete an array."""
    files = entry_files(header)
    target = [files["src_tokens"], files["tgt_offsets"], header, files["tgt_tokens"]][how % 4]
    data = target.read_bytes()
    if how % 4 == 1:
        target.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    elif how % 4 == 3:
        target.unlink()
    else:
        target.write_bytes(data[: len(data) // 2])


@needs_multi30k
@pytest.mark.parametrize("entry", ["spm", "ids"])
def test_a_corrupt_cache_entry_is_rebuilt_and_said_so(
    entry, tiny_runs, shared_cache, tmp_path, capfd, monkeypatch
):
    """The tiny run filled the session cache; in a copy every sentencepiece model (or every cached
    token-ids entry: an array cut, altered or deleted, or the header cut) is broken, and the
    next run rebuilds the entries it uses, warns once for each, and trains. (The session cache
    holds other tests' entries too: only the ones this run reads are rebuilt.)"""
    tiny_runs.trained()
    cache = Path(shutil.copytree(shared_cache, tmp_path / "cache"))
    # entries another run would use (as other tests leave in the session cache)
    first_ids = next((cache / "ids").glob("tok_*.json"))
    other = cache / "ids" / "tok_of_another_run.json"
    shutil.copyfile(first_ids, other)
    for name, path in entry_files(first_ids).items():
        shutil.copyfile(path, entry_files(other)[name])
    first_model = next((cache / "spm").glob("*.model"))
    for suffix in (".model", ".vocab"):
        shutil.copyfile(first_model.with_suffix(suffix), cache / "spm" / f"spm_other{suffix}")
    models = {p: p.with_suffix(".vocab").read_bytes() for p in (cache / "spm").glob("*.model")}
    ids = token_entries(cache / "ids")
    assert models and ids
    if entry == "spm":
        broken = list(models)
        for path in broken:
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        broken = list(ids)
        for how, header in enumerate(broken):
            break_entry(header, how)
    argv = tiny_overrides(cache, f"hydra.run.dir={tmp_path / 'run'}", "trainer.max_steps=2")
    result = run_main("train", argv, capfd, monkeypatch)
    assert result.code == 0, output(result)[-3000:]
    assert "Traceback" not in output(result)
    if entry == "spm":
        warned = re.findall(
            r"cached sentencepiece model (\S+) is corrupt \([^)]*\): rebuilding it", output(result)
        )
        assert len(warned) == 1 and Path(warned[0]) in models, output(result)[-3000:]
        model = Path(warned[0])
        # the same vocabulary (the model's bytes differ in the temporary training path only)
        assert model.with_suffix(".vocab").read_bytes() == models[model]
        fresh = spm.SentencePieceProcessor(model_file=str(model))
        original = spm.SentencePieceProcessor(model_file=str(shared_cache / "spm" / model.name))
        sample = ["Ein Mann fährt Fahrrad.", "Zwei Hunde spielen im Schnee."]
        assert fresh.encode(sample) == original.encode(sample)
    else:
        warned = re.findall(
            r"cached token ids (\S+) are corrupt \(CorruptEntry: [^\n]*\): rebuilding them",
            output(result),
        )
        assert len(warned) == 3, output(result)[-3000:]  # train, validation, test
        assert {Path(w) for w in warned} <= set(broken)
        after = token_entries(cache / "ids")
        for header in broken:  # rebuilt byte for byte; the others stay broken, never read
            if str(header) in warned:
                assert after[header] == ids[header]
            else:
                assert after.get(header) != ids[header]


# --------------------------------------------------------------------------- 7. silently wrong


@needs_multi30k
def test_a_plus_key_the_schema_lacks_is_refused_like_a_misspelt_one(
    shared_cache, tmp_path, tiny_run, capfd, monkeypatch
):
    run_dir = tiny_run()
    trainer_line = (
        f"unknown key 'trainer.max_step' (TrainerConfig); valid keys of trainer: {TRAINER_KEYS}"
    )
    for override in ("+trainer.max_step=5", "++trainer.max_step=5", "trainer.max_step=5"):
        argv = tiny_overrides(shared_cache, f"hydra.run.dir={tmp_path / 'run'}", override)
        assert_one_error_line(run_main("train", argv, capfd, monkeypatch), trainer_line)
        assert not (tmp_path / "run").exists()
    decode_line = f"unknown key 'decode.beem' (DecodeConfig); valid keys of decode: {DECODE_KEYS}"
    for override in ("+decode.beem=3", "decode.beem=3"):  # Hydra said: use +decode.beem=3
        argv = [f"run_dir={run_dir}", *FAST_EVAL, override]
        assert_one_error_line(run_main("evaluate", argv, capfd, monkeypatch), decode_line)
        result = run_main("translate", argv, capfd, monkeypatch, stdin=b"Hallo\n")
        assert_one_error_line(result, decode_line)
    # a + on a plain dict node (data.files) and ++ on a key the schema has stay allowed
    from seq2seq.cli.precheck import precheck_train_argv

    precheck_train_argv(["+data.files.extra=x", "++trainer.max_steps=3"])


def test_hydra_advice_to_append_a_key_is_left_out():
    """Hydra's own text for a misspelt key advises ``+decode.beem=3``, which the schema would
    refuse too: the line keeps the reason only."""
    from hydra.errors import ConfigCompositionException

    from seq2seq.composition import config_error_line

    err = ConfigCompositionException(
        "Could not override 'decode.beem'.\nTo append to your config use +decode.beem=3"
    )
    assert config_error_line(err) == "Could not override 'decode.beem'."


def gold_case(tmp_path: Path, gold: str) -> tuple[Path, Path, Path]:
    src, ref, links = tmp_path / "s.de", tmp_path / "r.en", tmp_path / "gold.align"
    src.write_text("Ein Mann fährt Fahrrad.\nEine Frau lacht.\n", encoding="utf-8")
    ref.write_text("A man rides a bike.\nA woman laughs.\n", encoding="utf-8")
    links.write_text(gold, encoding="utf-8")
    return src, ref, links


@needs_multi30k
@pytest.mark.parametrize(
    "gold,expected",
    [
        (
            "0-0 1-1\n0-0 500-1\n",
            "line 2: link 500-1 is out of range: the source has 3 words and the reference 3 "
            "(0-based source-target indices); fix the link or the line order",
        ),
        (
            "0-0 3-5\n0-0\n",  # the reference has 5 words: 0..4
            "line 1: link 3-5 is out of range: the source has 4 words and the reference 5 "
            "(0-based source-target indices); fix the link or the line order",
        ),
        ("0-0 1-x\n0-0\n", "line 1: bad alignment link '1-x'; expected i-j, i?j or i-j-P"),
        ("0-0\n3\n", "line 2: bad alignment link '3'; expected i-j, i?j or i-j-P"),
    ],
    ids=["source-index", "target-index", "1-x", "3"],
)
def test_bad_gold_links_name_the_file_and_line(
    gold, expected, tiny_run, tmp_path, capfd, monkeypatch
):
    run_dir = tiny_run()
    src, ref, links = gold_case(tmp_path, gold)
    argv = [
        f"run_dir={run_dir}",
        f"src_file={src}",
        f"ref_file={ref}",
        f"gold_alignments={links}",
        "device=cpu",
        "decode.beam_size=1",
        "name=gold",
    ]
    result = run_main("evaluate", argv, capfd, monkeypatch)
    assert_one_error_line(result, f"{links} {expected}")
    assert not (run_dir / "eval" / "gold").exists()  # refused before decoding


@needs_multi30k
def test_gold_links_out_of_range_in_training_are_refused(
    shared_cache, tmp_path, capfd, monkeypatch
):
    """data.test_alignments: the end of training refuses the link, naming the file and line."""
    corpus = write_corpus(tmp_path / "corpus")
    lines = ["0-0"] * 6
    lines[1] = "0-0 500-1"  # "Zwei Hunde spielen im Schnee." has 5 words
    (corpus / "test.align").write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = tiny_overrides(
        shared_cache,
        f"data.dir={corpus}",
        "data.test_alignments=test.align",
        f"hydra.run.dir={tmp_path / 'run'}",
        "trainer.max_steps=2",
    )
    result = run_main("train", argv, capfd, monkeypatch)
    assert_one_error_line(result, "", prefix=True)
    assert re.fullmatch(
        rf"error: {re.escape(str(corpus / 'test.align'))} line 2: link 500-1 is out of range: the source has 5 words and the "
        r"reference 6 \(0-based source-target indices\); fix the link or the line order",
        result.error_lines[0],
    ), result.error_lines[0]


def prepared(src_lengths: list[int], tgt_lengths: list[int]) -> PreparedData:
    src = [np.arange(n) for n in src_lengths]
    tgt = [np.arange(n) for n in tgt_lengths]
    texts = [""] * len(src)
    return PreparedData(tokenizer=None, splits={"train": TokenizedSplit(texts, texts, src, tgt)})


def test_max_tokens_below_every_pair_is_refused_and_some_are_stated(caplog):
    dist = DistInfo()  # one process
    # pair lengths as batched: the source (with EOS) and the target + 1 (BOS / EOS)
    data = prepared([7, 12, 30], [5, 9, 40])  # pairs of 7, 12 and 41 tokens
    with pytest.raises(ConfigError) as err:
        setup.setup_plan(data, max_tokens=6, seed=0, dist=dist)
    assert str(err.value) == (
        "data.max_tokens=6 is below the length of every training pair (the shortest has 7 "
        "tokens, the longest 41): no batch would fit one; set data.max_tokens=41 or more"
    )
    with caplog.at_level("WARNING", logger="seq2seq.train"):
        plan = setup.setup_plan(data, max_tokens=20, seed=0, dist=dist)
    assert isinstance(plan, BatchPlan)
    assert caplog.messages == [
        "1 of 3 training pairs are longer than data.max_tokens=20 (up to 41 tokens): each goes "
        "in a batch of its own; set data.max_tokens=41 or more to batch them"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="seq2seq.train"):
        setup.setup_plan(data, max_tokens=41, seed=0, dist=dist)
    assert caplog.messages == []


@needs_multi30k
def test_max_tokens_below_every_pair_through_the_cli(shared_cache, tmp_path, capfd, monkeypatch):
    argv = tiny_overrides(shared_cache, f"hydra.run.dir={tmp_path / 'run'}", "data.max_tokens=3")
    result = run_main("train", argv, capfd, monkeypatch)
    assert_one_error_line(
        result,
        "data.max_tokens=3 is below the length of every training pair (the shortest has ",
        prefix=True,
    )
    longest = re.search(r"the longest (\d+)\)", result.error_lines[0])[1]
    assert result.error_lines[0].endswith(f"set data.max_tokens={longest} or more")


@needs_multi30k
def test_a_missing_best_checkpoint_falls_back_to_last_and_says_so(tiny_run, capfd, monkeypatch):
    run = tiny_run()
    (run / "checkpoints" / "best.pt").unlink()
    said = (
        f"{run / 'checkpoints' / 'best.pt'} is missing: using "
        f"{run / 'checkpoints' / 'last.pt'} instead"
    )
    result = run_main("evaluate", [f"run_dir={run}", *FAST_EVAL], capfd, monkeypatch)
    assert result.code == 0, output(result)[-3000:]
    assert output(result).count(said) == 1, output(result)[-3000:]
    result = run_main("translate", [f"run_dir={run}"], capfd, monkeypatch, stdin=b"Hallo\n")
    assert result.code == 0 and said in result.stderr and said not in result.stdout


@needs_multi30k
def test_print_alignment_without_attention_is_refused(tiny_run, capfd, monkeypatch):
    run_dir = tiny_run("attention=none")
    argv = [f"run_dir={run_dir}", "device=cpu", "print_alignment=true"]
    result = run_main("translate", argv, capfd, monkeypatch, stdin=b"Hallo\n")
    assert_one_error_line(
        result,
        "print_alignment=true needs attention, but this run's model has none "
        "(attention=none): leave print_alignment out",
    )
    assert result.stdout == ""


# --------------------------------------------------------------------------- 8. misleading


@needs_multi30k
def test_evaluate_and_translate_name_their_own_device_and_precision_keys(
    tiny_run, capfd, monkeypatch
):
    run_dir = tiny_run()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cases = [
        ("device=cuda", "device=cuda but no CUDA device is available; use device=auto or cpu"),
        ("precision=fp16", "precision=fp16 needs CUDA; on CPU use precision=bf16"),
    ]
    for override, line in cases:
        extra = [] if override.startswith("device") else ["device=cpu"]
        argv = [f"run_dir={run_dir}", "limit=2", *extra, override]
        assert_one_error_line(run_main("evaluate", argv, capfd, monkeypatch), line)
        result = run_main("translate", argv, capfd, monkeypatch, stdin=b"Hallo\n")
        assert_one_error_line(result, line)


@needs_multi30k
def test_an_unknown_checkpoint_name_lists_the_run_s(tiny_run, capfd, monkeypatch):
    run_dir = tiny_run()
    argv = [f"run_dir={run_dir}", "checkpoint=lastt", *FAST_EVAL]
    line = f"unknown checkpoint 'lastt': the run has best, last (in {run_dir / 'checkpoints'})"
    assert_one_error_line(run_main("evaluate", argv, capfd, monkeypatch), line)
    result = run_main("translate", argv, capfd, monkeypatch, stdin=b"Hallo\n")
    assert_one_error_line(result, line)


@needs_multi30k
def test_a_directory_as_src_file(tiny_run, tmp_path, capfd, monkeypatch):
    run_dir = tiny_run()
    argv = [f"run_dir={run_dir}", f"src_file={tmp_path}", *FAST_EVAL]
    result = run_main("evaluate", argv, capfd, monkeypatch)
    assert_one_error_line(
        result, f"{tmp_path} is a directory, not a file: give the path of a text file"
    )


class Opaque:
    """Any class: weights_only loading refuses it without running anything."""


@needs_multi30k
def test_the_weights_only_refusal_is_one_complete_sentence(tiny_run, capfd, monkeypatch):
    run = tiny_run()
    best = run / "checkpoints" / "best.pt"
    torch.save({"model": {}, "progress": Opaque()}, best)
    result = run_main("evaluate", [f"run_dir={run}", *FAST_EVAL], capfd, monkeypatch)
    assert_one_error_line(
        result,
        f"checkpoint {best} holds objects other than tensors and plain containers (here "
        f"{__name__}.Opaque), so it is not loaded: safe (weights_only) loading never runs a "
        "pickle's code",
    )


@needs_multi30k
def test_a_damaged_vocabulary_in_the_run_is_one_line(tiny_run, capfd, monkeypatch):
    run = tiny_run()
    model = run / "vocab" / "spm.model"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    result = run_main("evaluate", [f"run_dir={run}", *FAST_EVAL], capfd, monkeypatch)
    assert_one_error_line(
        result, f"sentencepiece model in {run / 'vocab'} cannot be loaded (", prefix=True
    )
    assert result.error_lines[0].endswith(
        "): the run directory is damaged; copy its vocab/ back or retrain"
    )
