"""sacreBLEU scores on detokenized hypotheses against raw references.

The headline is cased, detokenized BLEU (``bleu``) with its signature. ``bleu_lc``
(``lowercase=True``) is reported beside it only so users can compare with published Multi30k /
IWSLT figures, which are mostly lowercased and tokenized.

BLEU's tokenizer is ``bleu.tokenize`` (one of sacreBLEU's own,
:func:`seq2seq.validation.bleu_tokenizers`; 13a by
default): the same option for validation, the final test, seq2seq-evaluate and seq2seq-compare.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache

from sacrebleu.metrics import BLEU, CHRF

from ..errors import ConfigError, Seq2SeqError
from ..validation import tokenize_problem

DEFAULT_TOKENIZE = BLEU.TOKENIZER_DEFAULT  # 13a: mteval-v13a, WMT's standard
# tokenizers that need an optional extra of this package (sacreBLEU's own extras)
EXTRAS = {"ja-mecab": "ja", "ko-mecab": "ko"}


def run_tokenize(config: Mapping | None) -> str:
    """The ``bleu.tokenize`` of a run's (resolved or saved) config; 13a for runs made before the
    option existed, which were all scored with it."""
    node = (config or {}).get("bleu") or {}
    return str(node.get("tokenize") or DEFAULT_TOKENIZE)


@cache
def bleu_metric(tokenize: str = DEFAULT_TOKENIZE, lowercase: bool = False) -> BLEU:
    """sacreBLEU's BLEU with ``tokenize``; a tokenizer that cannot be built (a missing extra, a
    sentencepiece model it cannot download) is one ConfigError line saying what to do."""
    problem = tokenize_problem(tokenize)
    if problem:
        raise ConfigError(problem)
    try:
        return BLEU(tokenize=tokenize, lowercase=lowercase)
    except RuntimeError as err:  # sacreBLEU's "requires extra dependencies" of ja/ko-mecab
        extra = EXTRAS.get(tokenize)
        if extra is None:
            raise
        raise ConfigError(
            f"bleu.tokenize={tokenize} needs MeCab and its dictionary: "
            f'pip install "seq2seq[{extra}]" (sacreBLEU\'s sacrebleu[{extra}])'
        ) from err
    except OSError as err:  # flores101/flores200/spm: the model download failed (URLError)
        from sacrebleu.utils import SACREBLEU_DIR

        raise ConfigError(
            f"bleu.tokenize={tokenize} needs its sentencepiece model, which sacreBLEU downloads "
            f"into {SACREBLEU_DIR}/models and could not ({first_line(err)}): run once with "
            "network, or copy that file there"
        ) from err


def first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def check_tokenize(tokenize: str) -> None:
    """Build ``tokenize``'s tokenizer now, so a missing extra fails before any work."""
    bleu_metric(tokenize)


def corpus_scores(
    hypotheses: Sequence[str],
    references: Sequence[str],
    *,
    tokenize: str = DEFAULT_TOKENIZE,
    more_references: Sequence[Sequence[str]] = (),
    test_set: str | None = None,
    langpair: str | None = None,
) -> dict:
    """BLEU, chrF and lowercased BLEU of a whole corpus, with sacreBLEU signatures.

    ``references``: one reference per hypothesis; ``more_references``: further reference
    streams of the same length (test sets with several); ``test_set``/``langpair``: a sacreBLEU
    test set's name and pair, written into the signatures as sacreBLEU's CLI does (``-t``/``-l``).
    """
    streams = [list(references), *(list(r) for r in more_references)]
    for refs in streams:
        if len(hypotheses) != len(refs):
            raise Seq2SeqError(
                f"{len(hypotheses)} hypotheses but {len(refs)} references: "
                "every reference line needs exactly one hypothesis line"
            )
    bleu, bleu_lc, chrf = bleu_metric(tokenize), bleu_metric(tokenize, lowercase=True), CHRF()
    hyps = list(hypotheses)
    bleu_score = bleu.corpus_score(hyps, streams)
    chrf_score = chrf.corpus_score(hyps, streams)
    signatures = []
    for metric in (bleu, chrf):
        signature = metric.get_signature()
        if test_set is not None:
            signature.update("test", test_set)
            signature.update("lang", langpair)
        signatures.append(str(signature))
    return {
        "bleu": round(bleu_score.score, 2),
        "chrf": round(chrf_score.score, 2),
        "bleu_lc": round(bleu_lc.corpus_score(hyps, streams).score, 2),
        # most of the spread between seeds is output length: BLEU's brevity penalty and the
        # hypothesis/reference length ratio (tokenized as BLEU counts them)
        "bp": round(bleu_score.bp, 4),
        "length_ratio": round(bleu_score.sys_len / max(1, bleu_score.ref_len), 4),
        "bleu_detail": str(bleu_score),
        "bleu_tokenize": tokenize,
        "signature": signatures[0],
        "chrf_signature": signatures[1],
    }
