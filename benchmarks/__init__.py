"""Benchmark harnesses that are not part of the installed ``seq2seq`` package.

They run from a source checkout only (``make bench-peers``, then ``make bench``);
``seq2seq-benchmark --peers`` imports them from the checkout root when asked to.
"""
