"""seq2seq-evaluate / seq2seq-translate on awkward input: one line out per line in, or one
``error:`` line. Extends tests/cli/test_evaluate_cli.py (translate of control
characters, a 1000-token line and blank lines is tested there)."""

from __future__ import annotations

import pytest

from seq2seq.errors import Seq2SeqError
from seq2seq.evaluation.bleu import corpus_scores
from tests.cli.runner import assert_one_error_line, run_main

AWKWARD = [
    "Ein Mann fährt Fahrrad.",
    "",
    "   \t ",
    " ".join(["Hund"] * 1200),  # 1000+ tokens
    "Bad\x07control\x1bchars\x00and NUL",
    "Zwei Hunde\u2028im Schnee.",  # a Unicode line separator is not a line break
    "Ein Mann fährt Fahrrad.",
]


def test_evaluate_awkward_source_lines_keep_line_alignment(tiny_run, tmp_path, capfd, monkeypatch):
    run_dir = tiny_run()
    src, ref = tmp_path / "awkward.de", tmp_path / "awkward.en"
    src.write_text("\n".join(AWKWARD) + "\n", encoding="utf-8")
    ref.write_text("\n".join(f"reference {i}" for i in range(len(AWKWARD))) + "\n")
    result = run_main(
        "evaluate",
        [f"run_dir={run_dir}", f"src_file={src}", f"ref_file={ref}", "device=cpu", "name=awk"],
        capfd,
        monkeypatch,
    )
    assert result.code == 0, result.stderr[-3000:]
    hyps = (run_dir / "eval" / "awk" / "hyps.txt").read_text(encoding="utf-8").split("\n")
    assert hyps[-1] == "" and len(hyps) - 1 == len(AWKWARD)
    assert hyps[0] == hyps[6]
    assert "BLEU" in result.stdout


def test_reference_with_an_extra_line(tiny_run, tmp_path, capfd, monkeypatch):
    run_dir = tiny_run()
    src, ref = tmp_path / "s.de", tmp_path / "r.en"
    src.write_text("Ein Mann.\nEine Frau.\n", encoding="utf-8")
    ref.write_text("A man.\nA woman.\n\n", encoding="utf-8")  # a trailing blank line too many
    result = run_main(
        "evaluate",
        [f"run_dir={run_dir}", f"src_file={src}", f"ref_file={ref}", "device=cpu"],
        capfd,
        monkeypatch,
    )
    assert_one_error_line(result, f"line counts differ: {src} has 2 lines, {ref} has 3")


def test_scores_refuse_unequal_hypotheses_and_references():
    with pytest.raises(Seq2SeqError) as err:
        corpus_scores(["a", "b", "c"], ["a", "b"])
    assert str(err.value) == (
        "3 hypotheses but 2 references: every reference line needs exactly one hypothesis line"
    )


@pytest.mark.parametrize(
    "override,expected",
    [
        ("decode.beam_size=0", "decode.beam_size must be >= 1, got 0"),
        ("decode.nbest=9", "decode.nbest must be <= decode.beam_size=5, got 9"),
        ("decode.max_len_ratio=0", "decode.max_len_ratio must be > 0, got 0.0"),
        ("limit=0", "limit must be >= 1 (the first N lines), got 0"),
        ("limit=-3", "limit must be >= 1 (the first N lines), got -3"),
    ],
)
def test_evaluate_bad_decoding_options(tiny_run, override, expected, capfd, monkeypatch):
    run_dir = tiny_run()
    result = run_main(
        "evaluate", [f"run_dir={run_dir}", "device=cpu", override], capfd, monkeypatch
    )
    assert_one_error_line(result, expected)


@pytest.mark.parametrize(
    "override,expected",
    [
        ("decode.beam_size=0", "decode.beam_size must be >= 1, got 0"),
        ("decode.nbest=9", "decode.nbest must be <= decode.beam_size=5, got 9"),
        ("decode.max_len_ratio=-1", "decode.max_len_ratio must be > 0, got -1.0"),
        (
            "decode.beam_size=abc",
            "Error merging override decode.beam_size=abc: Value 'abc' of type 'str' could not "
            "be converted to Integer",
        ),
    ],
)
def test_translate_bad_decoding_options(tiny_run, override, expected, capfd, monkeypatch):
    run_dir = tiny_run()
    result = run_main(
        "translate", [f"run_dir={run_dir}", "device=cpu", override], capfd, monkeypatch, b"Hallo\n"
    )
    assert_one_error_line(result, expected)


@pytest.mark.parametrize(
    "stdin,lines",
    [
        (b"", 0),
        (b"   \n\t\n\n", 3),  # only whitespace: as many empty lines out
        (b"Ein Mann.\r\nEine Frau.\r\n", 2),  # CRLF
        (b"Ein Mann.\nEine Frau.", 2),  # no final newline
        ("a\x00b\nZwei\u2028Hunde\n".encode(), 2),
    ],
    ids=["empty", "whitespace", "crlf", "no-final-newline", "nul-and-u2028"],
)
def test_translate_one_line_out_per_line_in(tiny_run, stdin, lines, capfd, monkeypatch):
    run_dir = tiny_run()
    result = run_main("translate", [f"run_dir={run_dir}", "device=cpu"], capfd, monkeypatch, stdin)
    assert result.code == 0, result.stderr[-3000:]
    assert result.stdout.count("\n") == lines
    if stdin.strip() == b"":
        assert result.stdout.strip() == ""
    else:
        assert all(result.stdout.split("\n")[:lines])


def test_translate_non_utf8_stdin(tiny_run, capfd, monkeypatch):
    run_dir = tiny_run()
    result = run_main(
        "translate", [f"run_dir={run_dir}"], capfd, monkeypatch, b"Ein Mann.\nEin M\xe4nn.\n"
    )
    assert_one_error_line(
        result, "standard input line 2 is not UTF-8; re-encode the input as UTF-8"
    )
