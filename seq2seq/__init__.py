"""seq2seq: NMT trainer for studying attention.

The Python API (seq2seq/api.py), loaded on first use so that importing the package is cheap and
changes nothing global::

    run = seq2seq.load("outputs/DATE/TIME_rnn_additive")
    hyps = run.translate(["Ein Hund läuft."], beam_size=5, return_attention=True)
    run = seq2seq.train(["attention=multiplicative"], run_dir="outputs/mult")
"""

__version__ = "0.1.0"
__all__ = ["Run", "Translation", "compose", "load", "train"]


def __getattr__(name: str):
    if name in __all__ or name == "api":
        import importlib

        api = importlib.import_module(f"{__name__}.api")
        return api if name == "api" else getattr(api, name)
    raise AttributeError(f"module 'seq2seq' has no attribute {name!r}")
