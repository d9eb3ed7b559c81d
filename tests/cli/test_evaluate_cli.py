"""seq2seq-evaluate and seq2seq-translate on a tiny trained run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli.runner import run_command
from tests.conftest import compose_config, needs_multi30k

pytestmark = needs_multi30k


@pytest.fixture
def trained_run(tiny_run) -> Path:
    """This test's copy of a 30-step run (the tests decode a model that has learned a little)."""
    return tiny_run("trainer.max_steps=30", "trainer.val_every=30")


def test_evaluate_bleu_equals_sacrebleu_cli_and_dumps_alignments(trained_run, tmp_path):
    src = tmp_path / "src.de"
    ref = tmp_path / "ref.en"
    src.write_text(
        "Ein Mann fährt Fahrrad.\nZwei Hunde spielen im Schnee.\nEine Frau lacht.\n",
        encoding="utf-8",
    )
    ref.write_text(
        "A man rides a bike.\nTwo dogs play in the snow.\nA woman laughs.\n", encoding="utf-8"
    )
    result = run_command(
        "evaluate",
        f"run_dir={trained_run}",
        f"src_file={src}",
        f"ref_file={ref}",
        "device=cpu",
        "name=mine",
        "dump_alignments=true",
        "decode.beam_size=3",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = trained_run / "eval" / "mine"
    metrics = json.loads((out / "metrics.json").read_text())
    sacre = subprocess.run(
        [sys.executable, "-m", "sacrebleu", str(ref), "-i", str(out / "hyps.txt"), "-b", "-w", "2"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert metrics["bleu"] == pytest.approx(float(sacre.stdout.strip()), abs=0.01)
    assert "BLEU" in result.stdout and metrics["signature"] in result.stdout
    assert len((out / "hyps.txt").read_text(encoding="utf-8").splitlines()) == 3
    # alignments: one matrix per sentence, rows sum to 1, shapes match the token lists
    matrices = np.load(out / "alignments" / "file.npz")
    index = [
        json.loads(line) for line in (out / "alignments" / "file.jsonl").read_text().splitlines()
    ]
    assert len(index) == 3 and sorted(matrices.files) == ["0", "1", "2"]
    for entry in index:
        matrix = matrices[str(entry["id"])]
        assert (
            matrix.shape
            == (len(entry["tgt_tokens"]), len(entry["src_tokens"]))
            == tuple(entry["shape"])
        )
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-4)
    assert (out / "alignments" / "file_0.png").is_file()


def test_translate_keeps_lines_and_order(trained_run):
    long_line = " ".join(["Hund"] * 1000)
    lines = [
        "Ein Mann.",
        "",
        "   ",
        "Zwei Hunde spielen im Schnee.",
        long_line,
        "Bad\x07control\x1bchars",
        "Ein Mann.",
    ]
    result = run_command(
        "translate", f"run_dir={trained_run}", "device=cpu", stdin="\n".join(lines) + "\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout.split("\n")
    assert out[-1] == "" and len(out) - 1 == len(lines)
    assert out[1] == "" and out[2] == ""  # empty and whitespace-only lines give empty lines
    assert out[0] == out[6]  # same input, same output, wherever it stands
    assert all(out[i] for i in (0, 3, 4))


def test_int8_decoding_from_the_command_line(trained_run):
    """precision=int8: its own eval directory and metrics entry; translate keeps the lines."""
    result = run_command(
        "evaluate",
        f"run_dir={trained_run}",
        "device=cpu",
        "precision=int8",
        "limit=10",
        "split=test",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = trained_run / "eval" / "test_beam5_int8_first10" / "metrics.json"
    metrics = json.loads(record.read_text())
    assert metrics["precision"] == "int8" and metrics["sentences"] == 10
    assert 0.0 <= metrics["bleu"] <= 100.0
    result = run_command(
        "translate", f"run_dir={trained_run}", "precision=int8", stdin="Ein Mann.\n\nEine Frau.\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout.split("\n")
    assert len(out) == 4 and out[0] and out[1] == "" and out[2]


def test_translate_prints_pharaoh_alignment(trained_run):
    result = run_command(
        "translate",
        f"run_dir={trained_run}",
        "device=cpu",
        "print_alignment=true",
        stdin="Ein Mann schläft.\n",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    text, links = result.stdout.rstrip("\n").split("\t")
    for link in links.split():
        s, t = map(int, link.split("-"))
        assert 0 <= s < 3 and 0 <= t < len(text.split())


def test_errors_are_one_clear_line(trained_run, tmp_path):
    missing = run_command("evaluate", f"run_dir={tmp_path / 'nope'}")
    assert (
        missing.returncode == 1
        and "error: run directory" in missing.stderr
        and "Traceback" not in missing.stderr
    )
    (tmp_path / "empty_run").mkdir()
    no_ckpt = run_command("translate", f"run_dir={tmp_path / 'empty_run'}", stdin="Hallo\n")
    assert no_ckpt.returncode == 1 and "error: no checkpoint" in no_ckpt.stderr
    src, ref = tmp_path / "a.de", tmp_path / "a.en"
    src.write_text("a\nb\n")
    ref.write_text("a\n")
    mismatch = run_command(
        "evaluate", f"run_dir={trained_run}", f"src_file={src}", f"ref_file={ref}"
    )
    assert mismatch.returncode == 1
    assert f"error: line counts differ: {src} has 2 lines, {ref} has 1" in mismatch.stderr


@pytest.mark.usefixtures("one_thread")
def test_beam_scores_at_least_greedy_on_a_trained_model(trained_run):
    from seq2seq.data.pipeline import load_split_texts
    from seq2seq.decoding import translate_batches
    from seq2seq.evaluation.run import load_run

    run = load_run(trained_run, device="cpu")
    sources, _ = load_split_texts(run.config.data, "test")
    src_ids = run.tokenizer.encode_src(sources)
    greedy = translate_batches(run.model, src_ids, beam_size=1, alpha=0.0, device="cpu")
    beam = translate_batches(run.model, src_ids, beam_size=5, alpha=0.0, device="cpu")
    # same length limit for both; a tiny model rarely emits EOS, so compare every sentence
    at_least = sum(b.log_prob >= g.log_prob - 1e-4 for b, g in zip(beam, greedy, strict=True))
    print(f"beam 5 model score >= greedy on {at_least}/{len(beam)} test sentences")
    assert at_least >= 0.8 * len(beam)


def parse_nbest(text: str) -> list[tuple[int, str, float, float]]:
    rows = []
    for line in text.strip().splitlines():
        number, translation, score, log_prob = line.split(" ||| ")
        rows.append((int(number), translation, float(score), float(log_prob)))
    return rows


def test_nbest_through_evaluate_and_translate(trained_run):
    """decode.nbest=3: 3 hypotheses per source, best first, the first being the 1-best output;
    the same lists through evaluate (hyps.nbest.txt) and translate (numbered by input line)."""
    result = run_command(
        "evaluate",
        f"run_dir={trained_run}",
        "device=cpu",
        "limit=5",
        "decode.beam_size=4",
        "decode.nbest=3",
        "name=nbest",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = trained_run / "eval" / "nbest"
    rows = parse_nbest((out / "hyps.nbest.txt").read_text())
    assert [r[0] for r in rows] == [i for i in range(5) for _ in range(3)]
    best = (out / "hyps.txt").read_text().splitlines()
    for i in range(5):
        candidates = rows[3 * i : 3 * i + 3]
        scores = [r[2] for r in candidates]
        assert scores == sorted(scores, reverse=True)  # best first
        assert candidates[0][1] == best[i]  # the 1-best is the first
        assert all(r[3] <= 0 for r in candidates)  # log-probs
    from omegaconf import OmegaConf

    from seq2seq.evaluation.evaluate import load_split_texts
    from seq2seq.evaluation.run import load_run

    data = OmegaConf.create(load_run(trained_run, device="cpu").config["data"])
    src_lines = load_split_texts(data, "test")[0][:2]
    result = run_command(
        "translate",
        f"run_dir={trained_run}",
        "device=cpu",
        "decode.beam_size=4",
        "decode.nbest=3",
        stdin=f"{src_lines[0]}\n\n{src_lines[1]}\n",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    translated = parse_nbest(result.stdout)
    assert [r[0] for r in translated] == [0, 0, 0, 2, 2, 2]  # the empty line 1 has none
    assert [r[1:] for r in translated] == [r[1:] for r in rows[:6]]  # same as evaluate's


def test_nbest_above_the_beam_is_one_line(trained_run):
    result = run_command(
        "translate", f"run_dir={trained_run}", "decode.beam_size=2", "decode.nbest=3", stdin="x\n"
    )
    assert result.returncode == 1
    assert result.stderr.strip() == "error: decode.nbest must be <= decode.beam_size=2, got 3"


@pytest.mark.slow
def test_evaluate_on_a_sacrebleu_test_set(trained_run, tmp_path, monkeypatch):
    """test_set=wmt14 (langpair: the run's de-en): sources and references from sacreBLEU's cache
    ($SACREBLEU, filled offline), scored as sacreBLEU's CLI scores -t wmt14 -l de-en."""
    from seq2seq.evaluation.evaluate import evaluate
    from tests.evaluation.sacrebleu_fixtures import DE, sacrebleu_cli, write_wmt14_cache

    cache = write_wmt14_cache(tmp_path / "sacrebleu")
    env = dict(os.environ, SACREBLEU=str(cache))
    args = (
        f"run_dir={trained_run}",
        "test_set=wmt14",
        "device=cpu",
        "decode.beam_size=2",
        "decode.max_len_ratio=1.0",  # the tiny model's news translations are long garbage
    )
    result = run_command("evaluate", *args, "bleu.tokenize=char", env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    out = trained_run / "eval" / "wmt14_de-en_beam2_tok-char"  # not the run's 13a: its own record
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["source"] == metrics["references"] == "sacrebleu:wmt14:de-en"
    assert metrics["sentences"] == len(DE) and metrics["bleu_tokenize"] == "char"
    assert "test:wmt14|lang:de-en|" in metrics["signature"] and "tok:char" in metrics["signature"]
    hyps = out / "hyps.txt"
    assert len(hyps.read_text(encoding="utf-8").splitlines()) == len(DE)
    for metric, key in (("bleu", "bleu"), ("chrf", "chrf")):
        extra = ["-tok", "char"] if metric == "bleu" else []
        sacre = sacrebleu_cli(
            "-t",
            "wmt14",
            "-l",
            "de-en",
            "-i",
            str(hyps),
            "-m",
            metric,
            *extra,
            "-b",
            "-w",
            "4",
            env=env,
        )
        assert metrics[key] == pytest.approx(float(sacre.stdout), abs=0.005 + 5e-5), metric

    # in-process, $SACREBLEU set after sacreBLEU was imported; no bleu.tokenize: the run's 13a
    monkeypatch.setenv("SACREBLEU", str(cache))
    again = evaluate(compose_config(*args, "name=wmt14_13a", "limit=2", config_name="evaluate"))
    assert again["sentences"] == 2 and again["bleu_tokenize"] == "13a"
    assert again["references"] == "sacrebleu:wmt14:de-en (first 2)"
