"""The peer harness (benchmarks/peers): data, configs, commands, batching and log parsing run
without the peers installed, and so does a whole run_peer of a stand-in peer (fake_peer.py) with
our own interpreter; the slow test runs each real peer for a few steps when its venv exists
(`make bench-peers`)."""

from __future__ import annotations

import random
import sys
import types
from pathlib import Path

import pytest
import yaml

from benchmarks.peers import PeerRun, dump_yaml, get_peer, harness, peers
from benchmarks.peers.joeynmt import JoeyNMT
from benchmarks.peers.opennmt import OpenNMT
from benchmarks.peers.runner import StepRecorder
from seq2seq.data.vocab import train_sentencepiece
from tests.bench.fake_peer import FakePeer

ROOT = Path(__file__).resolve().parents[2]
PEER_VENVS = {
    "joeynmt": ROOT / "build" / "peers" / "joeynmt-venv",
    "opennmt": ROOT / "build" / "peers" / "opennmt-venv",
}
JOEY, ONMT = JoeyNMT(), OpenNMT()

WORDS = (
    "ein mann eine frau kind hund spielt läuft auf der straße im park mit einem ball "
    "rot blau grün großer kleiner zwei drei leute sitzen stehen vor dem haus"
).split()


def _corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    src, tgt = [], []
    for _ in range(n):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 14))]
        src.append(" ".join(words))
        tgt.append(" ".join(reversed(words)).upper())
    return src, tgt


