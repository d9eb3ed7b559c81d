"""scripts/commit_summaries.sh commits the summaries a sweep exports, and nothing else."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "commit_summaries.sh"
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


def test_new_summaries_are_committed_alone_and_a_half_built_one_is_not(tmp_path):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(SCRIPT, repo / "scripts")
    (repo / ".gitignore").write_text(".*.building/\n.*.old/\n")
    git(repo, "init", "-q")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    grid = repo / "docs" / "grid" / "rnn"
    (grid / "0_seed1_rnn_none").mkdir(parents=True)
    (grid / "0_seed1_rnn_none" / "metrics.json").write_text("{}")
    (grid / ".1_seed1_rnn_dot.building").mkdir()
    (grid / ".1_seed1_rnn_dot.building" / "metrics.json").write_text("{}")
    (repo / "staged.txt").write_text("mine")
    git(repo, "add", "staged.txt")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        ["bash", str(repo / "scripts" / "commit_summaries.sh"), "docs/grid", "1"],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while "committed" not in git(repo, "log", "-1", "--format=%s") + "":
            assert time.monotonic() < deadline and proc.poll() is None
            if git(repo, "log", "-1", "--format=%s").startswith("Converged grid"):
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    assert git(repo, "log", "-1", "--format=%s").strip() == (
        "Converged grid: the summaries of 0_seed1_rnn_none"
    )
    committed = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert committed == ["docs/grid/rnn/0_seed1_rnn_none/metrics.json"]
    assert git(repo, "diff", "--cached", "--name-only").split() == ["staged.txt"]  # still staged
