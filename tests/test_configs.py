"""The config tree: every YAML of every group composes with the primary config (and builds a
model where it chooses one); the attention and model registries, their schemas, the options
they generate and Hydra's ConfigStore agree one-to-one; and a new attention variant or a new
model family needs only its own file (a toy one, in a copy of the package and configs)."""

from __future__ import annotations

import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from seq2seq import compare, config, validation
from seq2seq.composition import CONFIG_DIR, compose
from seq2seq.config import register_configs, variant_presets
from seq2seq.decoding import quantize
from seq2seq.models import rnn
from seq2seq.models.builders import build_model
from seq2seq.models.registry import model_class, model_family, model_schemas
from seq2seq.modules.attention import (
    ATTENTIONS,
    attention_class,
    preset_model_options,
    preset_options,
)
from seq2seq.validation import check_evaluate_config, check_train_config
from tests.conftest import tiny_overrides
from tests.reliability.reliability_tools import write_corpus

REPO = Path(__file__).resolve().parent.parent
V = 13
GROUPS = sorted({p.name for p in CONFIG_DIR.iterdir() if p.is_dir()} | {"attention", "model"})
# (group, option): every YAML file of every group, and the generated model, attention and
# variant options
OPTIONS = sorted(
    {(p.parent.name, p.stem) for p in CONFIG_DIR.glob("*/*.yaml")}
    | {("model", name) for name in model_schemas()}
    | {("attention", name) for name in ATTENTIONS}
    | {("variant", preset) for preset in preset_options()}
)
BUILDS_A_MODEL = ("model", "attention", "variant")
TINY_SIZES = {
    "rnn": {"emb_size": 8, "hidden_size": 12, "dropout": 0.0},
    "transformer": {"d_model": 16, "heads": 2, "ff_size": 32, "num_layers": 1, "dropout": 0.0},
}


def compose_cfg(*overrides: str, config_name: str = "train", hydra_config: bool = False):
    return compose(overrides, config_name, return_hydra_config=hydra_config)


def forward_tiny(model) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    src = torch.randint(4, V, (2, 5), generator=gen)
    src_mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    tgt_in = torch.randint(4, V, (2, 4), generator=gen)
    out = model(src, src_mask, tgt_in, torch.ones(2, 4, dtype=torch.bool), need_attn=True)
    assert out.logits.shape == (2, 4, V) and torch.isfinite(out.logits).all()
    return out.logits


def test_every_group_has_options():
    assert set(GROUPS) >= {"attention", "data", "model", "optim", "trainer", "decode", "variant"}
    for group in GROUPS:
        assert any(g == group for g, _ in OPTIONS), group


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_checks_and_builds(group, option):
    cfg = compose_cfg(f"{group}={option}")
    check_train_config(cfg)  # every shipped option passes the start-up checks as it is
    if group == "attention":
        assert cfg.attention.name == option
    if group not in BUILDS_A_MODEL:
        return
    for key, value in TINY_SIZES[cfg.model.name].items():
        cfg.model[key] = value
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.attention, src_vocab_size=V, tgt_vocab_size=V)
    forward_tiny(model)


def test_evaluate_config_composes():
    cfg = compose_cfg("run_dir=some/run", config_name="evaluate")
    check_evaluate_config(cfg)
    assert cfg.run_dir == "some/run" and cfg.checkpoint == "best"


