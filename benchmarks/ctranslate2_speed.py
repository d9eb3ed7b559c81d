"""Beam-search decoding speed and BLEU: our decoder against the same run exported to
CTranslate2 (float32 and int8 weights), in one process, on one split.

    python -m benchmarks.ctranslate2_speed outputs/DATE/TIME_transformer --out docs/ctranslate2.json

Exports the run twice (``seq2seq-export`` float32 and int8, into a temporary directory unless
``--export-dir``), then decodes the split with beam 5 three ways, each after one warm-up batch:
ours (``seq2seq-evaluate``'s decoder: the run's alpha and length limits, batches of
``--batch-size``, one stream per intra-op thread on CPU), and CTranslate2 float32 and int8 on
the same batches (``inter_threads`` = our streams, each with the same share of the threads; every
batch gets our per-batch output cap and ``min_decoding_length=0``). Prints sentences/s, output
tokens/s (EOS included, as seq2seq-evaluate counts), the speed ratio to ours and sacreBLEU of
each, and writes them as JSON.

Beam ranking differs: ours divides by GNMT's ((5 + length) / 6) ** alpha, CTranslate2 by
length ** length_penalty; ``length_penalty`` is set to our alpha (``--length-penalty`` to
change it), so BLEU may differ a little even in float32. Needs ``pip install "seq2seq[export]"``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ctranslate2_speed",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("run_dir", type=Path, help="a trained Transformer run")
    parser.add_argument("--checkpoint", default="best")
    parser.add_argument("--split", default="test", help="test | validation")
    parser.add_argument("--limit", type=int, default=None, help="first N sentences only")
    parser.add_argument("--beam-size", type=int, default=BEAM_SIZE)
    parser.add_argument("--batch-size", type=int, default=64, help="sentences per batch")
    parser.add_argument("--device", default="cpu", help="cpu | cuda")
    parser.add_argument("--threads", type=int, default=None, help="default: torch's")
    parser.add_argument("--length-penalty", type=float, default=None, help="default: our alpha")
    parser.add_argument("--export-dir", type=Path, default=None, help="keep the exports here")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON")
    return parser.parse_args(argv)


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


def benchmark(args: argparse.Namespace) -> dict:
    ct2 = require_ctranslate2()
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    device = pick_device(args.device, key="--device")
    run = load_run(args.run_dir, checkpoint=args.checkpoint, device=device)
    sources, references = load_split_texts(run.config.data, args.split)
    if args.limit:
        sources, references = sources[: args.limit], references[: args.limit]
    src_ids = run.tokenizer.encode_src(sources)
    run_decode = run.config.get("decode", {})
    decode = {
        "beam_size": args.beam_size,
        "alpha": float(run_decode.get("alpha", ALPHA)),
        "max_len_ratio": float(run_decode.get("max_len_ratio", MAX_LEN_RATIO)),
        "max_len_offset": int(run_decode.get("max_len_offset", MAX_LEN_OFFSET)),
        "batch_size": args.batch_size,
        "workers": None,
        "progress": False,
    }

    def plan(lengths: list[int]) -> list[list[int]]:
        batches, _ = plan_batches(
            lengths, batch_size=args.batch_size, max_tokens=None, workers=None, device=device
        )
        return batches

    everything = list(range(len(sources)))
    _, streams = plan_batches(
        [len(s) for s in src_ids],
        batch_size=args.batch_size,
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
        "beam_size": args.beam_size,
        "length_penalty": decode["alpha"] if args.length_penalty is None else args.length_penalty,
        "min_decoding_length": 0,
        "max_input_length": 0,  # ours never truncates a source
    }

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = args.export_dir or Path(tmp)
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
        "beam_size": args.beam_size,
        "batch_size": args.batch_size,
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

    args = parse_args(argv)
    result = report_user_errors(lambda: benchmark(args))
    print_table(result)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"-> {args.out}")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
