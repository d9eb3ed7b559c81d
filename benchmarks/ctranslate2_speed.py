"""Beam-search decoding speed and BLEU: our decoder against the same run exported to
CTranslate2 (float32 and int8 weights), in one process, on one split.

    python -m benchmarks.ctranslate2_speed run_dir=outputs/DATE/TIME_transformer out=docs/ctranslate2.json

Its keys (Hydra's key=value; those of seq2seq-evaluate mean the same there):

    run_dir=DIR (required)  checkpoint=best  split=test|validation  limit=N (first N sentences)
    decode.beam_size=5  decode.batch_size=64 (sentences per batch)  device=cpu|cuda
    threads=N (default: torch's)  length_penalty=X (CTranslate2's; default: our alpha)
    export_dir=DIR (keep the exports)  out=FILE (the results as JSON)

Exports the run twice (``seq2seq-export`` float32 and int8, into a temporary directory unless
``export_dir``), then decodes the split with beam 5 three ways, each after one warm-up batch:
ours (``seq2seq-evaluate``'s decoder: the run's alpha and length limits, batches of
``decode.batch_size``, one stream per intra-op thread on CPU), and CTranslate2 float32 and int8 on
the same batches (``inter_threads`` = our streams, each with the same share of the threads; every
batch gets our per-batch output cap and ``min_decoding_length=0``). Prints sentences/s, output
tokens/s (EOS included, as seq2seq-evaluate counts), the speed ratio to ours and sacreBLEU of
each, and writes them as JSON.

Beam ranking differs: ours divides by GNMT's ((5 + length) / 6) ** alpha, CTranslate2 by
length ** length_penalty; ``length_penalty`` is set to our alpha (``length_penalty=X`` to
change it), so BLEU may differ a little even in float32. Needs ``pip install "seq2seq[export]"``.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from seq2seq.data.pipeline import load_split_texts
from seq2seq.decode_defaults import ALPHA, BEAM_SIZE, MAX_LEN_OFFSET, MAX_LEN_RATIO
from seq2seq.decoding.driver import plan_batches
from seq2seq.evaluation.bleu import corpus_scores
from seq2seq.evaluation.evaluate import decode_ids
from seq2seq.evaluation.run import load_run
from seq2seq.export.ctranslate2 import (
    SOURCE_SPM,
    TARGET_SPM,
    export_run,
    max_decoding_lengths,
    require_ctranslate2,
)
from seq2seq.runtime import pick_device

ENGINES = ("ours", "ctranslate2_float32", "ctranslate2_int8")


@dataclass
class Decode:
    beam_size: int = BEAM_SIZE
    batch_size: int = 64


@dataclass
class Arguments:
    """The benchmark's keys (see the module docstring)."""

    run_dir: str = "???"  # a trained Transformer run
    checkpoint: str = "best"
    split: str = "test"
    limit: int | None = None
    decode: Decode = field(default_factory=Decode)
    device: str = "cpu"
    threads: int | None = None
    length_penalty: float | None = None
    export_dir: str | None = None
    out: str | None = None