def sweep_of(cfg) -> list[str]:
    """The values Hydra's basic sweeper runs for ``cfg``'s ``variant`` sweep (glob included)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.core.override_parser.overrides_parser import OverridesParser

    loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(CONFIG_DIR)))
    params = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
    (override,) = OverridesParser.create(config_loader=loader).parse_overrides(params)
    assert override.get_key_element() == "variant"
    return list(override.sweep_string_iterator())


def test_compare_attention_sweeps_every_preset_and_the_transformer():
    cfg = compose_cfg("experiment=compare_attention", hydra_config=True)
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN"
    assert sorted(sweep_of(cfg)) == sorted([*preset_options(), "transformer"])


def test_registry_schemas_options_and_configstore_agree():
    register_configs()
    names = set(ATTENTIONS)
    # the attention group is generated: no YAML file, one ConfigStore option per class
    assert not (CONFIG_DIR / "attention").exists()
    store = ConfigStore.instance().repo
    assert set(store["schema"]["attention"]) == {f"{name}.yaml" for name in names}
    assert set(store["attention"]) == {f"{name}.yaml" for name in names}
    for name, cls in ATTENTIONS.items():
        assert cls.name == name and cls.schema.name == name
        assert OmegaConf.get_type(store["attention"][f"{name}.yaml"].node) is cls.schema
        stored = store["schema"]["attention"][f"{name}.yaml"].node
        assert OmegaConf.get_type(stored) is cls.schema
        cfg = compose_cfg(f"attention={name}")
        assert OmegaConf.get_type(cfg.attention) is cls.schema and cfg.attention.name == name
    # variant presets: generated from the registry, each exactly its options on an RNN; the
    # files in configs/variant/ are the other choices (the Transformer), never a preset
    files = {p.stem for p in (CONFIG_DIR / "variant").glob("*.yaml")}
    assert files == {"transformer"}
    assert set(store["variant"]) == {f"{preset}.yaml" for preset in variant_presets()}
    model_options = preset_model_options()
    for preset, options in preset_options().items():
        cfg = compose_cfg(f"variant={preset}")
        assert cfg.model.name == "rnn"
        composed = OmegaConf.to_container(cfg.attention, enum_to_str=True)
        assert {k: composed[k] for k in options} == options, preset
        model = OmegaConf.to_container(cfg.model, enum_to_str=True)
        assert {k: model[k] for k in model_options[preset]} == model_options[preset], preset
    # the presets of scores with no parameter between decoder and encoder states carry the
    # model option that makes the widths match; the others leave the model as it is
    assert model_options["dot"] == model_options["scaled_dot"] == {"split_directions": True}
    assert all(not model_options[p] for p in model_options if p not in ("dot", "scaled_dot"))
    assert compose_cfg("variant=general").model.split_directions is False


def test_model_registry_schemas_options_and_configstore_agree():
    """The model group is generated like the attention group: no YAML file, one ConfigStore
    option per registered family, whose node is the family's schema."""
    register_configs()
    assert not (CONFIG_DIR / "model").exists()
    store = ConfigStore.instance().repo
    families = model_schemas()
    assert set(families) >= {"rnn", "transformer"}
    assert set(store["model"]) == set(store["schema"]["model"]) == {f"{n}.yaml" for n in families}
    for name, schema in families.items():
        assert model_class(name).name == name and model_class(name).schema is schema
        assert OmegaConf.get_type(store["model"][f"{name}.yaml"].node) is schema
        cfg = compose_cfg(f"model={name}")
        assert OmegaConf.get_type(cfg.model) is schema and cfg.model.name == name
    assert model_family("bogus") is None
    with pytest.raises(ValueError, match="unknown model family 'bogus'; valid: rnn, transformer"):
        build_model({"name": "bogus"}, {}, src_vocab_size=V, tgt_vocab_size=V)


FAMILY_BRANCH = re.compile(
    r"""(==|!=)\s*["'](rnn|transformer)["']|["'](rnn|transformer)["']\s*(==|!=)"""
)


def test_code_outside_the_families_branches_on_no_family():
    """No module but a family's own file compares a model name with a family's: they ask the
    registry (the class's own_attention, check_options, label, build)."""
    own = {REPO / "seq2seq/models/rnn.py", REPO / "seq2seq/models/transformer.py"}
    found = [
        f"{path.relative_to(REPO)}:{n}: {line.strip()}"
        for path in sorted((REPO / "seq2seq").rglob("*.py"))
        if path not in own
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if FAMILY_BRANCH.search(line)
    ]
    assert found == []
    assert FAMILY_BRANCH.search('if model.get("name") == "transformer":')  # the check sees one


