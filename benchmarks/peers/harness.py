"""Runs a peer (``benchmarks.peers``) for the speed benchmark: the parts every peer shares.

Workflow::

    paths = write_peer_data(workdir, train_src, train_tgt, test_src, spm_model)
    result = run_peer("opennmt", "rnn", workdir=workdir, venv_dir="build/peers/opennmt-venv",
                      steps=30, warmup_steps=5, batch_target_tokens=4000,
                      decode_beam=(1, 5), decode_max_len=30)

Same pieces for every toolkit: the corpus is segmented once with OUR sentencepiece model and
written as pieces joined by spaces; every peer is configured to split on spaces only, and gets a
vocabulary file holding exactly our pieces (``Peer.vocab_lines``).

How throughput is measured (the same for every peer): the peer's own entry point runs inside
``runner.py`` with the peer's interpreter, which only observes: one JSON line per optimizer step
with ``time.perf_counter()`` right after the step and the REAL target tokens of that step
(non-pad target positions, EOS included, BOS excluded; the unit our trainer reports). Tokens/s =
sum of the tokens of steps ``warmup+1 .. warmup+steps`` / (time after the last step - time after
the warm-up's last step), so it covers everything a step costs (data loading, forward, backward,
clipping, Adam, logging). The peer's own log figure is parsed too and returned beside it as a
cross-check.

Batch size: each toolkit's unit differs, so the configured size is calibrated to carry
``batch_target_tokens`` real target tokens per step on average, by replaying the peer's own
batching rule over the segmented corpus (``Peer.simulate_batches``). The measured mean real
target tokens per step is returned (``real_tgt_tokens_per_batch``).

Decoding: checkpoint-independent workload. ``min_length = max_length = decode_max_len``, so every
hypothesis has exactly ``decode_max_len`` tokens whatever the (undertrained) model prefers;
output tokens are counted in the output file. Batches of ``decode_batch_size`` sentences; beam
search with GNMT length penalty alpha 0.6. Decode time is the peer's own generation time (see
``Peer.decode_time_source``); wall time of the whole process (start-up and model load included)
is returned too.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import Peer, PeerError, PeerRun, check_family, get_peer
from .ours import SEED, SPM_SPECIALS

DEFAULT_TIMEOUT_S = 3600
RUNNER = Path(__file__).resolve().parent / "runner.py"


# --------------------------------------------------------------------------- data


def spm_pieces(spm_model_path: str | Path) -> list[str]:
    """Our sentencepiece model's pieces in id order (ids 0-3: pad, unk, bos, eos)."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(spm_model_path))
    ids = (sp.pad_id(), sp.unk_id(), sp.bos_id(), sp.eos_id())
    if ids != tuple(range(SPM_SPECIALS)):
        raise ValueError(f"sentencepiece model has pad/unk/bos/eos ids {ids}; expected 0, 1, 2, 3")
    return [sp.id_to_piece(i) for i in range(sp.get_piece_size())]


