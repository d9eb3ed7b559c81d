"""The decoding defaults, written once: the ``decode`` config group (``DecodeConfig``), the
decoders (``translate_batches``, ``beam_search``), the Python API and the exporter all take
them from here.

A module of constants that imports nothing, so the decoders use them without loading the
config schemas (Hydra), and the config schemas without loading the decoders (torch).
"""

BEAM_SIZE = 5  # hypotheses kept per sentence; 1 is greedy search
ALPHA = 0.6  # GNMT length penalty exponent: scores are divided by ((5 + length) / 6) ** ALPHA
# an output stops after ceil(MAX_LEN_RATIO * source length) + MAX_LEN_OFFSET decoding steps
MAX_LEN_RATIO = 1.5
MAX_LEN_OFFSET = 10