def test_dot_presets_have_no_parameter_between_query_and_keys():
    for preset in ("dot", "scaled_dot"):
        cfg = compose_cfg(f"variant={preset}", "model.hidden_size=12", "model.emb_size=8")
        check_train_config(cfg)
        model = build_model(cfg.model, cfg.attention, src_vocab_size=V, tgt_vocab_size=V)
        assert model.encoder.output_size == 12 == model.attention.key_size
        assert list(model.attention.parameters()) == []
        assert not any("memory_proj" in name for name, _ in model.named_parameters())


def test_code_outside_the_variants_names_no_variant():
    """config.py, the validation and label functions, quantization and the RNN's constructor
    arguments (where its attention is built) read the registry; none spells a variant's name or
    class."""
    sources = {  # where -> (source, also check the quoted names: a message may say 'none')
        "config": (inspect.getsource(config), True),
        "validation._check_attention": (inspect.getsource(validation._check_attention), True),
        "compare.variant_label": (inspect.getsource(compare.variant_label), True),
        "quantize": (inspect.getsource(quantize), False),
        "rnn.RNNSeq2Seq.init_arguments": (inspect.getsource(rnn.RNNSeq2Seq.init_arguments), True),
    }
    for where, (source, quoted) in sources.items():
        for name, cls in ATTENTIONS.items():
            spellings = [cls.__name__, cls.schema.__name__]
            spellings += [f'"{name}"', f"'{name}'"] if quoted else []
            for spelling in spellings:
                assert spelling not in source, f"{where} names {spelling}"


# --------------------------------------------------------------------------- a new variant

TOY_CLASS = '''
"""A toy variant for tests: e_ts = (W q_t) . h_s / temperature, reading W directly."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch.nn.functional as F
from torch import Tensor, nn

from .base import Attention, AttentionConfig, AttentionState
from .registry import register_attention


@dataclass
class ToyAttentionConfig(AttentionConfig):
    name: str = "toy"
    temperature: float = 1.0


@register_attention("toy", schema=ToyAttentionConfig)
class ToyAttention(Attention):
    paper_wiring: ClassVar[str] = "bahdanau"
    reads_linear_weights: ClassVar[bool] = True  # score() reads proj.weight

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> list[str]:
        value = options.get("temperature")
        return [] if value is None or value > 0 else [f"attention.temperature must be > 0, got {value}"]

    @classmethod
    def label(cls, options: Mapping[str, Any]) -> str:
        return f"toy/{options.get('temperature')}"

    def __init__(self, *, query_size: int, key_size: int, temperature: float = 1.0) -> None:
        super().__init__(query_size=query_size, key_size=key_size)
        self.temperature = temperature
        self.proj = nn.Linear(query_size, key_size, bias=False)

    def score(self, query: Tensor, keys_p: Tensor, state: AttentionState) -> Tensor:
        return F.linear(query, self.proj.weight) @ keys_p.transpose(1, 2) / self.temperature
'''

