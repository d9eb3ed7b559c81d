"""seq2seq-translate run_dir=DIR [overrides]: one line in on stdin, one translation out on stdout.

Lines are read whole, decoded in batches, and written in the input order; an empty (or
whitespace-only) line gives an empty line. ``print_alignment=true`` appends a tab and the
word alignment in Pharaoh format (``src-tgt`` 0-based index pairs). ``decode.nbest=N`` (with
``decode.beam_size >= N``) writes N lines per input line instead, best first:
``<input line, 0-based> ||| <translation> ||| <score> ||| <log-prob>`` (`` ||| <alignment>``
appended with print_alignment).
"""

from __future__ import annotations

import logging
import sys

from ..composition import compose
from ..errors import ConfigError
from ..validation import check_evaluate_config
from .common import handle_info_flags, report_user_errors


def translate(overrides: list[str], lines: list[str]) -> list[str]:
    from ..decoding.precision import decoding_autocast, decoding_model
    from ..evaluation.evaluate import decode_texts
    from ..evaluation.run import load_run
    from ..runtime import pick_device

    cfg = compose(overrides, "evaluate")
    check_evaluate_config(cfg)  # run_dir=DIR given, decoding options in range
    device = pick_device(cfg.device, key="device")
    # a precision the device lacks fails before loading
    amp_dtype = decoding_autocast(cfg.precision, device)
    run = load_run(cfg.run_dir, checkpoint=cfg.checkpoint, device=device)
    if cfg.print_alignment and not run.model.has_alignment:
        raise ConfigError(
            "print_alignment=true needs attention, but this run's model has none "
            f"(attention={run.config.get('attention', {}).get('name')}): leave print_alignment out"
        )
    run.model = decoding_model(run.model, cfg.precision)
    keep = [i for i, line in enumerate(lines) if line.strip()]
    need_attn = bool(cfg.print_alignment)
    hyps = decode_texts(
        run,
        [lines[i].strip() for i in keep],
        cfg.decode,
        device=device,
        amp_dtype=amp_dtype,
        need_attn=need_attn,
    )
    if cfg.decode.nbest > 1:  # n-best lines, numbered by input line (an empty line has none)
        from ..evaluation.evaluate import nbest_lines

        lines_out = list(nbest_lines(run.tokenizer, hyps, keep))
        if cfg.print_alignment:
            from ..evaluation.alignments import pharaoh_for

            flat = [(i, h) for i, candidates in zip(keep, hyps, strict=True) for h in candidates]
            lines_out = [
                f"{line} ||| {pharaoh_for(run, lines[i].strip(), h, cfg.alignment)}"
                for line, (i, h) in zip(lines_out, flat, strict=True)
            ]
        return lines_out
    texts = run.tokenizer.decode_tgt([h.tokens for h in hyps])
    if cfg.print_alignment:
        from ..evaluation.alignments import pharaoh_for

        texts = [
            f"{t}\t{pharaoh_for(run, lines[i].strip(), h, cfg.alignment)}"
            for t, i, h in zip(texts, keep, hyps, strict=True)
        ]
    out = [""] * len(lines)
    for i, text in zip(keep, texts, strict=True):
        out[i] = text
    return out


def main() -> None:
    from ..runtime import keep_freed_memory

    keep_freed_memory()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    # before stdin is read: --help and --cfg answer at once
    overrides = report_user_errors(
        lambda: handle_info_flags(
            sys.argv[1:],
            doc=__doc__,
            config_name="evaluate",
            example="run_dir=outputs/DATE/TIME_rnn_additive decode.beam_size=1",
        )
    )
    data = report_user_errors(sys.stdin.buffer.read, what="seq2seq-translate (reading stdin)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line_no = data.count(b"\n", 0, err.start) + 1
        print(
            f"error: standard input line {line_no} is not UTF-8; re-encode the input as UTF-8",
            file=sys.stderr,
        )
        sys.exit(1)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    outputs = report_user_errors(
        lambda: translate(overrides, [line.rstrip("\r") for line in lines]),
        what="seq2seq-translate",
        advice="nothing was printed; run the same command again",
    )
    sys.stdout.write("".join(o + "\n" for o in outputs))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
