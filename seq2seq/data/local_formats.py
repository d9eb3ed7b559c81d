"""Local copies in one file per split: TSV, JSON lines and parquet (``data.format``).

The ``text`` layout (one file per split and language) is :func:`seq2seq.data.corpus.load_local`.
TSV lines are ``first<TAB>second``, no header, the two columns named by the caller; JSON lines
and parquet go through ``datasets``' own builders and keep their columns, so one column per
language, a ``translation`` struct or ``data.columns`` pick the pair as they do on the hub.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.compute as pc

from .corpus import (
    DataError,
    check_local_dir,
    count_checked_lines,
    one_line,
    quiet_datasets,
)

# format -> the file names a split's stem may have, in the order they are looked for
EXTENSIONS = {
    "tsv": (".tsv", ".tsv.gz"),
    "json": (".jsonl", ".jsonl.gz", ".json", ".json.gz"),
    "parquet": (".parquet",),
}


def find_split_file(directory: Path, stem: str, fmt: str) -> Path:
    """``directory/stem.EXT`` for the first of the format's extensions that exists."""
    for ext in EXTENSIONS[fmt]:
        if (directory / f"{stem}{ext}").is_file():
            return directory / f"{stem}{ext}"
    names = ", ".join(f"{stem}{ext}" for ext in EXTENSIONS[fmt])
    raise DataError(
        f"missing corpus file: none of {names} is in {directory} "
        f"(data.format={fmt}; set data.dir, data.files or data.format)"
    )


def _split_tab(batch: pa.Table, indices: list[int], *, path: Path, names: Sequence[str]):
    """A batch of TSV lines -> the two named columns; DataError naming a line without exactly
    one tab."""
    fields = pc.split_pattern(batch.column("text"), "\t")
    counts = pc.list_value_length(fields)
    bad = pc.not_equal(counts, 2)
    if pc.any(bad).as_py():
        row = pc.index(bad, True).as_py()
        raise DataError(
            f"{path} line {indices[row] + 1}: {counts[row].as_py()} tab-separated fields, "
            f"expected 2 (`{names[0]}<TAB>{names[1]}`)"
        )
    return pa.table({names[0]: pc.list_element(fields, 0), names[1]: pc.list_element(fields, 1)})


def _load_tsv(
    paths: Mapping[str, Path], names: Sequence[str], cache_dir: str | None
) -> datasets.DatasetDict:
    for path in paths.values():
        if count_checked_lines(path) == 0:  # also names the line of any non-UTF-8 bytes
            raise DataError(f"empty corpus: {path} has no lines")
    with quiet_datasets():
        lines = datasets.load_dataset(
            "text", data_files={s: str(p) for s, p in paths.items()}, cache_dir=cache_dir
        )
        return datasets.DatasetDict(
            {
                split: lines[split]
                .with_format("arrow")
                .map(
                    _split_tab,
                    batched=True,
                    with_indices=True,
                    remove_columns=["text"],
                    fn_kwargs={"path": paths[split], "names": list(names)},
                )
                .with_format(None)
                for split in paths
            }
        )


def load_local_table(
    directory: str | Path,
    *,
    fmt: str,
    files: Mapping[str, str],
    tsv_columns: Sequence[str] = ("src", "tgt"),
    cache_dir: str | None = None,
) -> datasets.DatasetDict:
    """Load one file per split (``files``: split -> stem) in format ``fmt`` (tsv, json, parquet).

    Args:
        tsv_columns: the names of a TSV file's two columns, in file order.
    """
    directory = check_local_dir(directory, files)
    paths = {split: find_split_file(directory, stem, fmt) for split, stem in files.items()}
    if fmt == "tsv":
        if len(tsv_columns) != 2 or tsv_columns[0] == tsv_columns[1]:
            raise DataError(
                f"data.format=tsv has two columns; data.languages names {list(tsv_columns)}: "
                "give the two languages in file order"
            )
        return _load_tsv(paths, tsv_columns, cache_dir)
    try:
        with quiet_datasets():
            return datasets.load_dataset(
                fmt, data_files={s: str(p) for s, p in paths.items()}, cache_dir=cache_dir
            )
    except Exception as err:  # noqa: BLE001 - a malformed file is told in one line
        cause = (
            err.__cause__ if isinstance(err, datasets.exceptions.DatasetGenerationError) else None
        )
        raise DataError(
            f"cannot read {fmt} files in {directory}: {one_line(cause or err)}"
        ) from err
