"""Greedy and batched beam search over the :class:`~seq2seq.models.base.Seq2Seq` contract,
shared by every model family, plus a driver that decodes a whole list of sentences.

:func:`translate_batches` is the entry point: it checks ``beam_size`` and ``nbest`` once per call.
:func:`seq2seq.decoding.beam.beam_search`, its per-batch kernel, trusts them and is not
exported here."""

from seq2seq.decoding.common import Hypothesis, length_penalty, max_output_lengths
from seq2seq.decoding.driver import check_beam_args, make_batches, pad_batch, translate_batches
from seq2seq.decoding.greedy import greedy_search

__all__ = [
    "Hypothesis",
    "check_beam_args",
    "greedy_search",
    "length_penalty",
    "make_batches",
    "max_output_lengths",
    "pad_batch",
    "translate_batches",
]
