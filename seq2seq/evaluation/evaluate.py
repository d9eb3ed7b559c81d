"""Decode a split or any source file with a trained run; BLEU/chrF when references exist."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from .. import run_files
from ..config import option_value
from ..data.corpus import DataError, read_lines
from ..data.pipeline import load_split_texts
from ..data.vocab import Tokenizer
from ..decoding.precision import decoding_autocast, decoding_model
from ..progress import progress_bar
from ..runtime import autocast, pick_device
from ..validation import check_evaluate_config
from .aer import (
    AER_KEYS,
    alignment_setup,
    describe_setup,
    gold_pairs,
    gold_word_links,
    prepare_aer,
    read_gold,
    score_gold,
)
from .bleu import DEFAULT_TOKENIZE, check_tokenize, corpus_scores, run_tokenize
from .run import LoadedRun, load_run
from .testsets import TestSet, load_test_set

log = logging.getLogger("seq2seq.evaluate")

# what a scored decoding adds to its metrics
SCORE_KEYS = ("bleu", "chrf", "bleu_lc", "bp", "length_ratio", "bleu_tokenize", "signature")
SCORE_KEYS += ("chrf_signature",)


@dataclass
class Decoded:
    """Decoded sentences, in source order."""

    texts: list[str]  # detokenized hypotheses, one per source
    hyps: list  # seq2seq.decoding.Hypothesis, with attention matrices when asked for
    seconds: float  # wall time of the decoding
    # decode.nbest > 1: per source, its nbest hypotheses best first (hyps holds their first)
    nbest: list[list] | None = None


def nbest_lines(tokenizer: Tokenizer, nbest: list[list], ids: Sequence[int] | None = None):
    """The n-best format: one line per hypothesis, best first within a source,
    ``<source number, 0-based> ||| <detokenized translation> ||| <score> ||| <log-prob>``
    (score: the log-prob divided by the length penalty, what the beam ranked by)."""
    ids = range(len(nbest)) if ids is None else ids
    for i, hyps in zip(ids, nbest, strict=True):
        for hyp, text in zip(hyps, tokenizer.decode_tgt([h.tokens for h in hyps]), strict=True):
            yield f"{i} ||| {text} ||| {hyp.score:.4f} ||| {hyp.log_prob:.4f}"


def decode_ids(
    model,
    tokenizer: Tokenizer,
    src_ids: Sequence[Sequence[int]],
    decode: Mapping,
    *,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    need_attn: bool = False,
) -> Decoded:
    """Decode tokenized sources (greedy for beam_size 1, else beam search) and detokenize.

    ``decode`` holds the DecodeConfig fields (a DictConfig or a plain dict): beam_size, alpha,
    max_len_ratio, max_len_offset, batch_size, workers. Validation, the end-of-training test,
    seq2seq-evaluate and seq2seq-translate all decode through here.
    """
    from ..decoding import translate_batches  # it checks beam_size and nbest

    nbest = int(decode.get("nbest") or 1)
    bar = progress_bar(len(src_ids), decode.get("progress"), desc="decoding", unit="sent")
    t0 = time.perf_counter()
    with autocast(device, amp_dtype), bar:
        hyps = translate_batches(
            model,
            [ids.tolist() if hasattr(ids, "tolist") else list(ids) for ids in src_ids],
            beam_size=decode["beam_size"],
            batch_size=decode["batch_size"],
            alpha=decode["alpha"],
            max_len_ratio=decode["max_len_ratio"],
            max_len_offset=decode["max_len_offset"],
            need_attn=need_attn,
            device=device,
            workers=decode.get("workers"),
            nbest=nbest,
            on_batch=bar.update,
        )
    seconds = time.perf_counter() - t0
    lists = hyps if nbest > 1 else None
    if lists is not None:
        hyps = [candidates[0] for candidates in lists]
    return Decoded(tokenizer.decode_tgt([h.tokens for h in hyps]), hyps, seconds, lists)


def decode_texts(
    run: LoadedRun,
    sources: list[str],
    decode: Mapping,
    *,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    need_attn: bool = False,
) -> list:
    """Tokenize ``sources`` with the run's vocabulary, decode; return the hypotheses: one per
    source, or with ``decode.nbest`` > 1 a best-first list of nbest per source."""
    src_ids = run.tokenizer.encode_src(sources)
    decoded = decode_ids(
        run.model,
        run.tokenizer,
        src_ids,
        decode,
        device=device,
        amp_dtype=amp_dtype,
        need_attn=need_attn,
    )
    return decoded.nbest if decoded.nbest is not None else decoded.hyps


def evaluate_model(
    model,
    tokenizer: Tokenizer,
    src_ids: Sequence[Sequence[int]],
    sources: Sequence[str],
    references: Sequence[str] | None,
    decode: Mapping,
    *,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    dump_dir: Path | None = None,
    dump_name: str = "test",
    alignment: Mapping | None = None,
    tokenize: str = DEFAULT_TOKENIZE,
    test_set: TestSet | None = None,
) -> tuple[Decoded, dict]:
    """Decode, dump alignments under ``dump_dir`` (when given) and score against
    ``references`` (when given; a sacreBLEU ``test_set`` adds its further references and its
    name to the signatures) with BLEU's ``tokenize``: the part seq2seq-evaluate and the end of
    training share. Returns the decoded sentences and the metrics (``decode_s``; BLEU, chrF,
    bleu_lc, the tokenizer and the signatures with references; ``alignments`` with a dump)."""
    decoded = decode_ids(
        model,
        tokenizer,
        src_ids,
        decode,
        device=device,
        amp_dtype=amp_dtype,
        need_attn=dump_dir is not None and model.has_alignment,
    )
    metrics: dict = {"decode_s": round(decoded.seconds, 2)}
    if references is not None:
        scores = corpus_scores(
            decoded.texts,
            references,
            tokenize=tokenize,
            more_references=test_set.references[1:] if test_set is not None else (),
            test_set=test_set.name if test_set is not None else None,
            langpair=test_set.langpair if test_set is not None else None,
        )
        metrics |= {k: scores[k] for k in SCORE_KEYS}
    if dump_dir is not None:
        from .alignments import dump_alignments

        alignment = alignment or {}
        chosen = [k for k in ("layer", "head") if alignment.get(k) is not None]
        chosen += ["shift"] if alignment.get("shift") else []
        if chosen and model.has_alignment:
            log.warning(
                "alignment.%s: the teacher-forced AER only; the dumped matrices of the decoded "
                "hypotheses are the model's own alignment (model.alignment_layer / "
                "model.alignment_head, no shift)",
                "/".join(chosen),
            )
        metrics["alignments"] = dump_alignments(
            tokenizer,
            sources,
            decoded.hyps,
            dump_dir,
            name=dump_name,
            has_alignment=model.has_alignment,
            hard=alignment.get("hard", "argmax"),
            threshold=alignment.get("threshold", 0.3),
            plot_ids=alignment.get("plot_ids"),
            plot_first=alignment.get("plot_first", 5),
        )
    return decoded, metrics


def sacrebleu_test_set(cfg: DictConfig, run_config) -> TestSet | None:
    """``test_set=NAME`` (``langpair=`` or the run's data.src-data.tgt) through sacreBLEU's
    dataset API; None without it."""
    if not cfg.get("test_set"):
        return None
    data = run_config.get("data") or {}
    direction = f"{data.get('src')}-{data.get('tgt')}"
    langpair = str(cfg.get("langpair") or direction)
    if langpair != direction:
        log.warning(
            "langpair=%s but the run translates %s: its model reads the test set's %s sources",
            langpair,
            direction,
            langpair.split("-")[0],
        )
    return load_test_set(str(cfg.test_set), langpair)


def reference_label(cfg: DictConfig, run_config, test_set: TestSet | None) -> str:
    """What a BLEU was scored against: ``sacrebleu:wmt14:en-de``, a file, or the run's split
    (``multi30k de-en test``), with the line limit when one was set."""
    if test_set is not None:
        label = test_set.label
    elif cfg.get("gold_text") or cfg.get("ref_file"):
        label = str(Path(cfg.get("gold_text") or cfg.ref_file).resolve())
    else:
        data = run_config.get("data") or {}
        label = f"{data.get('name')} {data.get('src')}-{data.get('tgt')} {cfg.split}"
    return label + (f" (first {cfg.limit})" if cfg.limit is not None else "")


def evaluation_name(
    cfg: DictConfig, test_set: TestSet | None = None, run_tokenizer: str | None = None
) -> str:
    if cfg.name:
        return str(cfg.name)
    text_file = cfg.src_file or cfg.get("gold_text")
    if test_set is not None:  # wmt14_en-de; wmt21/dev -> wmt21_dev_en-de
        base = f"{test_set.name.replace('/', '_')}_{test_set.langpair}"
    else:
        base = Path(text_file).name.split(".")[0] if text_file else cfg.split
    # the best checkpoint, fp32, every line and the run's BLEU tokenizer keep the historical
    # name; anything else is in it, so that evaluating another checkpoint, part or score never
    # replaces an earlier record
    precision = option_value(cfg.precision)
    suffix = "" if precision == "fp32" else f"_{precision}"
    checkpoint = Path(str(cfg.checkpoint)).name.removesuffix(".pt")
    suffix += "" if checkpoint == "best" else f"_{checkpoint}"
    suffix += "" if cfg.limit is None else f"_first{cfg.limit}"
    tokenize = cfg.bleu.tokenize
    suffix += "" if tokenize in (None, run_tokenizer) else f"_tok-{tokenize}"
    return f"{base}_beam{cfg.decode.beam_size}{suffix}"


# options that change where or how fast an evaluation runs, not its record
RECORD_IGNORED = ("run_dir", "name", "device", "decode.workers", "decode.progress")
RECORD_IGNORED += ("decode.batch_size",)


def _flat(node, prefix: str = "") -> dict:
    if not isinstance(node, dict):
        return {prefix: node}
    flat: dict = {}
    for key, value in node.items():
        flat.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def record_options(cfg: DictConfig) -> dict:
    """The options an evaluation record was made with (flat ``key: value``), as stored in its
    metrics under ``options``: what a later evaluate into the same name must share."""
    from omegaconf import OmegaConf

    container = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    flat = _flat({k: v for k, v in dict(container).items() if k != "hydra"})
    return {
        k: (option_value(v) if not isinstance(v, (str, int, float, bool, type(None))) else v)
        for k, v in sorted(flat.items())
        if not any(k == i or k.startswith(i + ".") for i in RECORD_IGNORED)
    }


def record_difference(out_dir: Path, options: dict) -> str:
    """'' when ``out_dir`` holds no record or one made with ``options``; else the first
    differences, ``decode.beam_size: 5 there, 1 here``. A record of an older seq2seq (no
    ``options``) is compared on its beam size, alpha and precision."""
    try:
        record = run_files.read_metrics(out_dir)
    except run_files.RunFileError as err:
        return f"its {run_files.METRICS} cannot be read ({err.reason})"
    if not record:
        return ""
    there = record.get("options")
    if not isinstance(there, dict):
        there = {
            f"decode.{k}" if k in ("beam_size", "alpha") else k: record[k]
            for k in ("beam_size", "alpha", "precision")
            if k in record
        }
        here = {k: options.get(k) for k in there}
    else:
        here = options
    keys = sorted(k for k in there.keys() | here.keys() if there.get(k) != here.get(k))
    shown = [
        f"{k}: {json.dumps(there.get(k))} there, {json.dumps(here.get(k))} here" for k in keys[:3]
    ]
    if len(keys) > 3:
        shown.append(f"and {len(keys) - 3} more")
    return "; ".join(shown)


@contextlib.contextmanager
def evaluation_record(out_dir: Path, options: dict):
    """One writer per ``eval/<name>`` (a pid lock), a record made with other options refused,
    and the new record staged: it replaces ``out_dir`` whole when the block ends, or nothing
    is left (an ``eval/`` this call created and left empty is removed too)."""
    from ..errors import ConfigError
    from ..staging import PidLock, staged_dir

    root = out_dir.parent
    made_root = not root.exists()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"cannot write {out_dir} ({err.strerror or err}): evaluate a writable copy of the run "
            f"(cp -r {root.parent} COPY, then seq2seq-evaluate run_dir=COPY ...)"
        ) from None
    lock = PidLock(
        root / f".{out_dir.name}.lock",
        f"{out_dir} is being written by pid {{pid}} on {{host}} since {{since}} (one evaluate "
        "per name at a time); nothing was changed: wait for it, or give another name=NAME",
    )
    try:
        try:
            lock.acquire()
        except OSError as err:
            raise ConfigError(
                f"cannot write {out_dir} ({err.strerror or err}): evaluate a writable copy of the "
                f"run (cp -r {root.parent} COPY, then seq2seq-evaluate run_dir=COPY ...)"
            ) from None
        diff = record_difference(out_dir, options)
        if diff:
            raise ConfigError(
                f"{out_dir} holds an evaluation with other options ({diff}); nothing was "
                f"changed: give another name=NAME, or remove {out_dir} to redo it"
            )
        with staged_dir(out_dir) as stage:
            yield stage
    finally:
        lock.release()
        if made_root:
            with contextlib.suppress(OSError):
                root.rmdir()  # only when empty


def evaluate(cfg: DictConfig, *, checked: bool = False) -> dict:
    """Decode, detokenize, score; write ``run_dir/eval/<name>/``: the hypotheses and metrics.
    ``checked``: the caller has run :func:`~seq2seq.validation.check_evaluate_config` on
    ``cfg`` (seq2seq-evaluate's pre-check), so it is not checked again."""
    if not checked:
        check_evaluate_config(cfg)
    device = pick_device(cfg.device, key="device")
    # a precision the device lacks fails before loading
    amp_dtype = decoding_autocast(cfg.precision, device)
    run = load_run(cfg.run_dir, checkpoint=cfg.checkpoint, device=device)
    run.model = decoding_model(run.model, cfg.precision)
    tokenize = cfg.bleu.tokenize or run_tokenize(run.config)
    check_tokenize(tokenize)  # a missing extra fails before decoding
    test_set = sacrebleu_test_set(cfg, run.config)
    pairs = gold_pairs(cfg)
    if test_set is not None:
        test_set = test_set.first(cfg.limit)
        sources, references = test_set.sources, test_set.references[0]
    elif pairs is not None:
        sources, references = pairs
    elif cfg.src_file:
        sources = read_lines(cfg.src_file)
        references = read_lines(cfg.ref_file) if cfg.ref_file else None
        if references is not None and len(references) != len(sources):
            raise DataError(
                f"line counts differ: {cfg.src_file} has {len(sources)} lines, {cfg.ref_file} has {len(references)}"
            )
    else:
        if cfg.ref_file:
            raise DataError(
                "ref_file needs src_file; to score a split use split=test|validation alone"
            )
        sources, references = load_split_texts(run.config.data, cfg.split)
    if cfg.limit is not None:
        sources = sources[: cfg.limit]
        references = references[: cfg.limit] if references is not None else None
    if not sources:
        what = cfg.src_file or cfg.get("gold_text") or cfg.split
        raise DataError(f"{what} has no lines: nothing to evaluate (one sentence per line)")
    # a bad gold file or reverse run fails before decoding
    gold = read_gold(sources, references, cfg) if cfg.gold_alignments else None
    reverse = None
    if gold is not None:
        reverse = prepare_aer(
            run.model,
            cfg.alignment,
            run.config,
            device=device,
            precision=cfg.precision,
            checkpoint=cfg.checkpoint,
        )
    out_dir = (
        Path(cfg.run_dir)
        / run_files.EVAL
        / evaluation_name(cfg, test_set, run_tokenize(run.config))
    )
    options = record_options(cfg)
    with evaluation_record(out_dir, options) as stage:
        metrics = _decode_and_score(
            cfg,
            run,
            stage,
            out_dir,
            sources,
            references,
            test_set,
            gold,
            reverse,
            device=device,
            amp_dtype=amp_dtype,
            tokenize=tokenize,
        )
        metrics["options"] = options
        run_files.write_metrics(stage, metrics)
    summary = f"{metrics['source']}: {len(sources)} sentences, beam {cfg.decode.beam_size}, {metrics['decode_s']}s"
    if references is not None:
        summary += (
            f" | BLEU {metrics['bleu']:.2f} chrF {metrics['chrf']:.2f} | {metrics['signature']}"
        )
    print(summary + f" -> {out_dir}")
    return metrics


def _decode_and_score(
    cfg,
    run,
    stage: Path,
    out_dir: Path,
    sources,
    references,
    test_set,
    gold,
    reverse,
    *,
    device,
    amp_dtype,
    tokenize,
) -> dict:
    """Decode and score into ``stage`` (hypotheses, n-best lists, alignments); the metrics."""
    decoded, scores = evaluate_model(
        run.model,
        run.tokenizer,
        run.tokenizer.encode_src(sources),
        sources,
        references,
        cfg.decode,
        device=device,
        amp_dtype=amp_dtype,
        dump_dir=stage if cfg.dump_alignments else None,
        dump_name="file" if cfg.src_file or cfg.get("gold_text") or test_set else cfg.split,
        alignment=cfg.alignment,
        tokenize=tokenize,
        test_set=test_set,
    )
    if isinstance(scores.get("alignments"), dict) and "dir" in scores["alignments"]:
        scores["alignments"]["dir"] = str(out_dir / run_files.ALIGNMENTS)  # where it will be
    seconds, hyps = decoded.seconds, decoded.hyps
    (stage / run_files.EVAL_HYPS).write_text(
        "".join(t + "\n" for t in decoded.texts), encoding="utf-8"
    )
    if decoded.nbest is not None:
        lines = nbest_lines(run.tokenizer, decoded.nbest)
        (stage / run_files.EVAL_NBEST).write_text("".join(x + "\n" for x in lines), "utf-8")
    metrics = {
        "run_dir": str(cfg.run_dir),
        "checkpoint": str(run.checkpoint),
        "source": test_set.label
        if test_set is not None
        else str(cfg.src_file or cfg.get("gold_text") or cfg.split),
        "sentences": len(sources),
        "beam_size": cfg.decode.beam_size,
        "alpha": cfg.decode.alpha,
        "precision": option_value(cfg.precision),
        "decode_s": scores.pop("decode_s"),
        "sentences_per_s": round(len(sources) / max(seconds, 1e-9), 1),
        "output_tokens_per_s": round(sum(len(h.tokens) + 1 for h in hyps) / max(seconds, 1e-9), 1),
    } | scores
    if references is not None:  # what the BLEU is against: compare refuses to mix them
        metrics["references"] = reference_label(cfg, run.config, test_set)
    if gold is not None:  # AER of the attention read while forcing the reference
        links = gold_word_links(
            run.model,
            run.tokenizer,
            gold,
            device=device,
            amp_dtype=amp_dtype,
            alignment=cfg.alignment,
            reverse=reverse,
        )
        gold_scores = score_gold(links, gold)
        metrics |= {k: gold_scores[k] for k in AER_KEYS}
        metrics["alignment_links"] = gold_scores["links"]
        metrics["alignment_options"] = alignment_setup(cfg.alignment)
        print(
            f"AER {metrics['aer']:.4f} precision {metrics['align_precision']:.4f} recall {metrics['align_recall']:.4f}"
            f" ({describe_setup(metrics['alignment_options'])})"
        )
    return metrics