TOY_CHECK = """
import sys
from pathlib import Path

import torch
from torch import nn

import seq2seq
from seq2seq.cli.precheck import precheck_train_argv
from seq2seq.composition import compose
from seq2seq.compare import variant_label
from seq2seq.config import to_container
from seq2seq.errors import ConfigError
from seq2seq.models.builders import build_model
from seq2seq.decoding.quantize import int8_engine, quantize_int8
from seq2seq.modules.attention import ATTENTIONS, presets
from seq2seq.validation import check_train_config

root = Path(sys.argv[1])
assert Path(seq2seq.__file__).resolve().is_relative_to(root), seq2seq.__file__
assert "toy" in ATTENTIONS and presets()["toy"] == ["attention=toy"]
V = 11


def compose_train(*overrides):
    return compose(["model.emb_size=8", "model.hidden_size=12", *overrides])


cfg = compose_train("attention=toy", "attention.temperature=2.0")
check_train_config(cfg)
try:
    check_train_config(compose_train("attention=toy", "attention.temperature=0"))
    raise AssertionError("temperature=0 passed the checks")
except ConfigError as err:
    assert str(err) == "attention.temperature must be > 0, got 0.0", err
try:
    precheck_train_argv(["attention=toy", "attention.temperature=-1"])
    raise AssertionError("the command line pre-check let temperature=-1 through")
except ConfigError as err:
    assert str(err) == "attention.temperature must be > 0, got -1.0", err
assert compose_train("variant=toy").attention.name == "toy"  # its generated preset

torch.manual_seed(0)
model = build_model(cfg.model, cfg.attention, src_vocab_size=V, tgt_vocab_size=V).eval()
assert model.wiring == "bahdanau" and type(model.attention).__name__ == "ToyAttention"
src = torch.randint(4, V, (2, 5))
src_mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
tgt_in = torch.randint(4, V, (2, 4))
out = model(src, src_mask, tgt_in, torch.ones(2, 4, dtype=torch.bool), need_attn=True)
assert out.logits.shape == (2, 4, V) and out.attn_weights.shape == (2, 4, 5)
assert (out.attn_weights[1, :, 3:] == 0).all()



def saved(cfg):  # what a run directory keeps of its model choice
    return {"model": to_container(cfg.model), "attention": to_container(cfg.attention)}


assert variant_label(saved(cfg)) == "toy/2.0"
assert variant_label(saved(compose_train("attention=toy", "attention.wiring=luong"))) == (
    "toy/1.0 (luong)"
)

if int8_engine() is not None:
    quantized = quantize_int8(model)
    assert type(quantized.attention.proj) is nn.Linear  # reads_linear_weights: kept float
    assert any("quantized" in type(m).__module__ for m in quantized.modules())
    with torch.no_grad():
        step = quantized.decode_step(src[:, 0], quantized.encode(src, src_mask), 0, need_attn=True)
    assert step.log_probs.shape == (2, V) and torch.isfinite(step.log_probs).all()
print("toy variant OK")
"""


