"""The layering of docs/layout.md ("What may import what"), enforced: what each part of the
package may import, that no modules import each other in a circle, and that the installed
package never imports the checkout around it (benchmarks/, tests/, scripts/).

Two kinds of check: static ones over every ``import`` statement of the package (lazy imports
inside functions included), and a dynamic one that imports a part in a fresh interpreter and
looks at ``sys.modules``.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "seq2seq"
LAYOUT = PACKAGE.parent / "docs" / "layout.md"
CHECKOUT_ONLY = {"benchmarks", "tests", "scripts"}  # beside the package, never installed

# part -> the parts it may import (docs/layout.md, "What may import what"); every part may
# import the neutral modules. A part is a sub-package or a module of seq2seq/ that is not neutral.
ALLOWED = {
    "cli": "any",  # the console scripts: nothing imports cli/
    "api": {"training", "evaluation"},
    "training": {"models", "data", "evaluation", "decoding"},
    "evaluation": {"decoding", "models", "data"},
    "decoding": {"models"},  # models/base.py only (MODELS_CONTRACT)
    "models": {"modules"},
    "modules": set(),
    "data": set(),
    "export": {"evaluation", "models", "decoding", "data"},
    "compare": {"evaluation", "modules"},
    "bench": {"training", "models", "data", "decoding", "modules"},
}
MODELS_CONTRACT = {"seq2seq.models", "seq2seq.models.base"} | {
    f"seq2seq.models.base.{name}" for name in ("Seq2Seq", "RowOrder", "StepOutput", "DecodingState")
}  # decoding/ runs on any model through models/base.py alone
# the model registry: it imports nothing of the package and loads the family files only when
# asked about a family, so any part and the neutral modules may import it (config.py reads the
# schemas, validation.py the range checks, compare/ a family's label)
MODEL_REGISTRY = {"seq2seq.models", "seq2seq.models.registry"}
NEUTRAL = {
    "config",
    "decode_defaults",
    "errors",
    "runtime",
    "checkpoint",
    "validation",
    "provenance",
    "progress",
    "interrupts",
    "composition",
    "staging",
    "run_files",
}  # below every part: they import each other and modules/ (config.py reads the registry)


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
        here = _part(_module_name(path))
        allowed = ALLOWED.get(here, set())
        for name in _imports(path):
            there = _part(name)
            if there is None or there == here or there in NEUTRAL:
                continue
            if name in MODEL_REGISTRY or name.rpartition(".")[0] == "seq2seq.models.registry":
                continue
            where = path.relative_to(PACKAGE.parent)
            if there == "cli":
                found.append(f"{where} imports {name} (nothing imports cli)")
            elif here in NEUTRAL and there != "modules":
                found.append(f"{where} imports {name} (a neutral module imports no part)")
            elif here not in NEUTRAL and allowed != "any" and there not in allowed:
                found.append(f"{where} imports {name}")
            elif here == "decoding" and there == "models" and name not in MODELS_CONTRACT:
                found.append(f"{where} imports {name} (only models.base)")
    return found


def _module_name(path: Path) -> str:
    """``seq2seq/evaluation/run.py`` -> ``seq2seq.evaluation.run``; a package's
    ``__init__.py`` -> the package."""
    name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports. A name is resolved to the deepest module it
    names (``from .registry import presets`` -> ``...registry``); a module's own packages are
    left out, since Python initialises them before the module anyway (``from . import x``)."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}

    def module_of(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        targets = {module_of(name) for name in _imports(path)}
        graph[module] = {t for t in targets if t and not (module + ".").startswith(t + ".")}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each group of modules that import each other in a circle (a strongly connected
    component of ``graph``), as one circle through its first module: ``[a, b, a]``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            group = []
            while not group or group[-1] != module:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(set(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return [_circle_through(min(group), group, graph) for group in groups]


def _circle_through(start: str, group: set[str], graph: dict[str, set[str]]) -> list[str]:
    """The shortest import path from ``start`` back to itself inside ``group``."""
    paths = {start: [start]}
    queue = [start]
    for module in queue:
        for target in sorted(graph[module] & group):
            if target == start:
                return [*paths[module], start]
            if target not in paths:
                paths[target] = [*paths[module], target]
                queue.append(target)
    raise AssertionError(f"{start} lies in no circle of {sorted(group)}")


def _checkout_imports() -> list[str]:
    """Imports of the checkout around the package (``benchmarks``, ``tests``, ``scripts``),
    by an import statement or by a file location (``spec_from_file_location``)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE.parent)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr == "spec_from_file_location":
                    found.append(f"{where}:{node.lineno} imports a file by its location")
                elif node.func.attr == "import_module" and node.args:
                    arg = node.args[0]
                    names = [arg.value] if isinstance(arg, ast.Constant) else []
            found += [
                f"{where}:{node.lineno} imports {name}"
                for name in names
                if isinstance(name, str) and name.split(".")[0] in CHECKOUT_ONLY
            ]
    return found


