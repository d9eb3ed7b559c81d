"""The attention registry: one registration per variant, with its schema and presets."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

import seq2seq.modules.attention as attention_package
from seq2seq.modules.attention import (
    ATTENTIONS,
    Attention,
    AttentionConfig,
    attention_schemas,
    preset_model_options,
    preset_options,
    presets,
    register_attention,
    unregister_attention,
)
from seq2seq.modules.attention.additive import AdditiveAttention


@dataclass
class ScratchAttentionConfig(AttentionConfig):
    name: str = "scratch"
    size: int = 3


@pytest.fixture
def scratch_name():
    """Registers nothing itself; forgets 'scratch' afterwards whatever the test did."""
    yield "scratch"
    unregister_attention("scratch")
    assert "scratch" not in ATTENTIONS


def test_register_records_class_schema_and_presets(scratch_name):
    before = dict(ATTENTIONS)

    @register_attention(scratch_name, schema=ScratchAttentionConfig)
    class ScratchAttention(Attention):
        pass

    assert ATTENTIONS[scratch_name] is ScratchAttention
    assert ScratchAttention.name == "scratch" and ScratchAttention.schema is ScratchAttentionConfig
    assert ScratchAttention.presets == {"scratch": {}}  # default: one preset, the defaults
    assert attention_schemas()["scratch"] is ScratchAttentionConfig
    assert presets()["scratch"] == ["attention=scratch"]
    unregister_attention(scratch_name)
    assert ATTENTIONS == before


def test_presets_become_overrides(scratch_name):
    @register_attention(
        scratch_name, schema=ScratchAttentionConfig, presets={"scratch_5": {"size": 5}}
    )
    class ScratchAttention(Attention):
        pass

    assert preset_options()["scratch_5"] == {"name": "scratch", "size": 5}
    assert presets()["scratch_5"] == ["attention=scratch", "attention.size=5"]
    assert "scratch" not in presets()
    assert presets()["local_m"] == ["attention=local", "attention.mode=monotonic"]


def test_a_preset_may_carry_model_options(scratch_name):
    """``model.<key>`` entries of a preset are the model options it needs: apart from the
    attention options, and last in its overrides."""

    @register_attention(
        scratch_name,
        schema=ScratchAttentionConfig,
        presets={"scratch_wide": {"size": 5, "model.split_directions": True}},
    )
    class ScratchAttention(Attention):
        pass

    assert preset_options()["scratch_wide"] == {"name": "scratch", "size": 5}
    assert preset_model_options()["scratch_wide"] == {"split_directions": True}
    assert presets()["scratch_wide"] == [
        "attention=scratch",
        "attention.size=5",
        "model.split_directions=true",
    ]
    assert preset_model_options()["local_m"] == {}
    assert presets()["dot"] == [
        "attention=multiplicative",
        "attention.score=dot",
        "model.split_directions=true",
    ]


def test_bad_registrations_are_refused(scratch_name):
    with pytest.raises(ValueError, match="'additive' is already registered"):
        register_attention("additive", schema=ScratchAttentionConfig)(type("X", (Attention,), {}))
    with pytest.raises(ValueError, match="ScratchAttentionConfig.name defaults to 'scratch'"):
        register_attention("other", schema=ScratchAttentionConfig)(type("Y", (Attention,), {}))
    with pytest.raises(TypeError, match="AttentionConfig dataclass"):
        register_attention(scratch_name, schema=dict)(type("Z", (Attention,), {}))
    with pytest.raises(ValueError, match=r"unknown option\(s\) sise; valid: input_feeding"):
        register_attention(scratch_name, schema=ScratchAttentionConfig, presets={"s": {"sise": 1}})(
            type("Z", (Attention,), {})
        )
    with pytest.raises(ValueError, match="preset 'dot' of attention 'scratch' is 'multiplicative'"):
        register_attention(scratch_name, schema=ScratchAttentionConfig, presets={"dot": {}})(
            type("Z", (Attention,), {})
        )
    assert "scratch" not in ATTENTIONS
    assert ATTENTIONS["additive"] is AdditiveAttention


def test_the_attention_package_imports_nothing_above_it():
    """modules/attention knows nothing of models/, training/, data/, evaluation/, cli/ (nor of
    seq2seq.config, which imports it): only its own modules, torch, omegaconf and the stdlib."""
    files = sorted(Path(attention_package.__file__).parent.glob("*.py"))
    assert len(files) >= len(ATTENTIONS)
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{path.name}: from {'.' * node.level}{node.module}"
                names = [node.module or ""] if node.level == 0 else []
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith("seq2seq"), f"{path.name} imports {name}"
