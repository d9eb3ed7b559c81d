"""Errors a user can fix. Entry points print their message as one line and exit non-zero."""


class Seq2SeqError(Exception):
    """Base of the errors caused by input (config, data, checkpoints), not by a bug."""


class ConfigError(Seq2SeqError, ValueError):
    """An invalid combination of config values."""


class CheckpointError(Seq2SeqError):
    """A checkpoint that is missing, truncated, or does not match the model."""


class ExportError(Seq2SeqError):
    """A run that cannot be exported as asked (model family, output directory, missing extra)."""


class PeerFailed(Seq2SeqError):
    """Another DDP rank failed (rank 0 in its validation or checkpoint): this one stops too,
    with that rank's reason, instead of waiting for it."""


def one_line(err: BaseException) -> str:
    """``Type: first line of the message`` (what another process is told of a failure)."""
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0][:300]}" if text else type(err).__name__
