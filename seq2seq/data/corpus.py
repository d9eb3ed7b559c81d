"""Parallel corpora through the `datasets` library, from a local raw copy or the hub.

Whatever the source, the result is a ``datasets.DatasetDict`` with splits named
``train`` / ``validation`` / ``test`` and two string columns ``src`` and ``tgt``.

Two hub layouts are understood (:func:`to_parallel`): one column per language (e.g.
``bentrevett/multi30k``) and a ``translation`` column of ``{lang: text}`` (wmt14, iwslt2017,
opus_books). A local copy (``{stem}.{lang}[.gz]``, one sentence per line) is checked line by
line (missing file, non-UTF-8 bytes, line-count mismatch, empty corpus), loaded with the
``text`` builder and put into the one-column-per-language layout, so it goes through the same
:func:`to_parallel` code as the hub.
"""

from __future__ import annotations

import contextlib
import gzip
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import datasets

from ..errors import Seq2SeqError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def quiet_progress():
    """``datasets``' progress bars off while inside ("Generating ... split" bars would surround
    error lines), as they were after: importing seq2seq changes nothing global."""
    was_disabled = datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.enable_progress_bars()


SPLITS = ("train", "validation", "test")


class DataError(Seq2SeqError, ValueError):
    """Bad corpus input; the message is one line saying what is wrong and what to do."""


def find_file(directory: Path, stem: str, lang: str) -> Path:
    """``directory/stem.lang`` or ``directory/stem.lang.gz``; DataError naming both if neither."""
    for name in (f"{stem}.{lang}", f"{stem}.{lang}.gz"):
        if (directory / name).is_file():
            return directory / name
    raise DataError(
        f"missing corpus file: neither {directory / f'{stem}.{lang}'} nor its .gz exists "
        f"(set data.dir to the directory holding the raw files)"
    )


def _read_checked(path: Path) -> str:
    """Whole text of a (gzipped) file; DataError naming file and line on bad UTF-8."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a file: give the path of a text file")
    if not path.is_file():
        raise DataError(f"file {path} does not exist")
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except OSError as err:  # e.g. a truncated gzip
        raise DataError(f"cannot read {path}: {err}") from err
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line_no = data.count(b"\n", 0, err.start) + 1
        raise DataError(
            f"{path} line {line_no}: bytes that are not UTF-8 ({data[err.start : err.start + 4]!r}); "
            "re-encode the file as UTF-8"
        ) from None


def count_checked_lines(path: Path) -> int:
    """Number of lines in a (gzipped) text file; DataError naming file and line on bad UTF-8."""
    text = _read_checked(path)
    if not text:
        return 0
    return text.count("\n") + (0 if text.endswith("\n") else 1)


def read_lines(path: str | Path) -> list[str]:
    """Lines of a UTF-8 text file (``.gz`` too), split on ``\\n`` only, without the newline."""
    text = _read_checked(Path(path))
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def check_languages(src: str, tgt: str, languages: Sequence[str], corpus: str) -> None:
    if src == tgt:
        raise DataError(f"data.src and data.tgt are both {src!r}: choose two different languages")
    for side, lang in (("src", src), ("tgt", tgt)):
        if languages and lang not in languages:
            raise DataError(
                f"data.{side}={lang!r} is not a language of {corpus}; valid: {', '.join(languages)}"
            )


def load_local(
    directory: str | Path,
    *,
    src: str,
    tgt: str,
    files: Mapping[str, str],
    cache_dir: str | None = None,
) -> datasets.DatasetDict:
    """Load raw parallel files into a DatasetDict with one column per language.

    Args:
        directory: holds ``{stem}.{lang}[.gz]`` for every stem in ``files``.
        files: split name (train/validation/test) -> file stem (e.g. ``test_2016_flickr``).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"data directory {directory} does not exist (set data.dir=PATH)")
    unknown = set(files) - set(SPLITS)
    if unknown:
        raise DataError(
            f"unknown split {sorted(unknown)[0]!r} in data.files; valid: {', '.join(SPLITS)}"
        )
    paths: dict[str, dict[str, Path]] = {}
    for split, stem in files.items():
        src_path, tgt_path = find_file(directory, stem, src), find_file(directory, stem, tgt)
        src_lines, tgt_lines = count_checked_lines(src_path), count_checked_lines(tgt_path)
        if src_lines != tgt_lines:
            raise DataError(
                f"line counts differ: {src_path} has {src_lines} lines, {tgt_path} has {tgt_lines}; "
                "line i of one must translate line i of the other"
            )
        if src_lines == 0:
            raise DataError(f"empty corpus: {src_path} and {tgt_path} have no lines")
        paths[split] = {src: src_path, tgt: tgt_path}

    columns = {}
    for lang in (src, tgt):
        with quiet_progress():
            loaded = datasets.load_dataset(
                "text",
                data_files={split: str(p[lang]) for split, p in paths.items()},
                cache_dir=cache_dir,
            )
        columns[lang] = loaded
    return datasets.DatasetDict(
        {
            split: datasets.concatenate_datasets(
                [
                    columns[src][split].rename_column("text", src),
                    columns[tgt][split].rename_column("text", tgt),
                ],
                axis=1,
            )
            for split in paths
        }
    )


