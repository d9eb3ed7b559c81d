"""seq2seq-benchmark, our side: a tiny real run writes the JSON the README table comes from, and
the ratio lines have the exact machine-readable format."""

from __future__ import annotations

import json

import pytest

from seq2seq.bench.suite import ratio_lines
from seq2seq.cli.benchmark import main
from tests.conftest import needs_multi30k

SIZES = {
    "rnn/additive": ["model.emb_size=16", "model.hidden_size=24"],
    "transformer": ["model.d_model=32", "model.heads=2", "model.ff_size=64", "model.num_layers=1"],
}


@needs_multi30k
@pytest.mark.parametrize("variant", sorted(SIZES))
def test_tiny_benchmark_writes_rows_and_machine(variant, shared_cache, tmp_path, capsys):
    out = tmp_path / "bench.json"
    main(
        [
            f"variants=[{variant}]",
            "precisions=[fp32,int8]",
            "steps=2",
            "warmup=1",
            "beams=[1,2]",
            "decode_sentences=3",
            "decode_length=5",
            "threads=1",
            f"out={out}",
            f"data.cache_dir={shared_cache}",
            "data.train_limit=256",
            "data.vocab.size=300",
            "data.max_tokens=256",
            *SIZES[variant],
        ]
    )
    results = json.loads(out.read_text())
    assert results["machine"]["logical_cpus"] >= 1
    assert isinstance(results["machine"]["native_bf16"], bool)
    assert results["threads"] == 1 and results["decode_length"] == 5
    row, int8_row = results["runs"]
    assert row["variant"] == int8_row["variant"] == variant
    assert row["precision"] == "fp32" and row["params"] > 0
    assert row["train_tokens_per_s"] > 0 and 0 < row["fraction_of_peak"] < 1
    # int8 is a decoding precision: its row has decoding figures only
    assert int8_row["precision"] == "int8" and "train_tokens_per_s" not in int8_row
    # every output is forced to 5 tokens, so tokens/s = 5 x sentences/s (rounding aside)
    for name in ("greedy", "beam2"):
        for r in (row, int8_row):
            assert r[f"{name}_tokens_per_s"] == pytest.approx(
                5 * r[f"{name}_sentences_per_s"], rel=0.05
            )
    assert results["peers"] == [] and results["ratios"] == []
    printed = capsys.readouterr().out
    assert "native_bf16: " in printed and f"| {variant} | fp32 |" in printed
    assert f"| {variant} | int8 |" in printed


def test_ratio_lines_take_our_best_precision_over_each_peer():
    results = {
        "runs": [
            {"variant": "rnn/additive", "train_tokens_per_s": 1000.0, "greedy_tokens_per_s": 90.0},
            {"variant": "rnn/additive", "train_tokens_per_s": 1500.0, "greedy_tokens_per_s": 60.0},
            {"variant": "transformer", "train_tokens_per_s": 999.0},
            {"variant": "rnn/additive", "greedy_tokens_per_s": 75.0},  # int8: no training row
        ],
        "peers": [
            {
                "toolkit": "opennmt",
                "family": "rnn",
                "train_tokens_per_s": 500.0,
                "decode_greedy_tokens_per_s": 30.0,
                "decode_beam5_tokens_per_s": 10.0,  # no beam5 of ours: no line
            },
            {"toolkit": "joeynmt", "family": "transformer", "train_tokens_per_s": 333.0},
        ],
    }
    assert ratio_lines(results) == [
        "ratio opennmt rnn train_tokens_per_s 3.00",
        "ratio opennmt rnn greedy_tokens_per_s 3.00",
        "ratio joeynmt transformer train_tokens_per_s 3.00",
    ]


@pytest.mark.parametrize(
    ("argument", "line"),
    [
        ("steps=abc", "steps: Value 'abc' of type 'str' could not be converted to Integer"),
        ("precisions=[fp32,fp8]", "unknown precision 'fp8'; valid: fp32, bf16, int8"),
        ("--steps", "unknown flag --steps: valid flags are -h/--help, --cfg job, --resolve"),
    ],
)
def test_a_bad_argument_is_one_line_before_any_work(argument, line, tmp_path, capsys):
    """The benchmark's own keys are checked against their types and choices; its old flags
    are refused (one argument style: key=value)."""
    with pytest.raises(SystemExit) as exit_:
        main([argument, f"out={tmp_path / 'b.json'}"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"error: {line}\n"
    assert not (tmp_path / "b.json").exists()