@pytest.fixture(scope="module")
def peer_workdir(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("peers")
    src, tgt = _corpus(400)
    model = train_sentencepiece(src + tgt, cache_dir=root / "spm", vocab_size=120)
    work = root / "work"
    harness.write_peer_data(work, src, tgt, src[:12], model)
    return work, model


def _run(tmp_path: Path, family: str = "rnn", **settings) -> PeerRun:
    settings = {"total_steps": 35, "batch_size": 4800, **settings}
    return PeerRun(family, tmp_path, tmp_path / "run", "de", "en", **settings)


# --------------------------------------------------------------------------- data + vocab


def test_vocab_files_order_and_size(peer_workdir):
    import sentencepiece as spm

    work, model = peer_workdir
    sp = spm.SentencePieceProcessor(model_file=str(model))
    size = sp.get_piece_size()
    joey = harness.write_vocab(JOEY, work / "data", model).read_text(encoding="utf-8").splitlines()
    onmt = harness.write_vocab(ONMT, work / "data", model).read_text(encoding="utf-8").splitlines()
    # Joey: line i = Joey id i; its specials first (unk, pad, bos, eos), then our pieces 4..
    assert joey[:4] == ["<unk>", "<pad>", "<s>", "</s>"]
    assert joey[4:] == [sp.id_to_piece(i) for i in range(4, size)]
    assert len(joey) == size == len(set(joey))
    # OpenNMT prepends its own 4 specials: the file holds only our real pieces
    assert onmt == joey[4:]
    assert len(onmt) + 4 == size


def test_segmented_data_uses_our_pieces(peer_workdir):
    import sentencepiece as spm

    work, model = peer_workdir
    sp = spm.SentencePieceProcessor(model_file=str(model))
    src, tgt = _corpus(400)
    lines = (work / "data" / "train.de").read_text(encoding="utf-8").splitlines()
    tlines = (work / "data" / "train.en").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(tlines) == 400
    assert lines[0].split(" ") == sp.encode(src[0], out_type=str)
    assert sp.decode(tlines[3].split(" ")) == tgt[3]
    vocab = set(JOEY.vocab_lines(harness.spm_pieces(model)))
    assert all(piece in vocab for line in lines for piece in line.split(" "))
    assert len((work / "data" / "test.de").read_text().splitlines()) == 12


def test_joey_vocab_lines_maps_special_ids():
    pieces = ["<pad>", "<unk>", "<s>", "</s>", "▁a", "b"]
    assert JOEY.vocab_lines(pieces) == ["<unk>", "<pad>", "<s>", "</s>", "▁a", "b"]
    assert ONMT.vocab_lines(pieces) == ["▁a", "b"]


# --------------------------------------------------------------------------- configs


def test_joey_rnn_config_matches_our_sizes(tmp_path):
    cfg = JOEY.config(_run(tmp_path, batch_size=10000, decode_max_len=30), decode_beam=5)
    enc, dec = cfg["model"]["encoder"], cfg["model"]["decoder"]
    assert (enc["type"], enc["rnn_type"], enc["bidirectional"]) == ("recurrent", "gru", True)
    assert enc["hidden_size"] == 512 and enc["num_layers"] == 1
    assert enc["embeddings"]["embedding_dim"] == dec["embeddings"]["embedding_dim"] == 256
    assert (dec["rnn_type"], dec["hidden_size"], dec["attention"]) == ("gru", 512, "bahdanau")
    assert enc["dropout"] == dec["dropout"] == 0.2
    train = cfg["training"]
    assert train["optimizer"] == "adam" and train["learning_rate"] == 1e-3
    assert (train["batch_type"], train["batch_size"], train["updates"]) == ("token", 10000, 35)
    assert train["validation_freq"] > train["updates"]
    assert cfg["data"]["src"]["level"] == "word" and "tokenizer_type" not in cfg["data"]["src"]
    symbols = cfg["data"]["special_symbols"]
    assert (symbols["unk_id"], symbols["pad_id"], symbols["bos_id"], symbols["eos_id"]) == (
        0, 1, 2, 3,
    )  # fmt: skip
    test = cfg["testing"]
    assert test["beam_size"] == 5
    assert test["min_output_length"] == test["max_output_length"] == 30
    # the YAML round-trips
    path = dump_yaml(cfg, tmp_path / "c.yaml")
    assert yaml.safe_load(path.read_text()) == cfg


def test_joey_transformer_config_matches_our_sizes(tmp_path):
    cfg = JOEY.config(_run(tmp_path, "transformer", total_steps=10, batch_size=5000))
    for side in ("encoder", "decoder"):
        stack = cfg["model"][side]
        assert stack["type"] == "transformer"
        assert (stack["num_layers"], stack["num_heads"]) == (3, 4)
        assert stack["hidden_size"] == stack["embeddings"]["embedding_dim"] == 256
        assert stack["ff_size"] == 1024 and stack["dropout"] == 0.1
    assert cfg["model"]["tied_softmax"] is True


def test_opennmt_configs_match_our_sizes(tmp_path):
    rnn = ONMT.train_config(_run(tmp_path))
    assert (rnn["encoder_type"], rnn["decoder_type"], rnn["rnn_type"]) == ("brnn", "rnn", "GRU")
    assert rnn["enc_hid_size"] == 1024  # brnn: summed over directions -> 2 x 512
    assert rnn["word_vec_size"] == 256 and rnn["global_attention"] == "mlp"
    assert rnn["dropout"] == [0.2]
    assert (rnn["batch_type"], rnn["batch_size"], rnn["train_steps"]) == ("tokens", 4800, 35)
    assert rnn["bucket_size"] == 32768 and rnn["num_workers"] == 0
    assert rnn["optim"] == "adam" and rnn["learning_rate"] == 1e-3
    assert rnn["share_vocab"] is True and "transforms" not in rnn
    assert OpenNMT(rnn_hidden=512).train_config(_run(tmp_path))["dec_hid_size"] == 512
    tr = ONMT.train_config(_run(tmp_path, "transformer"))
    assert (tr["enc_layers"], tr["dec_layers"], tr["heads"]) == (3, 3, 4)
    assert tr["hidden_size"] == tr["word_vec_size"] == 256
    assert tr["transformer_ff"] == 1024 and tr["dropout"] == [0.1]
    for peer in (JOEY, ONMT):
        with pytest.raises(ValueError, match="unknown family"):
            peer.train_args(_run(tmp_path, "cnn"))


def test_train_commands_write_their_configs(tmp_path):
    for peer, expected in ((JOEY, ["train", "--skip-test"]), (ONMT, ["train", "-config"])):
        run = _run(tmp_path / peer.name)
        run.run_dir.mkdir(parents=True)
        args = peer.train_args(run)
        assert [a for a in args if not a.endswith(".yaml")] == expected
        config = yaml.safe_load(Path(next(a for a in args if a.endswith(".yaml"))).read_text())
        assert str(peer.vocab_path(run.data_dir)) in yaml.safe_dump(config)


def test_joey_decode_config_fixes_the_output_length(tmp_path):
    run = _run(tmp_path, decode_max_len=25)
    run.run_dir.mkdir()
    args, produced = JOEY.decode_args(
        run, beam=5, checkpoint=tmp_path / "m.ckpt", src=tmp_path / "d" / "test.de",
        output=tmp_path / "hyp.txt",
    )  # fmt: skip
    assert args[0] == "test" and args[2:] == ["--output-path", str(tmp_path / "hyp.txt")]
    assert produced == tmp_path / "hyp.txt.test"  # joey writes <output_path>.test
    cfg = yaml.safe_load(Path(args[1]).read_text())
    assert cfg["testing"]["min_output_length"] == cfg["testing"]["max_output_length"] == 25
    assert cfg["testing"]["beam_size"] == 5 and cfg["testing"]["load_model"].endswith("m.ckpt")
    assert cfg["data"]["test"] == str(tmp_path / "d" / "test")


def test_opennmt_translate_args_fix_the_output_length(tmp_path):
    args, produced = ONMT.decode_args(
        _run(tmp_path, decode_max_len=25), beam=5, checkpoint=Path("m.pt"), src=Path("s"),
        output=Path("o"),
    )  # fmt: skip
    assert args[0] == "translate" and produced == Path("o")
    args = args[1:]
    pairs = dict(zip(args[::2], args[1::2], strict=False))
    assert pairs["-beam_size"] == "5"
    assert pairs["-min_length"] == pairs["-max_length"] == "25"
    assert pairs["-max_length_ratio"] == "0"
    assert "-report_time" in args


# --------------------------------------------------------------------------- batching


def test_calibrated_batches_carry_the_target_real_tokens():
    rng = random.Random(1)
    src = [rng.randint(3, 40) for _ in range(3000)]
    tgt = [max(1, s + rng.randint(-5, 5)) for s in src]
    sizes = {}
    for name, peer in peers().items():
        size, real = harness.calibrate_batch_size(peer, src, tgt, 2000)
        assert 2000 <= real < 2000 * 1.1
        batches = peer.simulate_batches(src, tgt, size)
        assert sorted(i for b in batches for i in b) == list(range(3000))
        sizes[name] = size
    # Joey batches are random (no bucketing): more padding, a larger configured size
    assert sizes["joeynmt"] > sizes["opennmt"] > 2000


def test_simulated_batches_follow_each_rule():
    src, tgt = [5, 5, 10, 2], [4, 9, 3, 1]
    # OpenNMT: sorted by (src, tgt+2); cost max(src, tgt+2)
    batches = ONMT.simulate_batches(src, tgt, 20)
    assert [i for b in batches for i in b] == [3, 0, 1, 2]
    for b in batches[:-1]:
        assert len(b) * max(max(src[i], tgt[i] + 2) for i in b) <= 20
    # Joey: closes a batch once rows * max(src+1, tgt+1) >= batch_size
    batches = JOEY.simulate_batches(src, tgt, 12)
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3]
    for b in batches[:-1]:  # the last one may be partial
        assert len(b) * max(max(src[i] + 1, tgt[i] + 1) for i in b) >= 12
        assert (len(b) - 1) * max(max(src[i] + 1, tgt[i] + 1) for i in b[:-1]) < 12


