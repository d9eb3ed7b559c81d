"""Our side of the comparison, which every peer is configured to match.

Our model configuration (the model schemas in seq2seq/models/, seq2seq/config.py), optimizer,
beam search and sentencepiece ids (pad=0, unk=1, bos=2, eos=3: seq2seq/data/vocab.py).
"""

RNN = {"emb_size": 256, "enc_hidden_per_dir": 512, "dec_hidden": 512, "dropout": 0.2}
TRANSFORMER = {"layers": 3, "d_model": 256, "heads": 4, "ff_size": 1024, "dropout": 0.1}
OPTIM = {"lr": 1e-3, "betas": (0.9, 0.98), "clip_grad_norm": 1.0, "label_smoothing": 0.1}
BEAM_ALPHA = 0.6
SEED = 1234
SPM_SPECIALS = 4
