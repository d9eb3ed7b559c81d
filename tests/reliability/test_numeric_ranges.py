"""Every numeric option's range is checked at start-up: one line, exit 1, nothing created,
before any data or model work. NaN and infinity are refused wherever a number is read."""

from __future__ import annotations

import math

import pytest
from omegaconf import DictConfig, ListConfig, OmegaConf

from seq2seq.composition import compose
from seq2seq.errors import ConfigError
from seq2seq.validation import check_evaluate_config, check_train_config
from tests.cli.runner import assert_one_error_line, run_main

TRAIN_CASES = [
    (["trainer.min_delta=nan"], "trainer.min_delta must be a finite number, got nan"),
    (["trainer.max_time=inf"], "trainer.max_time must be a finite number, got inf"),
    (["trainer.seed=-1"], "trainer.seed must be >= 0, got -1"),
    (["trainer.keep_last=-1"], "trainer.keep_last must be >= 0, got -1"),
    (["decode.alpha=nan"], "decode.alpha must be a finite number, got nan"),
    (["decode.max_len_ratio=inf"], "decode.max_len_ratio must be a finite number, got inf"),
    (["optim.lr=inf"], "optim.lr must be a finite number, got inf"),
    (["optim.weight_decay=-0.1"], "optim.weight_decay must be >= 0, got -0.1"),
    (["optim.min_lr=nan"], "optim.min_lr must be a finite number, got nan"),
    (
        ["optim=adam", "optim.lr=0.001", "optim.min_lr=1.0"],  # a floor above the lr
        "optim.min_lr must be <= optim.lr=0.001, got 1.0",
    ),
    (["optim.decay_steps=0"], "optim.decay_steps must be >= 1, got 0"),
    (["optim.plateau_factor=1.5"], "optim.plateau_factor must be in (0, 1), got 1.5"),
    (["optim.plateau_patience=-1"], "optim.plateau_patience must be >= 0, got -1"),
    (["optim.clip_grad_norm=nan"], "optim.clip_grad_norm must be a finite number, got nan"),
    (["alignment.plot_first=-1"], "alignment.plot_first must be >= 0, got -1"),
    (["data.carve.seed=-1"], "data.carve.seed must be >= 0, got -1"),
    (
        ["attention=content", "attention.init_sharpness=0"],
        "attention.init_sharpness must be a finite number > 0, got 0.0",
    ),
    (
        ["model=transformer", "model.num_layers=2", "model.alignment_layer=2"],
        "model.alignment_layer must be in [-2, 2) (the decoder's layers, negative from the "
        "end), got 2",
    ),
    (
        ["model=transformer", "model.heads=4", "model.alignment_head=4"],
        "model.alignment_head must be null (the mean of the heads) or in [0, 4), got 4",
    ),
]


@pytest.mark.parametrize(("overrides", "line"), TRAIN_CASES, ids=[c[0][-1] for c in TRAIN_CASES])
def test_train_refuses_an_out_of_range_number_at_start_up(
    overrides, line, tmp_path, capfd, monkeypatch
):
    run_dir = tmp_path / "run"
    result = run_main("train", [*overrides, f"hydra.run.dir={run_dir}"], capfd, monkeypatch)
    assert_one_error_line(result, line)
    assert not run_dir.exists()


def test_noam_has_no_floor_so_any_min_lr_is_accepted():
    """optim.min_lr floors the constant, plateau and cosine schedules only: under noam an lr below
    it is no contradiction (a tiny lr on purpose stays tiny)."""
    check_train_config(compose(["optim=noam", "optim.lr=1e-12"]))
    with pytest.raises(ConfigError, match="optim.min_lr must be <= optim.lr=1e-12"):
        check_train_config(compose(["optim=adam", "optim.lr=1e-12"]))


def test_evaluate_refuses_an_infinite_length_penalty(tmp_path, capfd, monkeypatch):
    result = run_main("evaluate", [f"run_dir={tmp_path}", "decode.alpha=inf"], capfd, monkeypatch)
    assert_one_error_line(result, "decode.alpha must be a finite number, got inf")


def _float_keys(node: DictConfig, prefix: str = "") -> list[str]:
    keys = []
    for key in node.keys():
        if key == "hydra":
            continue
        full = f"{prefix}.{key}" if prefix else str(key)
        child = node._get_node(key)
        if isinstance(child, ListConfig):
            continue
        if isinstance(child, DictConfig):
            keys += _float_keys(node[key], full)
        elif "float" in str(child._metadata.ref_type):
            keys.append(full)
    return keys


GROUPS = [[], ["model=transformer"], ["attention=content"], ["attention=local"], ["optim=noam"]]


def _refused_everywhere(base: DictConfig, check, bad: float) -> list[str]:
    """The float options of ``base`` that ``check`` accepts at ``bad``, each set alone in the
    composed config and put back after its check (TRAIN_CASES pass nan and inf through the
    command line; a compose per option took most of this test's time)."""
    accepted = []
    for key in _float_keys(base):
        good = OmegaConf.select(base, key)
        OmegaConf.update(base, key, bad)
        try:
            check(base)
        except ConfigError as err:
            assert key in str(err), (key, str(err))
        else:
            accepted.append(key)
        OmegaConf.update(base, key, good)
    return accepted


@pytest.mark.parametrize("groups", GROUPS, ids=lambda g: " ".join(g) or "defaults")
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_every_float_option_of_training_refuses_nan_and_infinity(groups, bad):
    base = compose(groups)
    assert {"optim.lr", "trainer.min_delta"} <= set(_float_keys(base))
    assert _refused_everywhere(base, check_train_config, bad) == []


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_every_float_option_of_evaluate_refuses_nan_and_infinity(bad):
    base = compose(["run_dir=x"], "evaluate")
    assert "decode.alpha" in _float_keys(base)
    assert _refused_everywhere(base, check_evaluate_config, bad) == []