# --------------------------------------------------------------------------- parsing

JOEY_LOG = """\
2026-11-22 07:16:20,101 - INFO - joeynmt.training - Total params: 14625280
2026-11-22 07:16:31,102 - INFO - joeynmt.training - Epoch   1, Step:        1, Batch Loss:     9.0, Batch Acc: 0.000, Tokens per Sec:       80, Lr: 0.001000
2026-11-22 07:16:42,102 - INFO - joeynmt.training - Epoch   1, Step:        2, Batch Loss:     8.9, Batch Acc: 0.001, Tokens per Sec:      100, Lr: 0.001000
2026-11-22 07:16:53,102 - INFO - joeynmt.training - Epoch   1, Step:        3, Batch Loss:     8.8, Batch Acc: 0.010, Tokens per Sec:      400, Lr: 0.001000
2026-11-22 07:17:13,773 - INFO - joeynmt.prediction - Predicting 16 example(s)... (Greedy decoding with min_output_length=10)
2026-11-22 07:17:13,842 - INFO - joeynmt.prediction - Generation took 0.0689[sec].
2026-11-22 07:17:13,843 - INFO - joeynmt.prediction - Predicting 20 example(s)... (Greedy decoding with min_output_length=10)
2026-11-22 07:17:13,901 - INFO - joeynmt.prediction - Generation took 1.5000[sec].
"""  # noqa: E501

