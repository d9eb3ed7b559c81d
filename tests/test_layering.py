"""The layering of DESIGN.md, enforced: what each part of the package may import.

Two checks: a static one over every ``import`` statement of the package (lazy imports inside
functions included), and a dynamic one that imports a part in a fresh interpreter and looks at
``sys.modules``.
"""

from __future__ import annotations

import ast
import graphlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "seq2seq"

# part -> parts it must never import (DESIGN.md, "Layering")
FORBIDDEN = {
    "evaluation": {"training", "cli"},
    "decoding": {"training", "cli", "evaluation", "data"},
    "models": {"data", "training", "evaluation", "decoding", "cli"},
    "modules": {"models", "data", "training", "evaluation", "decoding", "cli"},
    "data": {"models", "training", "evaluation", "decoding", "cli"},
    "training": {"cli"},
    "export": {"training", "cli"},  # a run loads through evaluation/, like seq2seq-evaluate
    # run directories -> a report: BLEU and alignment files from evaluation/, variant labels from
    # the attention and model registries; the test references come from the run directories,
    # not the corpus
    "compare": {"data", "training", "models", "decoding", "export", "bench", "cli"},
}
MODELS_CONTRACT = {"seq2seq.models", "seq2seq.models.base"} | {
    f"seq2seq.models.base.{name}" for name in ("Seq2Seq", "RowOrder", "StepOutput", "DecodingState")
}  # decoding/ runs on any model through models/base.py alone
# the model registry, which loads no model when imported: compare/ and the neutral modules read
# it as they read the attention registry (a family's label, schema, range checks)
MODEL_REGISTRY = "seq2seq.models.registry"
NEUTRAL = {
    "config",
    "errors",
    "runtime",
    "checkpoint",
    "validation",
    "provenance",
    "interrupts",
    "composition",
    "staging",
}  # below every part


def _part(module: str) -> str | None:
    """``seq2seq.evaluation.run`` -> ``evaluation``; None outside the package."""
    parts = module.split(".")
    if parts[0] != "seq2seq" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[str]:
    """Absolute names of the seq2seq modules ``path`` imports (relative imports resolved)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names.append(target)
            names += [f"{target}.{alias.name}" for alias in node.names]  # from . import cli
    return [n for n in names if n.startswith("seq2seq")]


def _violations() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = _part(".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts))
        for name in _imports(path):
            there = _part(name)
            if there is None or there == here:
                continue
            if name.startswith(MODEL_REGISTRY) or name == "seq2seq.models":
                continue  # any part may read the registry (models/__init__.py is empty)
            if there == "cli" and here != "cli":
                found.append(
                    f"{path.relative_to(PACKAGE.parent)} imports {name} (nothing imports cli)"
                )
            elif there in FORBIDDEN.get(here, set()):
                found.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
            elif here == "decoding" and there == "models" and name not in MODELS_CONTRACT:
                found.append(
                    f"{path.relative_to(PACKAGE.parent)} imports {name} (only models.base)"
                )
    return found


def test_no_module_imports_a_layer_it_must_not():
    assert _violations() == []


def test_the_static_check_sees_relative_and_lazy_imports(tmp_path, monkeypatch):
    """The checker itself: a lazy relative import of training from evaluation is caught."""
    fake = tmp_path / "seq2seq"
    (fake / "evaluation").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "evaluation" / "__init__.py").write_text("")
    (fake / "evaluation" / "bad.py").write_text(
        "def f():\n    from ..training.loop import fit\n    from .. import cli\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    found = _violations()
    assert "seq2seq/evaluation/bad.py imports seq2seq.training.loop" in found
    assert any("seq2seq.cli" in line and "nothing imports cli" in line for line in found)
    (fake / "decoding").mkdir()
    (fake / "decoding" / "bad.py").write_text("from ..models.rnn import RNNSeq2Seq\n")
    assert "seq2seq/decoding/bad.py imports seq2seq.models.rnn (only models.base)" in _violations()


def _module_graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports (lazy imports included; ``from pkg import
    name`` counts as importing ``pkg.name`` when that is a module, else ``pkg``)."""
    paths = {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(
            ".__init__"
        ): path
        for path in PACKAGE.rglob("*.py")
    }
    return {
        module: {name if name in paths else name.rpartition(".")[0] for name in _imports(path)}
        & set(paths) - {module}
        for module, path in paths.items()
    }


def test_no_import_circle():
    """No two modules of the package import each other, directly or through others."""
    try:
        graphlib.TopologicalSorter(_module_graph()).prepare()
    except graphlib.CycleError as err:
        pytest.fail(f"import circle: {' -> '.join(err.args[1])}")


def test_the_circle_check_sees_a_circle(tmp_path, monkeypatch):
    """The checker itself: two modules that import each other lazily are a circle."""
    fake = tmp_path / "seq2seq"
    (fake / "evaluation").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "evaluation" / "__init__.py").write_text("")
    (fake / "evaluation" / "a.py").write_text("def f():\n    from .b import g\n")
    (fake / "evaluation" / "b.py").write_text("from .a import f\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    graph = _module_graph()
    assert graph["seq2seq.evaluation.a"] == {"seq2seq.evaluation.b"}
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter(graph).prepare()


def _loaded_after_import(module: str) -> list[str]:
    code = (
        f"import json, sys; import importlib; importlib.import_module({module!r}); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('seq2seq'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("module", "never"),
    [
        ("seq2seq.evaluation.evaluate", ("seq2seq.training", "seq2seq.cli")),
        ("seq2seq.evaluation.run", ("seq2seq.training", "seq2seq.cli")),
        ("seq2seq.decoding", ("seq2seq.training", "seq2seq.cli", "seq2seq.evaluation")),
        ("seq2seq.models.builders", ("seq2seq.data", "seq2seq.training")),
        ("seq2seq.training", ("seq2seq.training.loop", "seq2seq.data", "seq2seq.cli")),
        ("seq2seq.checkpoint", ("seq2seq.training", "seq2seq.models")),
        ("seq2seq.export.ctranslate2", ("seq2seq.training", "seq2seq.cli")),
        ("seq2seq.compare", ("seq2seq.data", "seq2seq.training", "seq2seq.models", "seq2seq.cli")),
    ],
)
def test_importing_a_part_loads_nothing_it_must_not(module, never):
    """The model registry and its package may be loaded: they load no model until asked
    about a family."""
    loaded = set(_loaded_after_import(module)) - {"seq2seq.models", MODEL_REGISTRY}
    assert not [m for m in loaded if m.startswith(never)], sorted(loaded)


def test_neutral_modules_import_no_part():
    """Neutral modules import each other, the model registry and, for config.py, the attention
    registry (whose schemas it registers; modules/ itself imports nothing of the package)."""
    for name in NEUTRAL:
        path = PACKAGE / f"{name}.py"
        names = [n for n in _imports(path) if not n.startswith(MODEL_REGISTRY)]
        parts = {_part(n) for n in names if n != "seq2seq.models"} - NEUTRAL - {None, "modules"}
        assert parts == set(), f"seq2seq/{name}.py imports {parts}"


def test_importing_the_model_registry_loads_no_model():
    loaded = _loaded_after_import(MODEL_REGISTRY)
    assert [m for m in loaded if m.startswith("seq2seq.models")] == [
        "seq2seq.models",
        MODEL_REGISTRY,
    ], loaded
