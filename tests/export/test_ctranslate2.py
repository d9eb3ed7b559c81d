"""seq2seq-export format=ctranslate2: the exported model computes our log-probs (every model
option), decodes greedily as ours does token for token, loads as the README shows, and every
refusal is one line.

Robust to CPU rounding: float32 CTranslate2 and PyTorch agree to ~1e-6 in log-prob, so a
greedy step can only flip where our two best tokens are closer than that. Every comparison
measures our margins first and compares the tokens up to the first step closer than
``NEAR_TIE`` (the whole output where there is none, which the tests require of most sentences).
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from seq2seq.data.vocab import BOS_ID, EOS_ID, PAD_ID
from seq2seq.decoding import translate_batches
from seq2seq.evaluation.run import load_run
from seq2seq.export.ctranslate2 import (
    EXPORT_INFO,
    SOURCE_SPM,
    TARGET_SPM,
    check_exportable,
    max_decoding_lengths,
    transformer_spec,
)
from seq2seq.models.base import Seq2Seq
from seq2seq.models.transformer import TransformerSeq2Seq
from tests.cli.runner import assert_one_error_line, run_main
from tests.conftest import readme_python_block, tiny_transformer
from tests.reliability.reliability_tools import DE, EN

NEAR_TIE = 1e-3  # log-prob gap below which a greedy step may go either way on another kernel
INT8_MARGIN = 0.5  # the same for int8 weights (their rounding moves log-probs by ~1e-2)
needs_ct2 = pytest.mark.skipif(
    importlib.util.find_spec("ctranslate2") is None,
    reason="ctranslate2 not installed (pip install 'seq2seq[export]')",
)
pytestmark = [pytest.mark.usefixtures("one_thread")]

VOCAB = ["<pad>", "<unk>", "<s>", "</s>"] + [f"w{i}" for i in range(36)]  # a toy vocabulary


# --------------------------------------------------------------------------- helpers


def banned_log_probs(model: Seq2Seq, src: list[int], tgt_in: list[int]) -> torch.Tensor:
    """Our teacher-forced log-probs (len(tgt_in), V), PAD and BOS banned as our decoders do."""
    s, t = torch.tensor([src]), torch.tensor([tgt_in])
    with torch.no_grad():
        logits = model(
            s, torch.ones_like(s, dtype=torch.bool), t, torch.ones_like(t, dtype=torch.bool)
        )
    logits = logits.logits[0].float()
    logits[:, [PAD_ID, BOS_ID]] = float("-inf")
    return logits.log_softmax(dim=-1)


def step_margins(model: Seq2Seq, src: list[int], tokens: list[int], finished: bool) -> list[float]:
    """Our gap between the best and second-best token at each step of a greedy output."""
    steps = tokens + [EOS_ID] if finished else tokens
    top2 = banned_log_probs(model, src, [BOS_ID] + steps[:-1]).topk(2, dim=-1).values
    return (top2[:, 0] - top2[:, 1]).tolist()


def compare_greedy(
    model, src_ids: list[list[int]], translate, *, ratio=1.5, offset=10, near_tie=NEAR_TIE
) -> list:
    """Our greedy outputs of ``src_ids`` (each ending with EOS) and ``translate(ids, cap)``'s
    (CTranslate2's), compared token for token up to the first step our two best tokens are
    less than ``near_tie`` apart. Returns, per sentence, (our tokens, robust: no such step)."""
    ours = translate_batches(
        model, src_ids, beam_size=1, max_len_ratio=ratio, max_len_offset=offset, device="cpu"
    )
    caps = max_decoding_lengths(
        [len(s) - 1 for s in src_ids],
        max_len_ratio=ratio,
        max_len_offset=offset,
        max_positions=model.max_positions,
    )
    results = []
    for src, cap, hyp in zip(src_ids, caps, ours, strict=True):
        theirs = translate(src[:-1], cap)  # CTranslate2 appends the source EOS itself
        margins = step_margins(model, src, hyp.tokens, hyp.finished)
        tie = next((i for i, m in enumerate(margins) if m < near_tie), None)
        if tie is None:
            assert theirs == hyp.tokens, (src, hyp.tokens, theirs)
        else:
            assert theirs[:tie] == hyp.tokens[:tie], (src, tie, hyp.tokens, theirs)
        results.append((hyp.tokens, tie is None))
    return results


def toy_model(**options) -> TransformerSeq2Seq:
    """A random toy Transformer whose LayerNorm gains/biases and linear biases are perturbed
    (they start at 1 and 0, where a wrong mapping would not show)."""
    model = tiny_transformer(len(VOCAB), len(VOCAB), **options)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                param.add_(0.2 * torch.randn_like(param))
    return model


def save_toy(model: TransformerSeq2Seq, out: Path) -> Path:
    spec = transformer_spec(model, VOCAB, VOCAB)
    spec.validate()
    spec.optimize()
    out.mkdir(parents=True)
    spec.save(str(out))
    return out


def ct2_greedy(translator, vocab: list[str]):
    """translate(src ids, cap) -> CTranslate2's greedy output ids, with our decoding options."""
    index = {piece: i for i, piece in enumerate(vocab)}

    def translate(src: list[int], cap: int) -> list[int]:
        (result,) = translator.translate_batch(
            [[vocab[i] for i in src]],
            beam_size=1,
            max_decoding_length=cap,
            min_decoding_length=0,  # ours may end at once
        )
        return [index[p] for p in result.hypotheses[0]]

    return translate


# --------------------------------------------------------------------------- model options

VARIANTS = {
    "pre_norm": {},
    "post_norm": {"pre_norm": False},
    "shared_embeddings": {"share_embeddings": True},
    "untied_output": {"tie_output": False},
    "learned_positions": {"learned_positions": True, "max_positions": 64},
    "uneven_layers_head0": {"encoder_layers": 1, "decoder_layers": 3, "alignment_head": 0},
}


@needs_ct2
@pytest.mark.parametrize("options", VARIANTS.values(), ids=VARIANTS.keys())
def test_exported_model_scores_like_ours(options, tmp_path):
    """CTranslate2's teacher-forced log-probs of given targets equal ours, batch with padding
    included, for every Transformer option (a float comparison: no argmax involved)."""
    import ctranslate2

    model = toy_model(**options)
    translator = ctranslate2.Translator(str(save_toy(model, tmp_path / "m")), device="cpu")
    sources = [[5, 6, 7, 8, 9], [10, 11], [12, 13, 14]]
    targets = [[15, 16, 17], [18, 19, 20, 21, 22, 23], [24]]
    results = translator.score_batch(
        [[VOCAB[i] for i in s] for s in sources], [[VOCAB[i] for i in t] for t in targets]
    )
    for src, tgt, result in zip(sources, targets, results, strict=True):
        assert result.tokens == [VOCAB[i] for i in tgt] + ["</s>"]
        lp = banned_log_probs(model, src + [EOS_ID], [BOS_ID] + tgt)
        ours = lp[torch.arange(len(tgt) + 1), torch.tensor(tgt + [EOS_ID])]
        torch.testing.assert_close(torch.tensor(result.log_probs), ours, atol=1e-4, rtol=0)


@needs_ct2
def test_per_side_vocabularies_are_two_files_and_map_by_their_own_pieces(tmp_path):
    import ctranslate2

    src_vocab = VOCAB[:4] + [f"src{i}" for i in range(len(VOCAB) - 4)]
    model = toy_model()
    spec = transformer_spec(model, src_vocab, VOCAB)
    spec.validate()
    spec.optimize()
    spec.save(str(tmp_path))
    assert json.loads((tmp_path / "source_vocabulary.json").read_text()) == src_vocab
    assert json.loads((tmp_path / "target_vocabulary.json").read_text()) == VOCAB
    translator = ctranslate2.Translator(str(tmp_path), device="cpu")
    (result,) = translator.score_batch([["src3", "src9"]], [["w5"]])
    lp = banned_log_probs(model, [7, 13, EOS_ID], [BOS_ID, 9])
    expected = lp[torch.arange(2), torch.tensor([9, EOS_ID])]
    torch.testing.assert_close(torch.tensor(result.log_probs), expected, atol=1e-4, rtol=0)


@needs_ct2
def test_greedy_with_length_caps_and_banned_tokens_matches_ours(tmp_path):
    """A toy model that, unbanned, would emit PAD or BOS at every step, and never EOS: both
    decoders skip PAD/BOS the same way and stop at the same cap, token for token."""
    import ctranslate2

    model = toy_model(tie_output=False)
    with torch.no_grad():  # PAD's and BOS's logits = sum(LayerNorm(x)) = sum(beta) = D
        model.decoder_norm.weight.fill_(1.0)
        model.decoder_norm.bias.fill_(1.0)
        model.output.weight[[PAD_ID, BOS_ID]] = 1.0
        model.output.weight[EOS_ID] = -1.0  # and EOS never wins
    g = torch.Generator().manual_seed(1)
    src_ids = [
        torch.randint(4, len(VOCAB), (n,), generator=g).tolist() + [EOS_ID] for n in (1, 3, 6, 9)
    ]
    for src in src_ids:  # unbanned, PAD or BOS would win: the ban is what is being tested
        s, t = torch.tensor([src]), torch.tensor([[BOS_ID]])
        with torch.no_grad():
            out = model(
                s, torch.ones_like(s, dtype=torch.bool), t, torch.ones_like(t, dtype=torch.bool)
            )
        assert int(out.logits[0, 0].argmax()) in (PAD_ID, BOS_ID)

    translator = ctranslate2.Translator(str(save_toy(model, tmp_path / "m")), device="cpu")
    results = compare_greedy(model, src_ids, ct2_greedy(translator, VOCAB), offset=2)
    caps = [math.ceil(1.5 * len(s)) + 2 for s in src_ids]
    assert [len(tokens) for tokens, _ in results] == caps  # unfinished, cut at the cap
    assert sum(robust for _, robust in results) >= 3
    assert all(PAD_ID not in t and BOS_ID not in t for t, _ in results)


@needs_ct2
def test_models_ctranslate2_cannot_express_are_refused():
    from seq2seq.errors import ExportError

    with pytest.raises(ExportError, match="at least one encoder layer"):
        check_exportable(toy_model(encoder_layers=0))
    model = toy_model()
    model.src_positions = None
    with pytest.raises(ExportError, match="needs position encodings"):
        check_exportable(model)


# --------------------------------------------------------------------------- a trained run


NOVEL = ["Ein Hund fährt Fahrrad.", "Zwei Frauen lachen.", "Ein Mann sitzt im Schnee."]


@pytest.fixture(scope="module")
def exported(learned_run, tmp_path_factory) -> Path:
    """learned_run exported by the command (float32 weights)."""
    from seq2seq.cli.export import export

    return export([f"run_dir={learned_run}"])


@needs_ct2
@pytest.mark.slow
def test_greedy_outputs_match_ours_token_for_token(learned_run, exported):
    import ctranslate2
    import sentencepiece as spm

    run = load_run(learned_run, device="cpu")
    translator = ctranslate2.Translator(str(exported), device="cpu", compute_type="float32")
    sp_tgt = spm.SentencePieceProcessor(model_file=str(exported / TARGET_SPM))
    vocab = [sp_tgt.id_to_piece(i) for i in range(sp_tgt.get_piece_size())]
    src_ids = run.tokenizer.encode_src(DE + NOVEL)
    results = compare_greedy(run.model, src_ids, ct2_greedy(translator, vocab))
    tokens = [t for t, _ in results]
    assert sum(robust for _, robust in results) >= len(DE)  # most compared in full
    assert len({tuple(t) for t in tokens}) >= len(DE) and min(len(t) for t in tokens) >= 3
    assert run.tokenizer.decode_tgt(tokens[: len(DE)]) == EN  # real sentences: it learned

    # the command's default layout, and the text through the exported sentencepiece models
    assert exported == learned_run / "export" / "ctranslate2"
    sp_src = spm.SentencePieceProcessor(model_file=str(exported / SOURCE_SPM))
    (result,) = translator.translate_batch(
        [sp_src.encode(DE[1], out_type=str)], beam_size=1, min_decoding_length=0
    )
    assert sp_tgt.decode(result.hypotheses[0]) == run.tokenizer.decode_tgt([tokens[1]])[0]


@needs_ct2
@pytest.mark.slow
def test_export_layout_and_record(learned_run, exported):
    run = load_run(learned_run, device="cpu")
    files = {p.name for p in exported.iterdir()}
    assert files == {
        "model.bin",
        "config.json",
        "shared_vocabulary.json",  # a joint vocabulary (the default)
        SOURCE_SPM,
        TARGET_SPM,
        EXPORT_INFO,
    }
    for name, model_file in (
        (SOURCE_SPM, run.tokenizer.src_model_path),
        (TARGET_SPM, run.tokenizer.tgt_model_path),
    ):
        assert (exported / name).read_bytes() == Path(model_file).read_bytes()
    config = json.loads((exported / "config.json").read_text())
    assert (config["bos_token"], config["eos_token"], config["unk_token"]) == (
        "<s>",
        "</s>",
        "<unk>",
    )
    assert config["decoder_start_token"] == "<s>" and config["add_source_eos"] is True
    assert config["layer_norm_epsilon"] == pytest.approx(1e-5)
    vocab = json.loads((exported / "shared_vocabulary.json").read_text())
    assert vocab == [run.tokenizer.tgt.id_to_piece(i) for i in range(run.tokenizer.tgt_vocab_size)]
    info = json.loads((exported / EXPORT_INFO).read_text())
    assert info["checkpoint"] == "best.pt" and info["step"] == run.step
    assert info["quantization"] == "float32" and info["never_emitted"] == ["<pad>", "<s>"]


@needs_ct2
@pytest.mark.slow
def test_int8_export_is_smaller_and_decodes_the_clear_cases_like_ours(
    learned_run, tmp_path, exported
):
    """int8 weights round every logit a little: outputs are compared only where each of our
    greedy steps wins by more than INT8_MARGIN in log-prob (the learned pairs are)."""
    import ctranslate2

    from seq2seq.cli.export import export

    out = export([f"run_dir={learned_run}", f"out={tmp_path / 'int8'}", "quantization=int8"])
    assert json.loads((out / EXPORT_INFO).read_text())["quantization"] == "int8"
    # 4x smaller weight matrices; the float32 position table (aliased, one copy) stays
    assert (out / "model.bin").stat().st_size < 0.8 * (exported / "model.bin").stat().st_size
    run = load_run(learned_run, device="cpu")
    translator = ctranslate2.Translator(str(out), device="cpu", compute_type="int8")
    vocab = [run.tokenizer.tgt.id_to_piece(i) for i in range(run.tokenizer.tgt_vocab_size)]
    results = compare_greedy(
        run.model,
        run.tokenizer.encode_src(DE),
        ct2_greedy(translator, vocab),
        near_tie=INT8_MARGIN,
    )
    assert sum(robust for _, robust in results) >= len(DE) // 2


@needs_ct2
@pytest.mark.slow
def test_the_readme_snippet_loads_the_export(exported):
    code = readme_python_block("# Export to CTranslate2")
    assert '"outputs/DATE/TIME_transformer/export/ctranslate2"' in code
    code = code.replace('"outputs/DATE/TIME_transformer/export/ctranslate2"', repr(str(exported)))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == EN[0]  # "Ein Mann fährt Fahrrad."


# --------------------------------------------------------------------------- refusals


@needs_ct2
@pytest.mark.slow
def test_an_rnn_run_is_refused(tiny_run, export_corpus, capfd, monkeypatch):
    run_dir = tiny_run(f"data.dir={export_corpus}", "trainer.max_steps=2")
    result = run_main("export", [f"run_dir={run_dir}"], capfd, monkeypatch)
    assert_one_error_line(
        result, f"CTranslate2 exports Transformers only; {run_dir} is a model=rnn run"
    )
    assert not (run_dir / "export").exists()


@needs_ct2
def test_a_missing_run_dir_is_refused(tmp_path, capfd, monkeypatch):
    missing = tmp_path / "nope"
    result = run_main("export", [f"run_dir={missing}"], capfd, monkeypatch)
    assert_one_error_line(
        result, f"run directory {missing} does not exist; pass run_dir=DIR of a training run"
    )
    result = run_main("export", [], capfd, monkeypatch)
    assert_one_error_line(result, "run_dir=DIR is required: the directory of a training run")


@needs_ct2
def test_a_non_empty_output_dir_is_kept_unless_it_is_an_earlier_export(
    tmp_path, capfd, monkeypatch
):
    run_dir, out = tmp_path / "run", tmp_path / "out"
    run_dir.mkdir()
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = [f"run_dir={run_dir}", f"out={out}"]
    result = run_main("export", args, capfd, monkeypatch)
    assert_one_error_line(
        result,
        f"output directory {out} exists and is not empty: pass overwrite=true to replace it, "
        "or another out=DIR",
    )
    result = run_main("export", [*args, "overwrite=true"], capfd, monkeypatch)
    assert_one_error_line(
        result,
        f"output directory {out} is not an earlier export (no {EXPORT_INFO}), so overwrite=true "
        "does not delete it: choose another out=DIR",
    )
    assert (out / "notes.txt").read_text() == "mine"


@needs_ct2
@pytest.mark.slow
def test_overwrite_replaces_an_earlier_export(learned_run, tmp_path, capfd, monkeypatch):
    out = tmp_path / "again"
    args = [f"run_dir={learned_run}", f"out={out}"]
    assert run_main("export", args, capfd, monkeypatch).code == 0
    (out / "stale.txt").write_text("from before")
    assert run_main("export", args, capfd, monkeypatch).code == 1  # not without overwrite
    result = run_main("export", [*args, "overwrite=true", "checkpoint=last"], capfd, monkeypatch)
    assert result.code == 0, result.stderr
    assert not (out / "stale.txt").exists()
    assert json.loads((out / EXPORT_INFO).read_text())["checkpoint"] == "last.pt"
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".again.")]  # no staging left


def test_missing_ctranslate2_names_the_extra(tmp_path, capfd, monkeypatch):
    monkeypatch.setitem(sys.modules, "ctranslate2", None)  # import ctranslate2 -> ImportError
    result = run_main("export", [f"run_dir={tmp_path}"], capfd, monkeypatch)
    assert_one_error_line(
        result,
        "ctranslate2 is not installed: pip install 'seq2seq[export]' (or pip install ctranslate2)",
    )


def test_bad_options_name_the_valid_ones(tmp_path, capfd, monkeypatch):
    result = run_main("export", [f"run_dir={tmp_path}", "format=onnx"], capfd, monkeypatch)
    assert_one_error_line(result, "Error merging override format=onnx", prefix=True)
    assert "expected one of [ctranslate2]" in result.error_lines[0]
    result = run_main("export", [f"run_dir={tmp_path}", "quantization=int4"], capfd, monkeypatch)
    assert "int8, int8_float32" in result.error_lines[0]
