"""Benchmark harnesses that are not part of the installed ``seq2seq`` package.

They run from a source checkout only (``make bench-peers``, then ``make bench``):
``seq2seq-benchmark peers=true`` hands itself over to ``python -m benchmarks.speed`` in the
checkout's root; the installed package never imports them.
"""
