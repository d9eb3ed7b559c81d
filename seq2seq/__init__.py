"""seq2seq: NMT trainer for studying attention.

The Python API (seq2seq/api.py, and compose from seq2seq/composition.py), loaded on first use so
that importing the package is cheap and changes nothing global::

    run = seq2seq.load("outputs/DATE/TIME_rnn_additive")
    hyps = run.translate(["Ein Hund läuft."], beam_size=5, return_attention=True)
    run = seq2seq.train(["attention=multiplicative"], run_dir="outputs/mult")
    cfg = seq2seq.compose(["attention=multiplicative"])  # the config that train would use
"""

__version__ = "0.1.0"
# name -> the module that defines it
_HOMES = {
    "Run": "api",
    "Translation": "api",
    "load": "api",
    "train": "api",
    "compose": "composition",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES or name == "api":
        import importlib

        module = importlib.import_module(f"{__name__}.{_HOMES.get(name, name)}")
        return module if name == "api" else getattr(module, name)
    raise AttributeError(f"module 'seq2seq' has no attribute {name!r}")
