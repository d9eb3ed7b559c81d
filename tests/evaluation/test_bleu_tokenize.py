"""bleu.tokenize: every sacreBLEU tokenizer available here scores as ``sacrebleu -tok`` does;
the ones that cannot be built here (a missing extra, a model it cannot download) are one line."""

from __future__ import annotations

import importlib.util
import json
import urllib.error
import urllib.request

import pytest

from seq2seq.errors import ConfigError
from seq2seq.evaluation.bleu import bleu_metric, corpus_scores
from seq2seq.validation import bleu_tokenizers, tokenize_problem
from tests.evaluation.sacrebleu_fixtures import sacrebleu_cli

# English, Chinese and Japanese, with ASCII and CJK punctuation: the tokenizers split them apart
REFS = [
    "The cat sat on the mat, didn't it?",
    "我们今天去公园散步。",
    "東京は日本の首都です。",
    "Prices rose 3.5% in 2023—twice the 2022 rate!",
    "他说：“这是一个好主意！”",
]
HYPS = [
    "The cat sat on a mat, didn't it ?",
    "我们今天去公园走走。",
    "東京は日本の首都だ。",
    "Prices rose 3.5 % in 2023 — twice the rate of 2022!",
    "他说：“这是个好主意！”",
]
HAS_MECAB = importlib.util.find_spec("MeCab") is not None and importlib.util.find_spec("ipadic")
HAS_MECAB_KO = importlib.util.find_spec("mecab_ko") is not None
OFFLINE = ["13a", "intl", "zh", "char", "none"] + (["ja-mecab"] if HAS_MECAB else [])
OFFLINE += ["ko-mecab"] if HAS_MECAB_KO else []


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("bleu_files")
    (root / "ref.txt").write_text("".join(r + "\n" for r in REFS), encoding="utf-8")
    (root / "hyp.txt").write_text("".join(h + "\n" for h in HYPS), encoding="utf-8")
    return root


def cli_score(files, tokenize: str) -> dict:
    """``sacrebleu REF -i HYP -tok X -w 4``'s JSON: score (4 decimals) and signature."""
    out = sacrebleu_cli(
        str(files / "ref.txt"), "-i", str(files / "hyp.txt"), "-tok", tokenize, "-w", "4"
    )
    return json.loads(out.stdout)


def test_every_option_equals_the_sacrebleu_cli(files):
    ours = {}
    for tokenize in OFFLINE:
        scores = corpus_scores(HYPS, REFS, tokenize=tokenize)
        cli = cli_score(files, tokenize)
        # 2 decimals: ours is rounded to 2, the CLI's to 4
        assert abs(scores["bleu"] - cli["score"]) <= 0.005 + 5e-5, tokenize
        assert scores["signature"] == cli["signature"], tokenize
        assert scores["bleu_tokenize"] == tokenize
        # bleu_lc: the same tokenizer on lowercased text
        lowercased = corpus_scores(
            [h.lower() for h in HYPS], [r.lower() for r in REFS], tokenize=tokenize
        )
        assert scores["bleu_lc"] == lowercased["bleu"], tokenize
        ours[tokenize] = scores["bleu"]
    # the options really tokenize differently on these lines
    assert len(set(ours.values())) >= 4, ours
    assert ours["char"] > ours["none"] and ours["zh"] > ours["13a"], ours


def test_the_options_are_sacrebleus_own_and_a_bad_one_is_one_line():
    assert {"13a", "intl", "zh", "ja-mecab", "char", "none"} <= set(bleu_tokenizers())
    assert tokenize_problem("13a") is None and tokenize_problem(None) is None
    line = tokenize_problem("moses")
    assert line.startswith("bleu.tokenize must be one of none, zh, 13a, intl, char, ja-mecab")
    assert line.endswith("got 'moses'") and "\n" not in line
    with pytest.raises(ConfigError, match="^bleu.tokenize must be one of .*got 'moses'$"):
        bleu_metric("moses")


@pytest.mark.parametrize(
    "tokenize,extra,installed",
    [("ja-mecab", "ja", HAS_MECAB), ("ko-mecab", "ko", HAS_MECAB_KO)],
    ids=["ja-mecab", "ko-mecab"],
)
def test_a_mecab_tokenizer_without_its_extra_is_one_line(tokenize, extra, installed):
    if installed:
        pytest.skip(f"{tokenize}'s extra is installed: it is scored against the CLI above")
    with pytest.raises(ConfigError) as err:
        bleu_metric(tokenize)
    assert str(err.value) == (
        f'bleu.tokenize={tokenize} needs MeCab and its dictionary: pip install "seq2seq[{extra}]" '
        f"(sacreBLEU's sacrebleu[{extra}])"
    )


def test_a_sentencepiece_tokenizer_it_cannot_download_is_one_line(tmp_path, monkeypatch):
    from sacrebleu.tokenizers import tokenizer_spm

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(tmp_path))  # no model cached
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(ConfigError) as err:
        bleu_metric("flores200")
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith("bleu.tokenize=flores200 needs its sentencepiece model")
    assert "Temporary failure in name resolution" in line and "/models" in line
