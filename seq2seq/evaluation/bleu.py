"""sacreBLEU scores on detokenized hypotheses against raw references.

The headline is cased, detokenized BLEU (``bleu``) with its signature. ``bleu_lc``
(``lowercase=True``) is reported beside it only so users can compare with published Multi30k /
IWSLT figures, which are mostly lowercased and tokenized.
"""

from __future__ import annotations

from collections.abc import Sequence

from sacrebleu.metrics import BLEU, CHRF

from ..errors import Seq2SeqError


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict:
    """BLEU, chrF and lowercased BLEU of a whole corpus, with sacreBLEU signatures."""
    if len(hypotheses) != len(references):
        raise Seq2SeqError(
            f"{len(hypotheses)} hypotheses but {len(references)} references: "
            "every reference line needs exactly one hypothesis line"
        )
    bleu, chrf, bleu_lc = BLEU(), CHRF(), BLEU(lowercase=True)
    hyps, refs = list(hypotheses), [list(references)]
    bleu_score = bleu.corpus_score(hyps, refs)
    return {
        "bleu": round(bleu_score.score, 2),
        "chrf": round(chrf.corpus_score(hyps, refs).score, 2),
        "bleu_lc": round(bleu_lc.corpus_score(hyps, refs).score, 2),
        "bleu_detail": str(bleu_score),
        "signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }
