"""Where the peer harness lives: ``benchmarks/peers`` of the source checkout, outside the
installed package; every peer module implements the one interface; the package imports the
harness only for ``seq2seq-benchmark --peers`` and says in one line when it cannot."""

from __future__ import annotations

import fnmatch
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import benchmarks.peers as peer_package
from benchmarks.peers import Peer, peers
from seq2seq.cli import benchmark

ROOT = Path(__file__).resolve().parents[2]


def test_each_peer_module_implements_the_interface():
    found = peers()
    assert sorted(found) == ["joeynmt", "opennmt"]
    for name, peer in found.items():
        cls = type(peer)
        assert isinstance(peer, Peer) and not inspect.isabstract(cls), name
        assert cls.__module__ == f"{peer_package.__name__}.{name}"  # one module per peer
        for attr in ("version", "batch_size_unit", "decode_time_source", "checkpoint_glob"):
            assert isinstance(getattr(peer, attr), str) and getattr(peer, attr), (name, attr)
        assert {"step", "tgt_tok_per_s"} <= set(peer.step_pattern.groupindex), name
        assert "seconds" in peer.decode_seconds_pattern.groupindex, name
        assert peer.params_pattern.groups == 1, name
        # the runner finds the peer by its module's PEER
        assert type(sys.modules[cls.__module__].PEER) is cls


def test_the_package_does_not_import_the_harness(tmp_path):
    """``import seq2seq`` and the benchmark CLI leave ``benchmarks`` alone; ``--peers`` loads it
    from the checkout beside the package, and the harness imports only the standard library."""
    for name in ("joeynmt", "opennmt"):
        (tmp_path / f"{name}-venv").mkdir()
    code = f"""
import json, sys
import seq2seq, seq2seq.cli.benchmark
before = set(sys.modules)
imported = sorted(m for m in before if m.split(".")[0] == "benchmarks")
toolkits = seq2seq.cli.benchmark.peer_toolkits(__import__("pathlib").Path({str(tmp_path)!r}))
heavy = sorted(
    m for m in set(sys.modules) - before
    if m.split(".")[0] in ("torch", "yaml", "sentencepiece", "numpy", "seq2seq")
)
print(json.dumps([imported, sorted(toolkits.peers()), sys.modules["benchmarks"].__file__, heavy]))
"""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    imported, names, where, heavy = json.loads(out.stdout)
    assert imported == []
    assert names == ["joeynmt", "opennmt"]
    assert where == str(ROOT / "benchmarks" / "__init__.py")
    assert heavy == []


def test_peers_outside_a_checkout_say_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(benchmark, "CHECKOUT_ROOT", tmp_path)
    monkeypatch.delitem(sys.modules, "benchmarks")
    with pytest.raises(SystemExit) as exit_:
        benchmark.main(["--peers", "--out", str(tmp_path / "b.json")])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"error: {benchmark.PEERS_NEED_CHECKOUT}\n"
    assert "make bench-peers" in benchmark.PEERS_NEED_CHECKOUT
    assert not (tmp_path / "b.json").exists()


def test_peers_without_their_venvs_fail_before_measuring(tmp_path, capsys):
    with pytest.raises(SystemExit):
        benchmark.main(["--peers", "--peer-dir", str(tmp_path), "--out", str(tmp_path / "b.json")])
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "-venv missing: run `make bench-peers`" in err


def test_the_wheel_leaves_benchmarks_out():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    find = config["tool"]["setuptools"]["packages"]["find"]
    included = [p for p in find["include"] if fnmatch.fnmatch("benchmarks", p)]
    excluded = [p for p in find.get("exclude", []) if fnmatch.fnmatch("benchmarks.peers", p)]
    assert not included or excluded
    assert any(fnmatch.fnmatch("seq2seq.bench", p) for p in find["include"])
