"""Bad training configs: one ``error:`` line, exit code 1, no traceback, nothing created.

Most cases call seq2seq-train's ``main()`` in this process (as its console script does);
one test starts real processes to prove the same lines come out of ``python -m``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from seq2seq.cli.precheck import precheck_train_argv
from seq2seq.errors import ConfigError
from seq2seq.modules.attention import ATTENTIONS
from seq2seq.validation import (
    bleu_tokenizers,
    check_evaluate_config,
    check_run_dir,
    check_train_config,
)
from tests.cli.runner import assert_one_error_line, run_main
from tests.conftest import TINY_TRANSFORMER, compose_config, needs_multi30k, tiny_overrides

RNN_KEYS = "bidirectional, cell, dropout, emb_size, hidden_size, name, num_layers, split_directions, teacher_forcing, tie_embeddings"
# the attention group's options, as Hydra lists them (generated from the registry)
ATTENTION_OPTIONS = ", ".join(sorted(ATTENTIONS))
# sacreBLEU's tokenizers, as bleu.tokenize lists them
TOKENIZERS = ", ".join(bleu_tokenizers())
# (overrides, the exact error line after "error: ")
# composition: unknown group option, unknown key, wrong type, value outside an enum
BAD_COMPOSITION = [
    (
        ["attention=foo"],
        "In 'train': Could not find 'attention/foo'; valid: " + ATTENTION_OPTIONS,
    ),
    (
        ["data=nope"],
        "In 'train': Could not find 'data/nope'; valid: iwslt2017_de_en, multi30k, "
        "opus_books_de_en, reverse, tatoeba_en_fr, wmt14_en_de, wmt16_en_de",
    ),
    (["model.foo=1"], f"unknown key 'model.foo' (RNNModelConfig); valid keys of model: {RNN_KEYS}"),
    (
        ["attention=local", "attention.windw=3"],
        "unknown key 'attention.windw' (LocalAttentionConfig); valid keys of attention: "
        "input_feeding, mode, name, scale, score, window, wiring",
    ),
    (
        ["modell.x=1"],
        "unknown key 'modell' (TrainConfig); valid keys: alignment, attention, bleu, data, "
        "decode, dump_alignments, exported_runs, logger, model, optim, run_dir, trainer",
    ),
    (
        ["model.emb_size=abc"],
        "Error merging override model.emb_size=abc: Value 'abc' of type 'str' could not be "
        "converted to Integer",
    ),
    (
        ["trainer.resume=maybe"],
        "Error merging override trainer.resume=maybe: Value 'maybe' is not a valid bool (type str)",
    ),
    (
        ["trainer.device=gpu"],
        "Error merging override trainer.device=gpu: Invalid value 'gpu', expected one of "
        "[auto, cpu, cuda, mps]",
    ),
    (
        ["attention=local", "attention.mode=foo"],
        "Error merging override attention.mode=foo: Invalid value 'foo', expected one of "
        "[monotonic, predictive]",
    ),
    (
        ["model=transformer", "model.emb_size=16"],
        "unknown key 'model.emb_size' (TransformerModelConfig); valid keys of model: "
        "alignment_head, alignment_layer, d_model, decoder_layers, dropout, encoder_layers, "
        "ff_size, heads, learned_positions, max_positions, name, num_layers, pre_norm, "
        "share_embeddings, tie_output",
    ),
]
# ranges and relations (seq2seq.validation.check_train_config)
BAD_VALUES = [
    (["model.emb_size=0"], "model.emb_size must be >= 1, got 0"),
    (["model.hidden_size=-1"], "model.hidden_size must be >= 1, got -1"),
    (["model.num_layers=0"], "model.num_layers must be >= 1, got 0"),
    (["model.dropout=1.0"], "model.dropout must be in [0, 1), got 1.0"),
    (["model.dropout=-0.1"], "model.dropout must be in [0, 1), got -0.1"),
    (["model.teacher_forcing=1.5"], "model.teacher_forcing must be in [0, 1], got 1.5"),
    ([*TINY_TRANSFORMER, "model.d_model=0"], "model.d_model must be >= 1, got 0"),
    ([*TINY_TRANSFORMER, "model.heads=-2"], "model.heads must be >= 1, got -2"),
    ([*TINY_TRANSFORMER, "model.ff_size=0"], "model.ff_size must be >= 1, got 0"),
    (
        [*TINY_TRANSFORMER, "model.d_model=30", "model.heads=4"],
        "model.d_model=30 must be a multiple of model.heads=4 (e.g. model.d_model=32)",
    ),
    (["data.max_tokens=0"], "data.max_tokens must be >= 1, got 0"),
    (["data.vocab.size=0"], "data.vocab.size must be >= 8, got 0"),
    (["data.max_len=-5"], "data.max_len must be >= 1, got -5"),
    (["attention=local", "attention.window=0"], "attention.window must be >= 1, got 0"),
    (
        ["attention=multiplicative", "attention.score=dot"],
        "attention.score=dot compares decoder and encoder states directly, so their widths "
        "must match: the encoder gives 48 (2 directions x 24), the decoder 24; set "
        "model.split_directions=true (or model.bidirectional=false)",
    ),
    (
        ["attention=local", "attention.score=scaled_dot", "attention.scale=learned"],
        "attention.score=scaled_dot compares decoder and encoder states directly, so their "
        "widths must match: the encoder gives 48 (2 directions x 24), the decoder 24; set "
        "model.split_directions=true (or model.bidirectional=false)",
    ),
    (
        ["model.split_directions=true", "model.hidden_size=25"],
        "model.hidden_size must be even with model.split_directions=true (each direction gets "
        "half), got 25",
    ),
    (["decode.beam_size=0"], "decode.beam_size must be >= 1, got 0"),
    (["decode.nbest=3"], "decode.nbest must be <= decode.beam_size=2, got 3"),
    (["decode.max_len_ratio=0"], "decode.max_len_ratio must be > 0, got 0.0"),
    (["trainer.label_smoothing=1.0"], "trainer.label_smoothing must be in [0, 1), got 1.0"),
    (["trainer.max_steps=0"], "trainer.max_steps must be > 0, got 0"),
    (["trainer.max_time=-1"], "trainer.max_time must be > 0, got -1.0"),
    (
        ["trainer.max_steps=null", "trainer.max_time=null"],
        "no training budget: set trainer.max_steps, trainer.max_epochs or trainer.max_time",
    ),
    (["trainer.val_every=0"], "trainer.val_every must be >= 1, got 0"),
    (["trainer.max_bad_steps=0"], "trainer.max_bad_steps must be >= 1, got 0"),
    (["data.tgt=de"], "data.src and data.tgt are both 'de': choose two different languages"),
    (["data.src=xx"], "data.src='xx' is not a language of multi30k; valid: en, de, fr, cs"),
    (["bleu.tokenize=moses"], f"bleu.tokenize must be one of {TOKENIZERS}, got 'moses'"),
    # several problems: all of them, on one line
    (
        ["model.emb_size=0", "decode.beam_size=0"],
        "model.emb_size must be >= 1, got 0; decode.beam_size must be >= 1, got 0",
    ),
]
BAD_CONFIGS = BAD_COMPOSITION + BAD_VALUES


def _id(case) -> str:
    return " ".join(o for o in case[0] if o not in TINY_TRANSFORMER) or "transformer"


@needs_multi30k
@pytest.mark.parametrize("overrides,expected", BAD_CONFIGS, ids=[_id(c) for c in BAD_CONFIGS])
def test_bad_config_is_one_line_before_anything_is_created(
    overrides, expected, shared_cache, tmp_path, capfd, monkeypatch
):
    run_dir = tmp_path / "run"
    argv = tiny_overrides(shared_cache, f"hydra.run.dir={run_dir}", *overrides)
    result = run_main("train", argv, capfd, monkeypatch)
    assert_one_error_line(result, expected)
    assert not run_dir.exists()  # refused before Hydra made the run directory


@pytest.mark.parametrize("overrides,expected", BAD_VALUES, ids=[_id(c) for c in BAD_VALUES])
def test_check_train_config_messages(overrides, expected, shared_cache):
    """The same lines from the plain function (what training.recipe.train calls first)."""
    cfg = compose_config(*tiny_overrides(shared_cache, *overrides))
    with pytest.raises(ConfigError) as err:
        check_train_config(cfg)
    assert str(err.value) == expected


def test_valid_configs_pass(shared_cache):
    for extra in (
        [],
        TINY_TRANSFORMER,
        ["attention=local", "attention.window=1"],
        ["attention=multiplicative", "attention.score=dot", "model.split_directions=true"],
        ["attention=multiplicative", "attention.score=dot", "model.bidirectional=false"],
        ["variant=scaled_dot"],
        ["debug=default"],
    ):
        check_train_config(compose_config(*tiny_overrides(shared_cache, *extra)))
    precheck_train_argv(["experiment=compare_attention"])  # a multirun config
    # a MULTIRUN config's base is not checked: its jobs override it and check their own
    precheck_train_argv(["experiment=compare_attention", "data.max_tokens=0"])
    precheck_train_argv(["-m", "attention=none,additive"])  # flags: Hydra decides


def test_a_sweep_without_multirun_is_one_line():
    with pytest.raises(ConfigError) as err:
        precheck_train_argv(["attention=none,additive", "hydra.run.dir=/tmp/x"])
    assert str(err.value).startswith("Ambiguous value for argument 'attention=none,additive'; ")
    assert "add --multirun to your command line" in str(err.value)


@pytest.mark.parametrize(
    "overrides,expected",
    [
        (["decode.beam_size=0"], "decode.beam_size must be >= 1, got 0"),
        (["decode.nbest=6"], "decode.nbest must be <= decode.beam_size=5, got 6"),
        (["decode.nbest=0"], "decode.nbest must be >= 1, got 0"),
        (["decode.max_len_ratio=-1"], "decode.max_len_ratio must be > 0, got -1.0"),
        (["decode.batch_size=0"], "decode.batch_size must be >= 1, got 0"),
        (["decode.workers=0"], "decode.workers must be >= 1, got 0"),
        (["limit=0"], "limit must be >= 1 (the first N lines), got 0"),
        (["limit=-3"], "limit must be >= 1 (the first N lines), got -3"),
        (
            ["split=train"],
            "split must be test or validation, got 'train' (or give src_file=PATH)",
        ),
        (["bleu.tokenize=moses"], f"bleu.tokenize must be one of {TOKENIZERS}, got 'moses'"),
        (
            ["test_set=wmt14", "src_file=a.de", "ref_file=a.en"],
            "test_set= brings its own sources and references: give it or src_file=, "
            "ref_file=, not both",
        ),
        (
            ["langpair=en-de"],
            "langpair= is the pair of a sacreBLEU test set: give test_set=NAME with it",
        ),
        (
            ["test_set=wmt14", "langpair=ende"],
            "langpair must be SRC-TGT (e.g. en-de), got 'ende'",
        ),
    ],
)
def test_check_evaluate_config_messages(overrides, expected):
    cfg = compose_config("run_dir=x", *overrides, config_name="evaluate")
    with pytest.raises(ConfigError) as err:
        check_evaluate_config(cfg)
    assert str(err.value) == expected
    check_evaluate_config(compose_config("run_dir=x", "limit=3", config_name="evaluate"))
    check_evaluate_config(
        compose_config("run_dir=x", "test_set=wmt14", "langpair=en-de", config_name="evaluate")
    )


def test_decoding_precision_is_a_closed_set_with_int8():
    with pytest.raises(ConfigError) as err:
        compose_config("run_dir=x", "precision=int4", config_name="evaluate")
    assert str(err.value) == (
        "Error merging override precision=int4: "
        "Invalid value 'int4', expected one of [auto, fp32, bf16, fp16, int8]"
    )
    cfg = compose_config("run_dir=x", "precision=int8", config_name="evaluate")
    check_evaluate_config(cfg)  # accepted


def test_check_run_dir(tmp_path):
    check_run_dir(tmp_path / "a" / "b")  # creatable
    assert not (tmp_path / "a").exists()  # and nothing created
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError) as err:
        check_run_dir(blocker / "run")
    assert str(err.value) == (
        f"run directory {blocker / 'run'} cannot be created ({blocker} is a file, not a directory); "
        "choose hydra.run.dir=DIR"
    )
    with pytest.raises(ConfigError, match="is a file, not a directory"):
        check_run_dir(blocker)


@needs_multi30k
def test_real_processes_print_the_same_single_line(shared_cache, tmp_path):
    """``python -m seq2seq.cli.train``: exit 1, one line on stderr, no traceback, nothing
    written (no wall-clock limit: a loaded machine must not fail it)."""
    cases = [*BAD_COMPOSITION[:3], *BAD_VALUES[:1], *BAD_VALUES[-3:]]
    procs = []
    for i, (overrides, expected) in enumerate(cases):
        argv = tiny_overrides(shared_cache, f"hydra.run.dir={tmp_path / str(i)}", *overrides)
        proc = subprocess.Popen(
            [sys.executable, "-m", "seq2seq.cli.train", *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append((proc, expected))
    for proc, expected in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 1, err
        assert err == f"error: {expected}\n" and "Traceback" not in out
    assert not any(tmp_path.iterdir())


@needs_multi30k
@pytest.mark.skipif(
    importlib.util.find_spec("mecab_ko") is not None, reason="MeCab-ko is installed here"
)
def test_a_tokenizer_without_its_extra_is_one_line_before_anything_is_created(
    shared_cache, tmp_path, capfd, monkeypatch
):
    run_dir = tmp_path / "run"
    argv = tiny_overrides(shared_cache, f"hydra.run.dir={run_dir}", "bleu.tokenize=ko-mecab")
    result = run_main("train", argv, capfd, monkeypatch)
    assert_one_error_line(
        result,
        'bleu.tokenize=ko-mecab needs MeCab and its dictionary: pip install "seq2seq[ko]" '
        "(sacreBLEU's sacrebleu[ko])",
    )
    assert not run_dir.exists()