def parse_args(argv: list[str]) -> Arguments:
    """``key=value`` arguments -> Arguments; ``-h`` prints the keys; a bad or missing key is
    one ConfigError line."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from seq2seq.composition import config_error_line
    from seq2seq.errors import ConfigError

    if "-h" in argv or "--help" in argv:
        print(__doc__.strip())
        raise SystemExit(0)
    bad = [arg for arg in argv if "=" not in arg]
    if bad:
        raise ConfigError(f"{bad[0]!r}: every argument is key=value (-h lists the keys)")
    if not any(arg.startswith("run_dir=") for arg in argv):
        raise ConfigError("run_dir=DIR is required: a trained Transformer run")
    try:
        values = OmegaConf.merge(OmegaConf.structured(Arguments), OmegaConf.from_dotlist(argv))
        return OmegaConf.to_object(values)
    except OmegaConfBaseException as err:
        raise ConfigError(config_error_line(err)) from None


def ours_engine(run, src_ids: list[list[int]], decode: dict, device):
    """indices -> our texts and output lengths (tokens + the EOS step) of those sources."""

    def translate(indices: list[int]) -> tuple[list[str], list[int]]:
        chosen = [src_ids[i] for i in indices]
        decoded = decode_ids(
            run.model, run.tokenizer, chosen, decode, device=device, amp_dtype=None
        )
        return decoded.texts, [h.length for h in decoded.hyps]

    return translate


def ct2_engine(translator, export_dir: Path, sources, src_ids, caps, plan, options: dict):
    """indices -> CTranslate2's texts and output lengths (tokens + the EOS step where it
    finished, as ours count) of those sources, in the batches ours would make
    (``plan(lengths)``), one asynchronous translate_batch each so that ``inter_threads`` of
    them run at once; each batch capped at its sentences' largest cap of ours."""
    import sentencepiece as spm

    sp_src = spm.SentencePieceProcessor(model_file=str(export_dir / SOURCE_SPM))
    sp_tgt = spm.SentencePieceProcessor(model_file=str(export_dir / TARGET_SPM))

    def translate(indices: list[int]) -> tuple[list[str], list[int]]:
        batches = [[indices[j] for j in b] for b in plan([len(src_ids[i]) for i in indices])]
        batch_caps = [max(caps[i] for i in batch) for batch in batches]
        pending = [
            translator.translate_batch(
                [sp_src.encode(sources[i], out_type=str) for i in batch],
                max_decoding_length=cap,
                asynchronous=True,
                **options,
            )
            for batch, cap in zip(batches, batch_caps, strict=True)
        ]
        out: dict[int, tuple[str, int]] = {}
        for batch, cap, results in zip(batches, batch_caps, pending, strict=True):
            for i, result in zip(batch, results, strict=True):
                hyp = result.result().hypotheses[0]
                finished = len(hyp) < cap  # an output cut at the cap has exactly cap tokens
                out[i] = (sp_tgt.decode(hyp), len(hyp) + finished)
        return [out[i][0] for i in indices], [out[i][1] for i in indices]

    return translate


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def benchmark(args: Arguments) -> dict:
    ct2 = require_ctranslate2()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    device = pick_device(args.device, key="device")
    run = load_run(args.run_dir, checkpoint=args.checkpoint, device=device)
    sources, references = load_split_texts(run.config.data, args.split)
    if args.limit:
        sources, references = sources[: args.limit], references[: args.limit]
    src_ids = run.tokenizer.encode_src(sources)
    run_decode = run.config.get("decode", {})
    decode = {
        "beam_size": args.decode.beam_size,
        "alpha": float(run_decode.get("alpha", ALPHA)),
        "max_len_ratio": float(run_decode.get("max_len_ratio", MAX_LEN_RATIO)),
        "max_len_offset": int(run_decode.get("max_len_offset", MAX_LEN_OFFSET)),
        "batch_size": args.decode.batch_size,
        "workers": None,
        "progress": False,
    }

    def plan(lengths: list[int]) -> list[list[int]]:
        batches, _ = plan_batches(
            lengths, batch_size=args.decode.batch_size, max_tokens=None, workers=None, device=device
        )
        return batches

    everything = list(range(len(sources)))
    _, streams = plan_batches(
        [len(s) for s in src_ids],
        batch_size=args.decode.batch_size,
        max_tokens=None,
        workers=None,
        device=device,
    )
    caps = max_decoding_lengths(
        [len(s) - 1 for s in src_ids],
        max_len_ratio=decode["max_len_ratio"],
        max_len_offset=decode["max_len_offset"],
        max_positions=run.model.max_positions,
    )
    options = {
        "beam_size": args.decode.beam_size,
        "length_penalty": decode["alpha"] if args.length_penalty is None else args.length_penalty,
        "min_decoding_length": 0,
        "max_input_length": 0,  # ours never truncates a source
    }

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(args.export_dir or tmp)
        engines = {"ours": ours_engine(run, src_ids, decode, device)}
        sizes = {}
        for name, quantization in (
            ("ctranslate2_float32", "float32"),
            ("ctranslate2_int8", "int8"),
        ):
            path = export_run(
                args.run_dir,
                base / name,
                quantization=quantization,
                checkpoint=args.checkpoint,
                overwrite=True,
            )
            sizes[name] = (path / "model.bin").stat().st_size
            translator = ct2.Translator(
                str(path),
                device=device.type,
                compute_type=name.rsplit("_", 1)[1],
                inter_threads=streams,  # as many streams as ours, each with the same threads
                intra_threads=max(1, threads // streams),
            )
            engines[name] = ct2_engine(translator, path, sources, src_ids, caps, plan, options)
        warm_up = plan([len(s) for s in src_ids])[0]
        for name in ENGINES:
            # a CTranslate2 Translator sets the OpenMP thread count the process shares with
            # torch (intra_threads=1 left ours on 1 of 2 threads, at half speed): ours runs
            # with the threads it was given
            torch.set_num_threads(threads)
            engines[name](warm_up)
            (texts, lengths), seconds = timed(lambda name=name: engines[name](everything))
            torch_threads = torch.get_num_threads()  # what ours decoded with
            scores = corpus_scores(texts, references)
            rows[name] = {
                "seconds": round(seconds, 3),
                "sentences_per_s": round(len(sources) / seconds, 1),
                "output_tokens": sum(lengths),
                "output_tokens_per_s": round(sum(lengths) / seconds, 1),
                "bleu": scores["bleu"],
                "chrf": scores["chrf"],
                "model_bin_bytes": sizes.get(name),
                **({"torch_threads": torch_threads} if name == "ours" else {}),
            }
    for row in rows.values():
        row["speed_vs_ours"] = round(
            row["output_tokens_per_s"] / rows["ours"]["output_tokens_per_s"], 2
        )
    return {
        "run_dir": str(args.run_dir),
        "checkpoint": run.checkpoint.name,
        "split": args.split,
        "sentences": len(sources),
        "beam_size": args.decode.beam_size,
        "batch_size": args.decode.batch_size,
        "alpha": decode["alpha"],
        "ct2_length_penalty": options["length_penalty"],
        "device": str(device),
        "threads": threads,
        "streams": streams,
        "ctranslate2_version": ct2.__version__,
        "torch_version": torch.__version__,
        "signature": scores["signature"],
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "results": rows,
    }


def print_table(result: dict) -> None:
    print(
        f"{result['sentences']} {result['split']} sentences, beam {result['beam_size']}, "
        f"batch {result['batch_size']}, {result['device']}, {result['threads']} threads "
        f"({result['streams']} streams), CTranslate2 {result['ctranslate2_version']}"
    )
    print("| engine | sentences/s | tokens/s | vs ours | BLEU |")
    print("| --- | --- | --- | --- | --- |")
    for name, row in result["results"].items():
        print(
            f"| {name} | {row['sentences_per_s']} | {row['output_tokens_per_s']} | "
            f"{row['speed_vs_ours']} | {row['bleu']} |"
        )


def main(argv: list[str] | None = None) -> dict:
    from seq2seq.cli.common import report_user_errors

    args = report_user_errors(lambda: parse_args(sys.argv[1:] if argv is None else argv))
    result = report_user_errors(lambda: benchmark(args))
    print_table(result)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"-> {out}")
    return result


if __name__ == "__main__":
    main()