def _documented_rules() -> dict[str, object]:
    """docs/layout.md's "What may import what" block as ``part -> allowed parts`` (or "any")."""
    text = LAYOUT.read_text(encoding="utf-8")
    block = text[text.index("What may import what") :].split("\n\n")[1]
    rules = {}
    for line in block.splitlines():
        match = re.match(r"\s{4}(\S+?)(?:/|\.py)?\s+->\s+(.*)", line)
        if not match:
            continue
        part, targets = match.groups()
        targets = re.sub(r"\([^)]*\)", "", targets).strip()
        if targets in ("any part", "nothing"):
            rules[part] = "any" if targets == "any part" else set()
        else:
            rules[part] = {t.strip().rstrip("/") for t in targets.split(",")}
    return rules


def test_no_module_imports_a_layer_it_must_not():
    assert _violations() == []


def test_no_modules_import_each_other_in_a_circle():
    assert [" -> ".join(c) for c in _circles(_import_graph())] == []


def test_the_circle_check_sees_lazy_and_longer_circles(tmp_path, monkeypatch):
    """The checker itself: a three-module circle closed by a lazy relative import is found and
    named from its first module; importing one's own package (``from . import x``) is none."""
    fake = tmp_path / "seq2seq"
    (fake / "compare").mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "compare" / "__init__.py").write_text("from . import a\n")
    (fake / "compare" / "a.py").write_text("from .b import f\n")
    (fake / "compare" / "b.py").write_text("from . import c\n")
    (fake / "compare" / "c.py").write_text("def g():\n    from .a import h\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert _circles(_import_graph()) == [
        ["seq2seq.compare.a", "seq2seq.compare.b", "seq2seq.compare.c", "seq2seq.compare.a"]
    ]
    (fake / "compare" / "c.py").write_text("def g():\n    from . import h\n")
    assert _circles(_import_graph()) == []


def test_every_part_has_rules_and_they_are_the_documented_ones():
    """A new sub-package or top-level module needs a rule here and in docs/layout.md."""
    tops = {p.stem for p in PACKAGE.glob("*.py") if p.name != "__init__.py"}
    tops |= {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert tops - NEUTRAL - set(ALLOWED) == set()
    documented = _documented_rules()
    assert set(documented.pop("neutral", set())) == {"modules"}
    assert documented == ALLOWED
    text = " ".join(LAYOUT.read_text(encoding="utf-8").split())
    named = re.search(r"The neutral modules lie below every part, [^:]*: ([^.]*)\.", text).group(1)
    assert set(named.split(", ")) == NEUTRAL


def test_the_package_never_imports_the_checkout():
    assert _checkout_imports() == []


def test_the_checkout_check_sees_imports_and_file_locations(tmp_path, monkeypatch):
    fake = tmp_path / "seq2seq"
    (fake / "cli").mkdir(parents=True)
    (fake / "cli" / "bad.py").write_text(
        "import importlib, importlib.util\n"
        "def f():\n"
        "    from benchmarks.peers import harness\n"
        "    importlib.import_module('benchmarks.peers')\n"
        "    importlib.util.spec_from_file_location('benchmarks', 'benchmarks/__init__.py')\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert _checkout_imports() == [
        "seq2seq/cli/bad.py:3 imports benchmarks.peers",
        "seq2seq/cli/bad.py:4 imports benchmarks.peers",
        "seq2seq/cli/bad.py:5 imports a file by its location",
    ]


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
        ("seq2seq.api", ("seq2seq.training", "seq2seq.evaluation", "seq2seq.cli")),
        ("seq2seq.bench.speed", ("seq2seq.cli", "seq2seq.compare", "seq2seq.export")),
    ],
)
def test_importing_a_part_loads_nothing_it_must_not(module, never):
    """The model registry may be loaded: it loads no model until asked about a family."""
    loaded = set(_loaded_after_import(module)) - MODEL_REGISTRY
    assert not [m for m in loaded if m.startswith(never)], sorted(loaded)


def test_importing_the_model_registry_loads_no_model():
    loaded = _loaded_after_import("seq2seq.models.registry")
    assert {m for m in loaded if m.startswith("seq2seq.models")} == MODEL_REGISTRY, loaded
