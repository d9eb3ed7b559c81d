"""seq2seq-benchmark (not implemented yet)."""

from .common import not_implemented

main = not_implemented("seq2seq-benchmark")
