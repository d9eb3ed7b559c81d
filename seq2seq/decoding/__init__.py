"""Greedy and batched beam search over the :class:`~seq2seq.models.base.Seq2Seq` contract,
shared by every model family, plus a driver that decodes a whole list of sentences."""

from seq2seq.decoding.beam import beam_search
from seq2seq.decoding.common import Hypothesis, length_penalty, max_output_lengths
from seq2seq.decoding.driver import check_beam_args, make_batches, pad_batch, translate_batches
from seq2seq.decoding.greedy import greedy_search

__all__ = [
    "Hypothesis",
    "beam_search",
    "check_beam_args",
    "greedy_search",
    "length_penalty",
    "make_batches",
    "max_output_lengths",
    "pad_batch",
    "translate_batches",
]
