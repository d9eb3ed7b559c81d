"""The peer toolkits alongside our speed benchmark: after each of our variants,
:class:`PeerRunner` trains and decodes every peer on our pieces, batch size and decoding
workload (:mod:`benchmarks.peers.harness`), so ours and theirs alternate on the same machine.
``benchmarks/speed.py`` hands it to :mod:`seq2seq.bench.suite`. Standard library only, like
every module of this package (the runner imports them in a peer's interpreter).
"""

from __future__ import annotations

import json
from pathlib import Path

from . import harness, peers


class PeerRunner:
    """Runs every peer toolkit for one of our variants: ``runner(cfg, data, family, tokens)``
    (:data:`seq2seq.bench.suite.PeerRunner`). Made only once each peer's venv is there."""

    def __init__(self, peer_dir: Path, options) -> None:
        """``options``: what our side measures (:class:`seq2seq.bench.suite.Options`)."""
        for name in peers():
            if not (peer_dir / f"{name}-venv").is_dir():
                raise FileNotFoundError(
                    f"{peer_dir / f'{name}-venv'} missing: run `make bench-peers`"
                )
        self.peer_dir = peer_dir
        self.options = options

    def __call__(self, cfg, data, family: str, target_tokens: int) -> list[dict]:
        return [self.run_one(cfg, data, name, family, target_tokens) for name in peers()]

    def run_one(self, cfg, data, toolkit: str, family: str, target_tokens: int) -> dict:
        """Train and decode one peer toolkit on the same pieces, batch size and decode
        workload; its figures are printed as one JSON line."""
        workdir = self.peer_dir / "work-bench"
        if not (workdir / "data" / "meta.json").is_file():
            train, test = data.splits["train"], data.splits["test"]
            harness.write_peer_data(
                workdir,
                train.src_text,
                train.tgt_text,
                test.src_text,
                data.tokenizer.src_model_path,
                src_lang=cfg.data.src,
                tgt_lang=cfg.data.tgt,
            )
        options = self.options
        result = harness.run_peer(
            toolkit,
            family,
            workdir=workdir,
            venv_dir=self.peer_dir / f"{toolkit}-venv",
            steps=options.steps,
            warmup_steps=options.warmup,
            batch_target_tokens=target_tokens,
            decode_beam=tuple(options.beams),
            decode_max_len=options.decode_length,
            threads=options.threads,
            decode_limit=options.decode_sentences,
        )
        figures = {
            k: v
            for k, v in result.items()
            if not isinstance(v, (dict, list)) and "command" not in k
        }
        print(json.dumps(figures), flush=True)
        return result
