"""seq2seq: NMT trainer for studying attention."""

__version__ = "0.1.0"
