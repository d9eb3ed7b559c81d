"""What produced a figure: the CPU, torch, and the commit of the code that trained a run.

A comparison pairs runs only when one commit trained them (seq2seq-compare), and a speed figure
means little without its CPU: every run's metrics and every benchmark record these.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from pathlib import Path

import torch

PACKAGE_DIR = Path(__file__).resolve().parent


@functools.cache
def machine() -> dict:
    """The CPU the figures belong to: model name, torch's vector ISA, native bf16 (AVX512-BF16 or
    AMX; without it bf16 is emulated and slower than fp32), the logical CPU count, torch's
    version."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": name,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": bool(
            torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        ),
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
    }


def cpu_label() -> str:
    """One line naming the CPU as the README states figures: ``AMD EPYC (avx2, no native bf16)``."""
    m = machine()
    bf16 = "native bf16" if m["native_bf16"] else "no native bf16"
    return f"{m['cpu']} ({m['cpu_capability'].lower()}, {bf16})"


@functools.cache
def code_commit() -> str | None:
    """The git commit of the checkout this package runs from, ``+dirty`` appended when tracked
    files differ from it; None outside a git checkout (an installed wheel) or without git."""

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["git", "-C", str(PACKAGE_DIR), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        dirty = git("diff", "--quiet", "HEAD").returncode != 0
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")


def run_provenance(device: torch.device) -> dict:
    """The run metrics' record of what trained a run: commit, CPU, torch, device."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_label()
    return {
        "commit": code_commit(),
        "cpu": cpu_label(),
        "torch": torch.__version__,
        "device_name": name,
    }