ONMT_LOG = """\
[2026-11-22 07:12:07,111 INFO] * number of parameters: 25942848
[2026-11-22 07:12:24,142 INFO] Step  1/    5; acc: 0.1; ppl: 160331.7; xent: 12.0; lr: 0.00100; sents:      54; bsz: 1134/1080/54;  69/ 65 tok/s;     17 sec;
[2026-11-22 07:12:51,275 INFO] Step  2/    5; acc: 0.0; ppl: 195661.7; xent: 12.2; lr: 0.00100; sents:      76; bsz: 1140/ 988/76;  42/ 36 tok/s;     44 sec;
[2026-11-22 07:13:15,840 INFO] Step  3/    5; acc: 5.0; ppl: 24982.8; xent: 10.1; lr: 0.00100; sents:      95; bsz:  950/1045/95;  1039/ 1043 tok/s;     68 sec;
[2026-11-22 07:14:01,000 INFO] Total translation time (s): 5.5
"""  # noqa: E501


def test_parse_joey_log():
    steps = JOEY.parse_train_log(JOEY_LOG)
    assert sorted(steps) == [1, 2, 3] and steps[3] == {"tgt_tok_per_s": 400}
    # harmonic mean of steps 2 and 3 (after 1 warm-up step)
    assert JOEY.log_tokens_per_s(JOEY_LOG, 1) == pytest.approx(160.0)
    assert JOEY.parse_params(JOEY_LOG) == 14625280
    assert JOEY.parse_decode_seconds(JOEY_LOG) == 1.5  # the last set (test)
    assert JOEY.parse_decode_seconds(ONMT_LOG) is None


def test_parse_opennmt_log():
    steps = ONMT.parse_train_log(ONMT_LOG)
    assert steps[2] == {
        "src_tokens": 1140,
        "tgt_tokens": 988,
        "sents": 76,
        "src_tok_per_s": 42,
        "tgt_tok_per_s": 36,
    }
    assert steps[3]["tgt_tok_per_s"] == 1043
    assert ONMT.parse_params(ONMT_LOG) == 25942848
    assert ONMT.parse_decode_seconds(ONMT_LOG) == 5.5
    assert ONMT.log_tokens_per_s("no steps here", 1) is None


def test_throughput_from_step_records():
    records = [
        {"step": 1, "t": 10.0, "cpu": 5.0, "tokens": 900, "params": 7},
        {"step": 2, "t": 12.0, "cpu": 9.0, "tokens": 1000},
        {"step": 3, "t": 13.0, "cpu": 11.0, "tokens": 1100},
        {"step": 4, "t": 15.0, "cpu": 15.0, "tokens": 900},
    ]
    fig = harness.throughput_from_steps(records, warmup_steps=2)
    # steps 3-4: 2000 tokens between the end of step 2 (t=12) and the end of step 4 (t=15)
    assert fig["train_tokens_per_s"] == pytest.approx(2000 / 3)
    assert fig["real_tgt_tokens_per_batch"] == 1000
    assert fig["measured_steps"] == 2
    assert fig["cpu_utilisation"] == pytest.approx(2.0)
    with pytest.raises(ValueError):
        harness.throughput_from_steps(records, warmup_steps=4)
    with pytest.raises(ValueError):
        harness.throughput_from_steps(records, warmup_steps=0)