def _write_lines(path: Path, lines: Sequence[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")


def write_peer_data(
    workdir: str | Path,
    train_src: Sequence[str],
    train_tgt: Sequence[str],
    test_src: Sequence[str],
    spm_model_path: str | Path,
    *,
    src_lang: str = "de",
    tgt_lang: str = "en",
) -> dict[str, str]:
    """Segment raw sentences with OUR sentencepiece model and write what every peer reads.

    ``workdir/data/{train.<src>,train.<tgt>,test.<src>,dev.<src>}`` (dev: 16 test lines, which
    Joey loads but never uses here): pieces joined by single spaces, one sentence per line
    (empty segmentations get the unknown piece so no line is empty); ``workdir/data/meta.json``.
    Each peer's vocabulary file is written by ``write_vocab`` when it runs. Returns the paths.
    """
    import sentencepiece as spm

    if len(train_src) != len(train_tgt):
        raise ValueError(f"{len(train_src)} source vs {len(train_tgt)} target training lines")
    data = Path(workdir) / "data"
    data.mkdir(parents=True, exist_ok=True)
    pieces = spm_pieces(spm_model_path)
    sp = spm.SentencePieceProcessor(model_file=str(spm_model_path))

    def segment(lines: Sequence[str]) -> list[str]:
        out = sp.encode([line.strip() for line in lines], out_type=str)
        return [" ".join(p) if p else pieces[1] for p in out]

    paths = {
        "train_src": data / f"train.{src_lang}",
        "train_tgt": data / f"train.{tgt_lang}",
        "test_src": data / f"test.{src_lang}",
        "dev_src": data / f"dev.{src_lang}",
        "meta": data / "meta.json",
    }
    _write_lines(paths["train_src"], segment(train_src))
    _write_lines(paths["train_tgt"], segment(train_tgt))
    test_lines = segment(test_src)
    _write_lines(paths["test_src"], test_lines)
    # Joey's training loop needs a dev set object even when it never validates
    _write_lines(paths["dev_src"], test_lines[:16])
    meta = {
        "src_lang": src_lang,
        "tgt_lang": tgt_lang,
        "spm_model": str(Path(spm_model_path).resolve()),
        "vocab_size": len(pieces),
        "train_pairs": len(train_src),
        "test_sentences": len(test_src),
    }
    paths["meta"].write_text(json.dumps(meta, indent=1))
    return {name: str(path.resolve()) for name, path in paths.items()}


def write_vocab(peer: Peer, data_dir: Path, spm_model_path: str | Path) -> Path:
    """The peer's vocabulary file (``Peer.vocab_lines`` of our pieces) -> its path."""
    path = peer.vocab_path(data_dir)
    _write_lines(path, peer.vocab_lines(spm_pieces(spm_model_path)))
    return path


def _read_meta(workdir: Path) -> dict:
    path = workdir / "data" / "meta.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} missing: call write_peer_data(workdir, ...) first")
    return json.loads(path.read_text())


def _lengths(path: Path) -> list[int]:
    with open(path, encoding="utf-8") as f:
        return [len(line.split()) for line in f]


# --------------------------------------------------------------------------- batching


def mean_real_tgt_tokens(batches: Sequence[Sequence[int]], tgt_lens: Sequence[int]) -> float:
    """Mean real target tokens (pieces + EOS) per batch, the last (partial) batch excluded."""
    full = batches[:-1] if len(batches) > 1 else batches
    return sum(sum(tgt_lens[i] + 1 for i in b) for b in full) / max(1, len(full))


def calibrate_batch_size(
    peer: Peer,
    src_lens: Sequence[int],
    tgt_lens: Sequence[int],
    target_real_tokens: int,
    *,
    seed: int = SEED,
) -> tuple[int, float]:
    """Smallest configured ``batch_size`` whose simulated batches carry >= ``target_real_tokens``
    real target tokens on average -> (batch_size, simulated mean)."""

    def real(size: int) -> float:
        return mean_real_tgt_tokens(peer.simulate_batches(src_lens, tgt_lens, size, seed), tgt_lens)

    lo, hi = 1, max(8, target_real_tokens)
    while real(hi) < target_real_tokens:
        lo, hi = hi, hi * 2
        if hi > 1 << 24:
            break
    while lo < hi:
        mid = (lo + hi) // 2
        if real(mid) < target_real_tokens:
            lo = mid + 1
        else:
            hi = mid
    return lo, real(lo)


# --------------------------------------------------------------------------- measuring


def read_step_records(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def throughput_from_steps(records: Sequence[dict], warmup_steps: int) -> dict[str, float]:
    """Per-step records -> tokens/s and mean real target tokens per step over the steps after
    the first ``warmup_steps`` (time from the end of step ``warmup`` to the end of the last)."""
    if warmup_steps < 1:
        raise ValueError("warmup_steps must be >= 1 (the first step's start is not observed)")
    if len(records) <= warmup_steps:
        raise ValueError(f"{len(records)} steps recorded, need more than {warmup_steps}")
    measured = records[warmup_steps:]
    seconds = measured[-1]["t"] - records[warmup_steps - 1]["t"]
    tokens = sum(r["tokens"] for r in measured)
    extra = {}
    if "cpu" in measured[-1] and "cpu" in records[warmup_steps - 1]:
        cpu = measured[-1]["cpu"] - records[warmup_steps - 1]["cpu"]
        # CPU seconds of all threads: < threads * seconds when the machine is contended
        extra = {"measured_cpu_seconds": cpu, "cpu_utilisation": cpu / seconds}
    return {
        "train_tokens_per_s": tokens / seconds,
        "real_tgt_tokens_per_batch": tokens / len(measured),
        "measured_steps": len(measured),
        "measured_tokens": tokens,
        "measured_seconds": seconds,
        "seconds_per_step": seconds / len(measured),
        **extra,
    }


def count_output(path: str | Path) -> tuple[int, int]:
    """(sentences, space-separated tokens) of a decode output file."""
    sentences = tokens = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            sentences += 1
            tokens += len(line.split())
    return sentences, tokens


# --------------------------------------------------------------------------- subprocesses


def venv_python(venv_dir: str | Path) -> Path:
    # absolute, but not resolved: bin/python is a symlink out of the venv
    python = Path(os.path.abspath(venv_dir)) / "bin" / "python"
    if not python.exists():
        raise FileNotFoundError(f"{python} missing: run `make bench-peers` first")
    return python


def runner_command(python: Path, peer: Peer, args: Sequence[str]) -> list[str]:
    """``<peer python> runner.py <peer module> MODE ARGS...``."""
    return [str(python), str(RUNNER), type(peer).__module__, *args]


def peer_env(threads: int = 2, steps_file: str | Path | None = None) -> dict[str, str]:
    """Environment for a peer subprocess: fixed threads, CPU only, unbuffered output."""
    env = dict(os.environ)
    for var in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PEER_STEPS_FILE"):
        env.pop(var, None)
    env.update(
        {
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": str(threads),
            "PEER_THREADS": str(threads),
            "CUDA_VISIBLE_DEVICES": "",
            "PYTHONUNBUFFERED": "1",
            "TOKENIZERS_PARALLELISM": "false",
            # OpenNMT-py 3.5.1 checkpoints hold pickled objects; torch >= 2.6 refuses them
            "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1",
        }
    )
    if steps_file is not None:
        env["PEER_STEPS_FILE"] = str(steps_file)
    return env


def _run(cmd: list[str], *, env: dict, log_path: Path, cwd: Path, timeout: float) -> float:
    """Run ``cmd`` with stdout+stderr to ``log_path`` -> wall seconds; raise PeerError on failure."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            proc = subprocess.run(
                cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout
            )
        except subprocess.TimeoutExpired as err:
            raise PeerError(
                f"timed out after {timeout:.0f} s: {shlex.join(cmd)}; log {log_path}"
            ) from err
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "".join(
            log_path.read_text(encoding="utf-8", errors="replace").splitlines(True)[-15:]
        )
        raise PeerError(f"exit {proc.returncode}: {shlex.join(cmd)}\nlog {log_path}:\n{tail}")
    return wall


# --------------------------------------------------------------------------- one peer


def run_peer(
    peer: Peer | str,
    family: str,
    *,
    workdir: str | Path,
    venv_dir: str | Path,
    steps: int,
    warmup_steps: int,
    batch_target_tokens: int,
    decode_beam: int | Sequence[int] = (1, 5),
    decode_max_len: int = 30,
    threads: int = 2,
    decode_batch_size: int = 64,
    decode_limit: int | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> dict[str, Any]:
    """Train ``peer``'s ``family`` model for ``warmup_steps + steps`` optimizer steps, then
    decode the test source with each beam size in ``decode_beam`` -> figures (flat JSON-able).

    ``peer``: a :class:`Peer` or a peer's name. ``workdir`` must hold ``write_peer_data``'s
    output; this run writes under ``workdir/<name>-<family>/``. ``decode_limit``: decode only the
    first N test sentences. Throughput is measured over the last ``steps`` steps.
    """
    peer = get_peer(peer) if isinstance(peer, str) else peer
    check_family(family)
    if steps < 1 or warmup_steps < 1:
        raise ValueError("steps and warmup_steps must be >= 1")
    beams = [decode_beam] if isinstance(decode_beam, int) else list(decode_beam)
    workdir = Path(workdir).resolve()
    meta = _read_meta(workdir)
    data_dir = workdir / "data"
    python = venv_python(venv_dir)
    write_vocab(peer, data_dir, meta["spm_model"])
    src_lens = _lengths(data_dir / f"train.{meta['src_lang']}")
    tgt_lens = _lengths(data_dir / f"train.{meta['tgt_lang']}")
    batch_size, simulated = calibrate_batch_size(peer, src_lens, tgt_lens, batch_target_tokens)
    run = PeerRun(
        family=family,
        data_dir=data_dir,
        run_dir=workdir / f"{peer.name}-{family}",
        src_lang=meta["src_lang"],
        tgt_lang=meta["tgt_lang"],
        total_steps=warmup_steps + steps,
        batch_size=batch_size,
        decode_max_len=decode_max_len,
        decode_batch_size=decode_batch_size,
    )
    run.run_dir.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {
        "toolkit": peer.name,
        "family": family,
        "version": peer.version,
        **_train(peer, run, python, threads, warmup_steps, timeout_s),
    }
    result.update(
        {
            "steps": steps,
            "warmup_steps": warmup_steps,
            "batch_target_tokens": batch_target_tokens,
            "batch_size_configured": batch_size,
            "batch_size_unit": peer.batch_size_unit,
            "simulated_real_tgt_tokens_per_batch": round(simulated, 1),
        }
    )
    test_src = data_dir / f"test.{run.src_lang}"
    if decode_limit is not None:
        test_src = _first_lines(test_src, decode_limit, run.run_dir / "decode_data")
    checkpoint = peer.checkpoint(run.model_dir, run.total_steps)
    for beam in beams:
        result.update(_decode(peer, run, python, threads, beam, checkpoint, test_src, timeout_s))
    result["decode_max_len"] = decode_max_len
    result["decode_batch_size"] = decode_batch_size
    result["decode_time_source"] = peer.decode_time_source
    return result


def _train(
    peer: Peer, run: PeerRun, python: Path, threads: int, warmup_steps: int, timeout_s: float
) -> dict[str, Any]:
    steps_file = run.run_dir / "steps.jsonl"
    train_log = run.run_dir / "train.log"
    cmd = runner_command(python, peer, peer.train_args(run))
    load_before = os.getloadavg()[0]
    wall = _run(
        cmd,
        env=peer_env(threads, steps_file),
        log_path=train_log,
        cwd=run.run_dir,
        timeout=timeout_s,
    )
    records = read_step_records(steps_file)
    figures = throughput_from_steps(records, warmup_steps)
    log_text = train_log.read_text(encoding="utf-8", errors="replace")
    logged = peer.log_tokens_per_s(log_text, warmup_steps)
    return {
        "params": records[0].get("params"),
        "params_logged": peer.parse_params(log_text),
        "threads": records[0].get("threads"),
        "total_steps": len(records),
        **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in figures.items()},
        "train_tokens_per_s_logged": None if logged is None else round(logged, 1),
        "train_wall_s": round(wall, 2),
        "loadavg_1min_before_after_train": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "train_command": shlex.join(cmd),
        "train_config": str(run.run_dir / "train.yaml"),
        "train_log": str(train_log),
    }


def _first_lines(path: Path, limit: int, out_dir: Path) -> Path:
    """A copy of the first ``limit`` lines of ``path`` under ``out_dir`` (same file name)."""
    with open(path, encoding="utf-8") as f:
        lines = [line for _, line in zip(range(limit), f, strict=False)]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / path.name).write_text("".join(lines), encoding="utf-8")
    return out_dir / path.name


def _decode(
    peer: Peer,
    run: PeerRun,
    python: Path,
    threads: int,
    beam: int,
    checkpoint: Path,
    src: Path,
    timeout_s: float,
) -> dict[str, Any]:
    log_path = run.run_dir / f"decode.beam{beam}.log"
    args, produced = peer.decode_args(
        run, beam=beam, checkpoint=checkpoint, src=src, output=run.run_dir / f"hyp.beam{beam}.txt"
    )
    cmd = runner_command(python, peer, args)
    wall = _run(cmd, env=peer_env(threads), log_path=log_path, cwd=run.run_dir, timeout=timeout_s)
    seconds = peer.parse_decode_seconds(log_path.read_text(encoding="utf-8", errors="replace"))
    sentences, tokens = count_output(produced)
    timed = seconds if seconds else wall
    key = "greedy" if beam == 1 else f"beam{beam}"
    return {
        f"decode_{key}_sentences": sentences,
        f"decode_{key}_output_tokens": tokens,
        f"decode_{key}_expected_tokens": sentences * run.decode_max_len,
        f"decode_{key}_seconds": round(timed, 3),
        f"decode_{key}_wall_s": round(wall, 2),
        f"decode_{key}_sentences_per_s": round(sentences / timed, 2),
        f"decode_{key}_tokens_per_s": round(tokens / timed, 1),
        f"decode_{key}_command": shlex.join(cmd),
    }


def main(argv: Sequence[str] | None = None) -> None:
    """python -m benchmarks.peers.harness WORKDIR TOOLKIT FAMILY VENV [STEPS WARMUP TOKENS MAXLEN]."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) < 4:
        raise SystemExit(main.__doc__)
    workdir, toolkit, family, venv = argv[:4]
    nums = [int(x) for x in argv[4:8]] + [30, 5, 4000, 30][len(argv[4:8]) :]
    result = run_peer(
        toolkit,
        family,
        workdir=workdir,
        venv_dir=venv,
        steps=nums[0],
        warmup_steps=nums[1],
        batch_target_tokens=nums[2],
        decode_max_len=nums[3],
    )
    print(json.dumps(result, indent=1))


if __name__ == "__main__":  # pragma: no cover
    main()
