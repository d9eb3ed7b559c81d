"""Decode a whole list of sentences: length-sorted batches, greedy or beam, original order back.

On CPU the batches are decoded by several concurrent streams (threads), each with its share of
the intra-op threads: one decoding step is a chain of small matmuls that two threads split
poorly, while two streams of one thread each keep both cores busy (measured on 2 cores, Transformer
3+3x256, fp32: greedy 1.5x, beam 5 1.2x the tokens/s of one stream with two threads). PyTorch
releases the GIL inside every op, and the model is only read, so the streams share it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
from torch import Tensor

from seq2seq.decode_defaults import ALPHA, BEAM_SIZE, MAX_LEN_OFFSET, MAX_LEN_RATIO
from seq2seq.decoding.beam import beam_search
from seq2seq.decoding.common import Hypothesis, max_output_lengths
from seq2seq.decoding.greedy import greedy_search
from seq2seq.models.base import Seq2Seq


def make_batches(
    lengths: Sequence[int], *, batch_size: int | None = 64, max_tokens: int | None = None
) -> list[list[int]]:
    """Group sentence indices, longest first, into batches of similar length.

    A batch holds at most ``batch_size`` sentences and at most ``max_tokens`` source tokens
    counting padding (its longest sentence times its size; beam search multiplies the decoder
    batch by the beam size on top of this). A single sentence longer than ``max_tokens`` still
    gets a batch of its own.
    """
    if batch_size is None and max_tokens is None:
        raise ValueError("give batch_size or max_tokens (or both)")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    # Longest first: the most memory-hungry batch runs first, so an out-of-memory shows at once.
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        if current:
            grown = len(current) + 1
            too_many = batch_size is not None and grown > batch_size
            # current[0] is the longest sentence of the batch, so it sets the padded width
            too_wide = max_tokens is not None and grown * lengths[current[0]] > max_tokens
            if too_many or too_wide:
                batches.append(current)
                current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def pad_batch(
    sentences: Sequence[Sequence[int]], pad_id: int, device: torch.device | str | None = None
) -> tuple[Tensor, Tensor]:
    """Token id lists -> (batch, max_len) long ids right-padded with ``pad_id``, and the
    (batch, max_len) bool mask, True = real token."""
    lengths = torch.tensor([len(s) for s in sentences], dtype=torch.long)
    width = int(lengths.max())
    ids = torch.full((len(sentences), width), pad_id, dtype=torch.long)
    for row, sentence in enumerate(sentences):
        ids[row, : len(sentence)] = torch.as_tensor(sentence, dtype=torch.long)
    mask = torch.arange(width)[None, :] < lengths[:, None]
    return ids.to(device), mask.to(device)


def check_beam_args(beam_size: int, nbest: int) -> None:
    """Raise ValueError naming the bad values unless 1 <= nbest <= beam_size: the decoding
    library's one guard, for callers that bring no checked config (a config's
    ``decode.beam_size`` and ``decode.nbest`` are checked with it, :mod:`seq2seq.validation`)."""
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1, got beam_size={beam_size}")
    if not 1 <= nbest <= beam_size:
        raise ValueError(
            f"nbest must be in [1, beam_size], got nbest={nbest}, beam_size={beam_size}"
        )


def translate_batches(
    model: Seq2Seq,
    src_ids: Sequence[Sequence[int]],
    *,
    beam_size: int = BEAM_SIZE,
    batch_size: int | None = 64,
    max_tokens: int | None = None,
    alpha: float = ALPHA,
    max_len_ratio: float = MAX_LEN_RATIO,
    max_len_offset: int = MAX_LEN_OFFSET,
    nbest: int = 1,
    need_attn: bool = False,
    device: torch.device | str | None = None,
    workers: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> list[Hypothesis] | list[list[Hypothesis]]:
    """Translate every source sentence; results come back in the order of ``src_ids``.

    Args:
        model: any :class:`Seq2Seq`, already on ``device``; it is put in eval mode for the call
            and its previous train/eval mode restored afterwards.
        src_ids: source token ids per sentence, each ending with EOS (``[eos]`` alone is an
            empty sentence and is fine).
        beam_size: 1 runs greedy search, larger runs beam search.
        batch_size, max_tokens: batch limits, see :func:`make_batches`.
        alpha, max_len_ratio, max_len_offset, nbest, need_attn: see :func:`beam_search`
            (greedy search ignores alpha: its score is the plain log-prob).
        device: where the source tensors go; default the device of the model's parameters.
        workers: batches decoded concurrently (CPU only; each stream gets intra-op threads /
            workers of them). None: one per intra-op thread on CPU, one on other devices.
            Never more than there are batches. The ambient autocast state reaches every stream.
        on_batch: called with the number of sentences of each batch once it is decoded (a
            progress bar's ``update``); from the decoding threads when ``workers`` > 1.

    Returns:
        One :class:`Hypothesis` per sentence when ``nbest == 1``, else one best-first list of
        ``nbest`` hypotheses per sentence.
    """
    check_beam_args(beam_size, nbest)
    for index, sentence in enumerate(src_ids):
        if len(sentence) == 0:
            raise ValueError(
                f"source sentence {index} is empty; every source must end with EOS "
                f"(id {model.eos_id})"
            )
    if device is None:
        first_param = next(model.parameters(), None)
        device = first_param.device if first_param is not None else torch.device("cpu")

    device = torch.device(device)
    results: list = [None] * len(src_ids)
    batches, num_workers = plan_batches(
        [len(s) for s in src_ids],
        batch_size=batch_size,
        max_tokens=max_tokens,
        workers=workers,
        device=device,
    )

    def decode(batch: list[int]) -> None:
        src, src_mask = pad_batch([src_ids[i] for i in batch], model.pad_id, device)
        max_len = max_output_lengths(src_mask, max_len_ratio, max_len_offset)
        if beam_size == 1:
            hyps = greedy_search(model, src, src_mask, max_len=max_len, need_attn=need_attn)
            per_sentence = [[hyp] for hyp in hyps]
        else:
            per_sentence = beam_search(
                model,
                src,
                src_mask,
                beam_size=beam_size,
                alpha=alpha,
                nbest=nbest,
                need_attn=need_attn,
                max_len=max_len,
            )
        for index, hyps in zip(batch, per_sentence, strict=True):
            results[index] = hyps[0] if nbest == 1 else hyps
        if on_batch is not None:
            on_batch(len(batch))

    was_training = model.training
    model.eval()
    try:
        if num_workers == 1:
            for batch in batches:
                decode(batch)
        else:
            _decode_concurrently(decode, batches, num_workers, device)
    finally:
        model.train(was_training)
    return results


def plan_batches(
    lengths: Sequence[int],
    *,
    batch_size: int | None,
    max_tokens: int | None,
    workers: int | None,
    device: torch.device,
) -> tuple[list[list[int]], int]:
    """The batches :func:`translate_batches` decodes (sentence indices, longest first) and the
    number of streams that decode them (see ``workers`` there)."""
    batches = make_batches(lengths, batch_size=batch_size, max_tokens=max_tokens)
    num_workers = decode_workers(workers, device, len(batches))
    if num_workers > 1 and batch_size is not None:
        # as many batches per stream: 200 sentences in batches of <= 64 on 2 streams are
        # 4 x 50, not 64 + 64 against 64 + 8
        rounds = math.ceil(len(batches) / num_workers)
        even_size = math.ceil(len(lengths) / (rounds * num_workers))
        batches = make_batches(lengths, batch_size=even_size, max_tokens=max_tokens)
    return batches, num_workers


def decode_workers(requested: int | None, device: torch.device, num_batches: int) -> int:
    """How many decoding streams to run: see ``translate_batches(workers=...)``."""
    if requested is not None and requested < 1:
        raise ValueError(f"workers must be >= 1 or None, got {requested}")
    if device.type != "cpu":
        return 1
    wanted = torch.get_num_threads() if requested is None else requested
    return max(1, min(wanted, num_batches))


def _decode_concurrently(decode, batches: list[list[int]], num_workers: int, device) -> None:
    """Run ``decode(batch)`` for every batch on ``num_workers`` threads. Batches are taken in
    order (longest first) as streams become free, which balances the load. Grad mode and
    autocast are thread-local, so each stream re-enters the caller's."""
    autocast_on = torch.is_autocast_enabled(device.type)
    autocast_dtype = torch.get_autocast_dtype(device.type)
    lock = threading.Lock()
    pending = iter(batches)
    stop = threading.Event()  # a stream failed or the caller was interrupted: take no more

    def stream() -> None:
        try:
            with (
                torch.no_grad(),  # not inference_mode: see greedy_search
                torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_on),
            ):
                while not stop.is_set():
                    with lock:
                        batch = next(pending, None)
                    if batch is None:
                        return
                    decode(batch)
        except BaseException:
            stop.set()
            raise

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // num_workers))  # process-wide in PyTorch
    try:
        with ThreadPoolExecutor(num_workers, thread_name_prefix="decode") as pool:
            futures = [pool.submit(stream) for _ in range(num_workers)]
            try:
                for future in futures:
                    future.result()  # re-raises a stream's exception
            except BaseException:
                stop.set()  # the other streams finish their current batch, then return
                raise
    finally:
        torch.set_num_threads(threads)