def test_count_output(tmp_path):
    out = tmp_path / "hyp.txt"
    out.write_text("▁a ▁b ▁c\n▁d ▁e ▁f\n", encoding="utf-8")
    assert harness.count_output(out) == (2, 6)


def test_run_peer_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown toolkit 'fairseq'; valid: joeynmt, opennmt"):
        get_peer("fairseq")
    with pytest.raises(ValueError, match="unknown family"):
        harness.run_peer("joeynmt", "cnn", workdir=tmp_path, venv_dir=tmp_path, steps=1,
                         warmup_steps=1, batch_target_tokens=10)  # fmt: skip
    with pytest.raises(FileNotFoundError, match="write_peer_data"):
        harness.run_peer("joeynmt", "rnn", workdir=tmp_path, venv_dir=tmp_path, steps=1,
                         warmup_steps=1, batch_target_tokens=10)  # fmt: skip


# --------------------------------------------------------------------------- the runner


def test_step_recorder_counts_tokens_per_optimizer_step(tmp_path):
    import torch

    class Toolkit:
        def step(self, optimizer, batch):
            optimizer.step()

    path = tmp_path / "steps.jsonl"
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with open(path, "w", encoding="utf-8") as out:
        recorder = StepRecorder(out)
        recorder.count_tokens(Toolkit, "step", lambda _, __, batch: len(batch))
        handle = optimizer.register_step_post_hook(recorder)
        for batch in ([1, 2], [1, 2, 3]):
            Toolkit().step(optimizer, batch)
        handle.remove()
    first, second = harness.read_step_records(path)
    assert (first["step"], first["tokens"], first["params"]) == (1, 2, 8)
    assert first["threads"] == torch.get_num_threads() and "params" not in second
    assert second["tokens"] == 3 and second["t"] >= first["t"]


def _modules(monkeypatch, modules: dict[str, dict]) -> dict[str, types.ModuleType]:
    """Stand-in toolkit modules in sys.modules: dotted name -> attributes."""
    made = {}
    for name, attrs in modules.items():
        made[name] = module = types.ModuleType(name)
        module.__dict__.update(attrs, __path__=[])
        monkeypatch.setitem(sys.modules, name, module)
    return made


def test_joeynmt_enter_counts_batch_ntokens_and_fixes_the_output_length(tmp_path, monkeypatch):
    class TrainManager:
        def _train_step(self, batch):
            return "loss"

    def main():
        pass

    toolkit = {
        "joeynmt": {},
        "joeynmt.training": {"TrainManager": TrainManager},
        "joeynmt.prediction": {"search": lambda **kw: kw},
        "joeynmt.__main__": {"main": main},
    }
    mods = _modules(monkeypatch, toolkit)
    monkeypatch.setattr(sys, "argv", [])
    config = dump_yaml(JOEY.config(_run(tmp_path, decode_max_len=9)), tmp_path / "d.yaml")
    recorder = StepRecorder()
    args = [str(config), "--output-path", "o"]
    assert JOEY.enter("test", args, recorder) is main
    assert sys.argv == ["joeynmt", "test", *args]
    assert TrainManager()._train_step(types.SimpleNamespace(ntokens=7)) == "loss"
    assert recorder.tokens == 7
    assert mods["joeynmt.prediction"].search() == {"min_output_length": 9}


