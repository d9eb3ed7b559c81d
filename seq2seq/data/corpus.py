"""Parallel text files and the one layout every source is put into.

Whatever the source (seq2seq/data/source.py picks it), the result is a ``datasets.DatasetDict``
with splits named ``train`` / ``validation`` / ``test`` and two string columns ``src`` and
``tgt``, made by :func:`to_parallel` from any of the layouts datasets give: one column per
language (e.g. ``bentrevett/multi30k``), a ``translation`` column of ``{lang: text}`` (wmt14,
iwslt2017, opus_books), or columns named by ``data.columns``. A local copy in the ``text``
layout (``{stem}.{lang}[.gz]``, one sentence per line) is checked line by line (missing file,
non-UTF-8 bytes, line-count mismatch, empty corpus), loaded with the ``text`` builder and put
into the one-column-per-language layout, so it goes through the same :func:`to_parallel` as
the hub.
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
def quiet_datasets():
    """``datasets``' progress bars and log lines off while inside ("Generating ... split" bars,
    "Failed to load JSON" lines would surround the one error line a failed load becomes), as
    they were after: importing seq2seq changes nothing global."""
    was_disabled = datasets.are_progress_bars_disabled()
    verbosity = datasets.logging.get_verbosity()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity(datasets.logging.CRITICAL)
    try:
        yield
    finally:
        datasets.logging.set_verbosity(verbosity)
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


def check_local_dir(directory: str | Path, files: Mapping[str, str]) -> Path:
    """``directory`` as a Path; DataError when it is missing or ``files`` names an unknown split."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"data directory {directory} does not exist (set data.dir=PATH)")
    unknown = set(files) - set(SPLITS)
    if unknown:
        raise DataError(
            f"unknown split {sorted(unknown)[0]!r} in data.files; valid: {', '.join(SPLITS)}"
        )
    return directory


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
    directory = check_local_dir(directory, files)
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
        with quiet_datasets():
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


def one_line(err: BaseException, limit: int = 400) -> str:
    """``Type: message`` of an exception on one line (datasets' messages span several)."""
    message = " ".join(str(err).split())
    if len(message) > limit:
        message = message[: limit - 3] + "..."
    return f"{type(err).__name__}: {message}" if message else type(err).__name__


def _pick_column(names: Sequence[str], side: str, lang: str, columns: Mapping[str, str]) -> str:
    """The (flattened) column holding ``side``: ``columns[side]``, else ``lang`` or
    ``translation.<lang>``; DataError naming what the split has."""
    if side in columns:
        if columns[side] in names:
            return columns[side]
        raise DataError(
            f"data.columns.{side}={columns[side]!r} is not a column; the columns: "
            f"{', '.join(sorted(names))}"
        )
    for name in (lang, f"translation.{lang}"):
        if name in names:
            return name
    raise DataError(
        f"language {lang!r} is not a column; the columns: {', '.join(sorted(names))} "
        f"(name the {side} column with data.columns.{side}=COLUMN)"
    )


def to_parallel(
    dataset: datasets.DatasetDict,
    *,
    src: str,
    tgt: str,
    split_names: Mapping[str, str],
    columns: Mapping[str, str] | None = None,
) -> datasets.DatasetDict:
    """Normalise any layout to splits train/validation/test with string columns ``src``, ``tgt``.

    Args:
        split_names: our split name -> the dataset's split name.
        columns: ``{src: COLUMN, tgt: COLUMN}``, a struct's field as ``translation.de``; a side
            left out is the column named by its language, else ``translation.<lang>``.
    """
    columns = dict(columns or {})
    unknown = set(columns) - {"src", "tgt"}
    if unknown:
        raise DataError(f"unknown key {sorted(unknown)[0]!r} in data.columns; valid: src, tgt")
    out = {}
    for split, name in split_names.items():
        if name not in dataset:
            raise DataError(
                f"split {name!r} (for {split}) not found; the dataset has {', '.join(dataset)} "
                f"(map {split} in data.hub_splits or data.files, or cut it from train with "
                f"data.carve.{split}=N)"
            )
        part = dataset[name].flatten()  # struct columns -> `translation.de`, `translation.en`
        try:
            chosen = {
                side: _pick_column(part.column_names, side, lang, columns)
                for side, lang in (("src", src), ("tgt", tgt))
            }
        except DataError as err:
            raise DataError(f"the {split} split: {err}") from None
        if chosen["src"] == chosen["tgt"]:
            raise DataError(f"source and target are both the column {chosen['src']!r}")
        for side, column in chosen.items():
            dtype = getattr(part.features[column], "dtype", None)
            if dtype not in ("string", "large_string"):
                raise DataError(
                    f"the {split} split's {side} column {column!r} holds {part.features[column]}, "
                    "not text: choose another with data.columns"
                )
        part = part.select_columns([chosen["src"], chosen["tgt"]])
        part = part.rename_columns({chosen["src"]: "src", chosen["tgt"]: "tgt"})
        if len(part) == 0:
            raise DataError(f"empty corpus: the {split} split has no pairs")
        out[split] = part
    return datasets.DatasetDict(out)
