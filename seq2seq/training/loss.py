"""Label-smoothed cross entropy over real (non-pad) target tokens."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..data.vocab import PAD_ID


def token_losses(
    logits: Tensor, target: Tensor, *, label_smoothing: float = 0.0
) -> tuple[Tensor, Tensor]:
    """Summed losses of one batch.

    Args:
        logits: (batch, tgt_len, vocab), any float dtype (the loss is computed in float32).
        target: (batch, tgt_len) ids; PAD positions are ignored.

    Returns:
        (smoothed loss sum, plain NLL sum): the first is optimised, the second gives perplexity.
    """
    flat_logits = logits.reshape(-1, logits.size(-1)).float()  # (batch*tgt_len, vocab)
    flat_target = target.reshape(-1)
    nll = F.cross_entropy(flat_logits, flat_target, ignore_index=PAD_ID, reduction="sum")
    if label_smoothing <= 0:
        return nll, nll.detach()
    smoothed = F.cross_entropy(
        flat_logits,
        flat_target,
        ignore_index=PAD_ID,
        reduction="sum",
        label_smoothing=label_smoothing,
    )
    return smoothed, nll.detach()