def test_opennmt_enter_counts_real_target_tokens_in_training(monkeypatch):
    import torch

    class Trainer:
        train_loss = types.SimpleNamespace(padding_idx=1)

        def _gradient_accumulation(self, true_batches, *rest):
            return len(rest)

    def train():
        pass

    def translate():
        pass

    toolkit = {
        "onmt": {},
        "onmt.trainer": {"Trainer": Trainer},
        "onmt.bin": {},
        "onmt.bin.train": {"main": train},
        "onmt.bin.translate": {"main": translate},
    }
    _modules(monkeypatch, toolkit)
    monkeypatch.setattr(sys, "argv", [])
    recorder = StepRecorder()
    assert ONMT.enter("translate", ["-model", "m.pt"], recorder) is translate
    assert sys.argv == ["onmt_translate", "-model", "m.pt"]
    assert ONMT.enter("train", ["-config", "c.yaml"], recorder) is train
    # (batch, length, features); BOS first, pad=1: 3 real tokens + 2 in the second sentence
    tgt = torch.tensor([[[2], [5], [6], [3], [1]], [[2], [7], [3], [1], [1]]])
    assert Trainer()._gradient_accumulation([{"tgt": tgt}], 0, 1) == 2
    assert recorder.tokens == 5


@pytest.mark.slow
def test_run_peer_end_to_end_with_a_stand_in_peer(peer_workdir, tmp_path):
    """The whole path a real peer takes: calibration, the runner in a subprocess (with this
    interpreter standing in for the peer's venv), step records, log parsing, decode counting."""
    work, _ = peer_workdir
    result = harness.run_peer(
        FakePeer(), "rnn", workdir=work, venv_dir=Path(sys.executable).parents[1], steps=2,
        warmup_steps=1, batch_target_tokens=50, decode_beam=1, decode_max_len=6,
        decode_limit=5, threads=1, timeout_s=300,
    )  # fmt: skip
    assert (result["toolkit"], result["total_steps"], result["threads"]) == ("fake", 3, 1)
    assert result["params"] == result["params_logged"] == 15
    # every step carries batch_size rows: the tokens the runner counted per step
    assert result["real_tgt_tokens_per_batch"] == result["batch_size_configured"]
    assert result["train_tokens_per_s"] > 0
    assert result["train_tokens_per_s_logged"] == pytest.approx(2 / (1 / 200 + 1 / 300), abs=0.1)
    assert result["decode_greedy_sentences"] == 5
    assert result["decode_greedy_output_tokens"] == result["decode_greedy_expected_tokens"] == 30
    assert result["decode_greedy_seconds"] == 0.5
    assert "benchmarks/peers/runner.py tests.bench.fake_peer train" in result["train_command"]
    assert "top-level joeynmt: None" in Path(result["train_log"]).read_text()


# --------------------------------------------------------------------------- real peers


@pytest.mark.slow
@pytest.mark.parametrize(
    "toolkit,family",
    [
        ("joeynmt", "rnn"),
        ("joeynmt", "transformer"),
        ("opennmt", "rnn"),
        ("opennmt", "transformer"),
    ],
)
def test_run_peer_few_steps(peer_workdir, toolkit, family):
    venv = PEER_VENVS[toolkit]
    if not (venv / "bin" / "python").exists():
        pytest.skip(f"{venv} missing: run `make bench-peers`")
    work, _ = peer_workdir
    result = harness.run_peer(
        toolkit, family, workdir=work, venv_dir=venv, steps=3, warmup_steps=2,
        batch_target_tokens=300, decode_beam=(1, 5), decode_max_len=6, decode_limit=8,
        timeout_s=900,
    )  # fmt: skip
    assert result["total_steps"] == 5 and result["threads"] == 2
    for key in (
        "params",
        "train_tokens_per_s",
        "real_tgt_tokens_per_batch",
        "train_wall_s",
        "decode_greedy_tokens_per_s",
        "decode_greedy_sentences_per_s",
        "decode_beam5_tokens_per_s",
        "decode_beam5_sentences_per_s",
    ):
        assert result[key] > 0, key
    assert result["params"] == result["params_logged"]
    for key in ("greedy", "beam5"):
        assert result[f"decode_{key}_sentences"] == 8
        # the output length is fixed: min_length = max_length
        assert result[f"decode_{key}_output_tokens"] == result[f"decode_{key}_expected_tokens"]
    assert "benchmarks/peers/runner.py" in result["train_command"]