def load_hub(hub_id: str, *, cache_dir: str | None = None) -> datasets.DatasetDict:
    """Load a hub dataset (needs network); layouts are resolved later by :func:`to_parallel`."""
    try:
        with quiet_progress():
            return datasets.load_dataset(hub_id, cache_dir=cache_dir)
    except Exception as err:  # noqa: BLE001 - any hub failure gets the same advice
        raise DataError(
            f"cannot load {hub_id!r} from the Hugging Face hub ({type(err).__name__}); "
            "without network, set data.dir to a local copy of the raw files"
        ) from err


def to_parallel(
    dataset: datasets.DatasetDict, *, src: str, tgt: str, split_names: Mapping[str, str]
) -> datasets.DatasetDict:
    """Normalise either layout to splits train/validation/test with columns ``src``, ``tgt``.

    Args:
        split_names: our split name -> the dataset's split name.
    """
    out = {}
    for split, name in split_names.items():
        if name not in dataset:
            raise DataError(
                f"split {name!r} (for {split}) not found; the dataset has {', '.join(dataset)}"
            )
        part = dataset[name]
        if "translation" in part.column_names:  # {lang: text} structs -> one column per language
            part = part.flatten()
            part = part.rename_columns(
                {
                    c: c.removeprefix("translation.")
                    for c in part.column_names
                    if c.startswith("translation.")
                }
            )
        for lang in (src, tgt):
            if lang not in part.column_names:
                have = ", ".join(sorted(part.column_names))
                raise DataError(f"language {lang!r} not in the {split} split; its columns: {have}")
        part = part.select_columns([src, tgt]).rename_columns({src: "src", tgt: "tgt"})
        if len(part) == 0:
            raise DataError(f"empty corpus: the {split} split has no pairs")
        out[split] = part
    return datasets.DatasetDict(out)


def load_corpus(
    *,
    src: str,
    tgt: str,
    languages: Sequence[str] = (),
    name: str = "corpus",
    local_dir: str | None = None,
    hub_id: str | None = None,
    files: Mapping[str, str] | None = None,
    hub_splits: Mapping[str, str] | None = None,
    cache_dir: str | None = None,
) -> datasets.DatasetDict:
    """Load a parallel corpus as splits train/validation/test with columns ``src``, ``tgt``.

    ``local_dir`` wins when given; otherwise ``hub_id`` is loaded from the hub.
    """
    check_languages(src, tgt, languages, name)
    if local_dir:
        if not files:
            raise DataError(
                f"data.files is empty for {name}: map train/validation/test to file stems"
            )
        raw = load_local(local_dir, src=src, tgt=tgt, files=files, cache_dir=cache_dir)
        split_names = {split: split for split in files}
    elif hub_id:
        raw = load_hub(hub_id, cache_dir=cache_dir)
        split_names = dict(hub_splits or {s: s for s in SPLITS})
    else:
        raise DataError(f"no source for {name}: set data.dir=PATH (local raw files) or data.hub_id")
    return to_parallel(raw, src=src, tgt=tgt, split_names=split_names)
