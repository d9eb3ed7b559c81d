"""Where the peer harness lives: ``benchmarks/peers`` of the source checkout, outside the
installed package; every peer module implements the one interface; ``seq2seq-benchmark
peers=true`` hands itself over to the checkout's ``benchmarks/speed.py`` and says in one line
when it cannot (tests/test_layering.py checks that the package never imports the checkout)."""

from __future__ import annotations

import fnmatch
import inspect
import json
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


def test_the_harness_imports_only_the_standard_library():
    """The runner imports the peer modules in a peer's interpreter, where neither torch nor
    seq2seq is installed: the harness and the peer runner load neither."""
    code = """
import json, sys
import benchmarks.peers.alongside, benchmarks.peers.harness
toolkits = sorted(benchmarks.peers.peers())
heavy = ("torch", "yaml", "sentencepiece", "numpy", "seq2seq")
heavy = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
print(json.dumps([toolkits, heavy]))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [["joeynmt", "opennmt"], []]


def test_peers_outside_a_checkout_say_so_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no benchmarks/speed.py here
    with pytest.raises(SystemExit) as exit_:
        benchmark.main(["peers=true", f"out={tmp_path / 'b.json'}"])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"error: {benchmark.PEERS_NEED_CHECKOUT}\n"
    assert "make bench-peers" in benchmark.PEERS_NEED_CHECKOUT
    assert not (tmp_path / "b.json").exists()


def test_peers_hand_over_to_the_checkout_and_fail_without_their_venvs(tmp_path):
    """From the checkout's root, ``peers=true`` runs benchmarks/speed.py with the same keys, which
    refuses missing peer venvs before measuring anything: one line, exit code 1."""
    out = tmp_path / "b.json"
    argv = ["peers=true", f"peer_dir={tmp_path}", f"out={out}"]
    result = subprocess.run(
        [sys.executable, "-m", "seq2seq.cli.benchmark", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    missing = tmp_path / "joeynmt-venv"
    assert result.stderr == f"error: {missing} missing: run `make bench-peers`\n"
    assert result.stdout == "" and not out.exists()


def test_the_wheel_leaves_benchmarks_out():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    find = config["tool"]["setuptools"]["packages"]["find"]
    included = [p for p in find["include"] if fnmatch.fnmatch("benchmarks", p)]
    excluded = [p for p in find.get("exclude", []) if fnmatch.fnmatch("benchmarks.peers", p)]
    assert not included or excluded
    assert any(fnmatch.fnmatch("seq2seq.bench", p) for p in find["include"])