def copy_tree(dest: Path) -> None:
    """The package and the config tree, unchanged (seq2seq/configs stays a link to configs/)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "seq2seq", dest / "seq2seq", symlinks=True, ignore=ignore)
    shutil.copytree(CONFIG_DIR, dest / "configs", ignore=ignore)


def tree_files(root: Path) -> dict[str, bytes]:
    """relative path -> content of every file under root/seq2seq and root/configs (links not
    followed, caches left out)."""
    files = {}
    for base in ("seq2seq", "configs"):
        for folder, dirs, names in os.walk(root / base):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in names:
                path = Path(folder) / name
                if not path.is_symlink() and path.suffix != ".pyc":
                    files[str(path.relative_to(root))] = path.read_bytes()
    return files


def run_with_one_new_file(root: Path, path: str, source: str, check: str, *args: str) -> str:
    """Copy the package and configs to ``root``, add ``path`` (``source``) and nothing else,
    and run the script ``check`` there with ``root`` and ``args`` in its own process (so this
    process's registries never hold what the file registers); its stdout."""
    copy_tree(root)
    before = tree_files(root)
    (root / path).write_text(textwrap.dedent(source))
    after = tree_files(root)
    assert set(after) - set(before) == {path}
    assert {k: after[k] for k in before} == before  # nothing else changed
    assert before == tree_files(REPO)  # the copy is the project's package and configs
    script = root / "check.py"
    script.write_text(check)
    env = os.environ | {"PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, str(script), str(root), *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_new_variant_needs_only_a_class_file(tmp_path):
    """One new file in a copy of the package and configs, nothing edited: the toy variant
    composes (attention=toy, variant=toy), is range-checked, builds, runs, gets its comparison
    label and is quantized with its Linear kept float."""
    out = run_with_one_new_file(tmp_path, "seq2seq/modules/attention/toy.py", TOY_CLASS, TOY_CHECK)
    assert "toy variant OK" in out
    assert "toy" not in ATTENTIONS
    with pytest.raises(ValueError, match="unknown attention 'toy'"):
        attention_class("toy")


# --------------------------------------------------------------------------- a new model family

TOY_FAMILY = '''
"""A toy model family for tests: the previous target token's embedding plus the mean of the
source embeddings, then the output layer (no attention: the source mean is its own)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from .base import RowOrder, Seq2Seq, Seq2SeqOutput, StepOutput, at_least
from .registry import register_model


@dataclass
class ToyModelConfig:
    name: str = "toy"
    size: int = 8


@register_model("toy", schema=ToyModelConfig)
class ToySeq2Seq(Seq2Seq):
    own_attention: ClassVar[str] = "mean"

    @classmethod
    def check_options(cls, options: Mapping[str, Any], attention: Mapping[str, Any]) -> list[str]:
        return at_least(options, "size", 1)

    @classmethod
    def label(cls, options: Mapping[str, Any], attention: Mapping[str, Any]) -> str:
        return f"toy/{options.get('size')}"

    def __init__(self, *, src_vocab_size: int, tgt_vocab_size: int, size: int = 8) -> None:
        super().__init__()
        self.src_embedding = nn.Embedding(src_vocab_size, size)
        self.tgt_embedding = nn.Embedding(tgt_vocab_size, size)
        self.out = nn.Linear(size, tgt_vocab_size)

    @property
    def output_layer(self) -> nn.Linear:
        return self.out

    @property
    def has_alignment(self) -> bool:
        return False

    def encode(self, src: Tensor, src_mask: Tensor) -> Tensor:
        real = src_mask.unsqueeze(-1).float()
        return (self.src_embedding(src) * real).sum(1) / real.sum(1).clamp(min=1)

    def forward(self, src, src_mask, tgt_in, tgt_mask, *, need_attn=False, features_only=False):
        features = torch.tanh(self.tgt_embedding(tgt_in) + self.encode(src, src_mask)[:, None])
        if features_only:
            return Seq2SeqOutput(None, None, features)
        return Seq2SeqOutput(self.out(features).float(), None)

    def decode_step(self, prev_tokens, state, step, *, need_attn=False) -> StepOutput:
        features = torch.tanh(self.tgt_embedding(prev_tokens) + state)
        log_probs = torch.log_softmax(self.out(features), dim=-1, dtype=torch.float32)
        return StepOutput(log_probs, state, None)

    def reorder_state(self, state: Tensor, order: RowOrder) -> Tensor:
        return state.index_select(0, order.rows)
'''

TOY_FAMILY_CHECK = """
import json
import sys
from pathlib import Path

from omegaconf import OmegaConf

import seq2seq
from seq2seq.cli.precheck import precheck_train_argv
from seq2seq.compare import load_record
from seq2seq.composition import compose
from seq2seq.config import run_label
from seq2seq.errors import ConfigError
from seq2seq.training import train
from seq2seq.validation import check_train_config

root, overrides = Path(sys.argv[1]), json.loads(sys.argv[2])
assert Path(seq2seq.__file__).resolve().is_relative_to(root), seq2seq.__file__


def compose_train(*more):
    return compose(["model=toy", *more])


try:
    check_train_config(compose_train("model.size=0"))
    raise AssertionError("size=0 passed the checks")
except ConfigError as err:
    assert str(err) == "model.size must be >= 1, got 0", err
try:
    precheck_train_argv(["model=toy", "model.size=-1"])
    raise AssertionError("the command line pre-check let size=-1 through")
except ConfigError as err:
    assert str(err) == "model.size must be >= 1, got -1", err

run_dir = root / "run"
cfg = compose_train("model.size=6", f"run_dir={run_dir}", *overrides)
check_train_config(cfg)
assert run_label(cfg.model.name, cfg.attention.name) == "toy"  # its own attention
(run_dir / ".hydra").mkdir(parents=True)  # what Hydra saves before a job
OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")
metrics = train(cfg)
assert metrics["status"] == "finished" and metrics["steps"] == 1, metrics
assert (metrics["model"], metrics["attention"], metrics["label"]) == ("toy", "mean", "toy")
record = load_record(run_dir)
assert (record.status, record.label) == ("finished", "toy/6"), record
print("toy family OK")
"""


def test_a_new_model_family_needs_only_its_file(tmp_path, shared_cache):
    """One new file in a copy of the package and configs, nothing edited: the toy family
    composes (model=toy), is range-checked (also by the command line's pre-check), trains a
    step end to end (metrics.json names it) and gets its comparison label."""
    corpus = write_corpus(tmp_path / "corpus")
    overrides = [  # the tiny settings without the RNN's sizes, for one update
        o
        for o in tiny_overrides(shared_cache, f"data.dir={corpus}")
        if not o.startswith(("model.", "trainer.max_steps="))
    ] + ["trainer.max_steps=1"]
    copy = tmp_path / "copy"
    out = run_with_one_new_file(
        copy, "seq2seq/models/toy.py", TOY_FAMILY, TOY_FAMILY_CHECK, json.dumps(overrides)
    )
    assert "toy family OK" in out
    assert model_family("toy") is None


@pytest.mark.parametrize(
    ("overrides", "label"),
    [
        ([], "rnn_additive"),
        (["attention=local"], "rnn_local"),
        (["model=transformer"], "transformer"),
        (["model=transformer", "attention=location"], "transformer"),
    ],
)
def test_run_directories_name_what_was_trained(overrides, label):
    """The attention group configures the RNN only: a Transformer run is named `transformer`,
    never `transformer_additive`."""
    cfg = compose_cfg(*overrides, hydra_config=True)
    assert OmegaConf.select(cfg, "hydra.run.dir").endswith(f"_{label}")
    subdir = OmegaConf.to_container(cfg.hydra.sweep)["subdir"]  # ${hydra.job.num} is unset here
    assert subdir.endswith("_${run_label:${model.name},${attention.name}}")
    assert config.run_label(cfg.model.name, cfg.attention.name) == label


def test_the_converged_transformer_matches_the_rnns_parameter_count():
    """experiment=compare_converged_transformer is sized to the RNN grid (issue: a Transformer
    matched to the RNNs' parameter count): within the RNNs' own range, +-5%."""

    def n_params(*overrides: str) -> int:
        cfg = compose_cfg(*overrides)
        size = cfg.data.vocab.size
        model = build_model(cfg.model, cfg.attention, src_vocab_size=size, tgt_vocab_size=size)
        return sum(p.numel() for p in model.parameters())

    rnn_counts = [
        n_params("experiment=compare_converged", f"variant={name}")
        for name in ("none", "dot", "additive", "local_p")
    ]
    transformer = n_params("experiment=compare_converged_transformer")
    assert 0.95 * min(rnn_counts) <= transformer <= 1.05 * max(rnn_counts), (
        rnn_counts,
        transformer,
    )
    both = [
        compose_cfg(f"experiment={e}")
        for e in ("compare_converged", "compare_converged_transformer")
    ]
    assert both[0].optim == both[1].optim and both[0].trainer == both[1].trainer


@pytest.mark.parametrize("model", ["rnn", "transformer"])
def test_hardware_gpu_sizes_batches_for_a_gpu(model):
    """hardware=gpu: GPU-sized token and decode batches, bf16 on CUDA, no CPU time budget;
    an experiment or a command-line override still wins."""
    cpu = compose_cfg(f"model={model}")
    gpu = compose_cfg(f"model={model}", "hardware=gpu")
    check_train_config(gpu)
    assert gpu.data.max_tokens >= 4 * cpu.data.max_tokens
    assert gpu.decode.batch_size >= 4 * cpu.decode.batch_size
    assert (str(gpu.trainer.device.value), str(gpu.trainer.precision.value)) == ("cuda", "bf16")
    assert gpu.trainer.max_time is None and gpu.optim.warmup_steps < cpu.optim.warmup_steps
    assert compose_cfg("hardware=gpu", "data.max_tokens=8192").data.max_tokens == 8192
