"""Which source a data config names, loaded as splits train/validation/test of ``src``/``tgt``.

Precedence: ``data.dir`` (local files in ``data.format``) wins over ``data.hub_id`` when both
are set, and the log says so in one line. A preset's default ``dir`` is its local copy only
while ``hub_id`` is the preset's own (see ``seq2seq.config.default_data_dir``), so an explicit
``data.hub_id=OTHER`` loads OTHER. Splits named in ``data.carve`` are cut out of train after
loading, whatever the source.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import datasets
from omegaconf import OmegaConf

from ..config import option_value
from .carve import CARVABLE, carve
from .corpus import SPLITS, DataError, check_languages, load_local, to_parallel
from .hub import load_hub
from .local_formats import load_local_table

log = logging.getLogger(__name__)


def _source_splits(
    mapping: Mapping[str, str], carved: set[str], key: str, has: Any = None
) -> dict[str, str]:
    """``mapping`` without the carved splits; says so where the source has such a split."""
    kept = {}
    for split, name in mapping.items():
        if split not in carved:
            kept[split] = name
        elif has is None or name in has:
            log.info(
                "data.carve.%s cuts %s from train: the source's %r (%s.%s) is not used",
                split,
                split,
                name,
                key,
                split,
            )
    return kept


def load_corpus(
    *,
    src: str,
    tgt: str,
    languages: Sequence[str] = (),
    name: str = "corpus",
    local_dir: str | None = None,
    fmt: str = "text",
    files: Mapping[str, str] | None = None,
    hub_id: str | None = None,
    hub_config: str | None = None,
    revision: str | None = None,
    hub_mirror: str | None = None,
    load_kwargs: Mapping[str, Any] | None = None,
    hub_splits: Mapping[str, str] | None = None,
    columns: Mapping[str, str] | None = None,
    carve_sizes: Mapping[str, int] | None = None,
    carve_seed: int = 1,
    cache_dir: str | None = None,
) -> datasets.DatasetDict:
    """Load a parallel corpus as splits train/validation/test with columns ``src``, ``tgt``.

    ``local_dir`` wins when given (logged when ``hub_id`` is set too); otherwise ``hub_id``
    is loaded with ``datasets.load_dataset`` (from ``hub_mirror`` when given). The keyword
    arguments are the DataConfig fields of the same names (``fmt``: ``format``;
    ``carve_sizes`` / ``carve_seed``: ``carve``).
    """
    check_languages(src, tgt, languages, name)
    sizes = {split: int((carve_sizes or {}).get(split) or 0) for split in CARVABLE}
    carved = {split for split, size in sizes.items() if size}
    if local_dir:
        if hub_id:
            log.info(
                "data.dir and data.hub_id are both set: loading %s from the local files in %s "
                "(data.dir wins; data.dir=null loads %s)",
                name,
                local_dir,
                hub_id,
            )
        if not files:
            raise DataError(
                f"data.files is empty for {name}: map train/validation/test to file stems"
            )
        kept = _source_splits(files, carved, "data.files")
        if fmt == "text":
            raw = load_local(local_dir, src=src, tgt=tgt, files=kept, cache_dir=cache_dir)
        else:
            tsv_columns = list(languages) if languages else [src, tgt]
            raw = load_local_table(
                local_dir, fmt=fmt, files=kept, tsv_columns=tsv_columns, cache_dir=cache_dir
            )
        split_names = {split: split for split in kept}
    elif hub_id:
        raw = load_hub(
            hub_id,
            config=hub_config,
            revision=revision,
            load_kwargs=load_kwargs,
            mirror=hub_mirror,
            cache_dir=cache_dir,
        )
        mapping = dict(hub_splits or {s: s for s in SPLITS})
        split_names = _source_splits(mapping, carved, "data.hub_splits", has=raw)
    else:
        raise DataError(f"no source for {name}: set data.dir=PATH (local raw files) or data.hub_id")
    if carved and "train" not in split_names:
        raise DataError("data.carve cuts from the train split: map train in data.files/hub_splits")
    corpus = to_parallel(raw, src=src, tgt=tgt, split_names=split_names, columns=columns)
    return carve(corpus, **sizes, seed=carve_seed)


def _plain(node: Any) -> Any:
    """A config node (or an old run's missing one) as plain Python values."""
    if node is None:
        return None
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def load_configured(data: Any, *, cache_dir: str | None = None) -> datasets.DatasetDict:
    """:func:`load_corpus` of a ``data`` config node (DataConfig); a key an older run's saved
    config lacks takes the schema's default."""
    carve_cfg = _plain(data.get("carve")) or {}
    return load_corpus(
        src=data.src,
        tgt=data.tgt,
        languages=list(data.get("languages") or []),
        name=data.name,
        local_dir=data.get("dir"),
        fmt=option_value(data.get("format") or "text"),
        files=_plain(data.get("files")) or {},
        hub_id=data.get("hub_id"),
        hub_config=data.get("hub_config"),
        revision=data.get("revision"),
        hub_mirror=data.get("hub_mirror"),
        load_kwargs=_plain(data.get("load_kwargs")) or {},
        hub_splits=_plain(data.get("hub_splits")),
        columns={k: v for k, v in (_plain(data.get("columns")) or {}).items() if v is not None},
        carve_sizes={split: carve_cfg.get(split, 0) for split in CARVABLE},
        carve_seed=int(carve_cfg.get("seed", 1)),
        cache_dir=cache_dir,
    )
