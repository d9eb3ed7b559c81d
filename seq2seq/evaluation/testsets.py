"""sacreBLEU's own test sets (``sacrebleu -t wmt14 -l en-de``) as sources and references.

Everything goes through sacreBLEU's dataset API (``sacrebleu.dataset.DATASETS``: its download,
its raw-file parsing, its processed text files), so the lines are exactly those its CLI scores
against. Its cache is ``$SACREBLEU`` (default ``~/.sacrebleu``): ``$SACREBLEU/<test set>/raw/``
holds the downloaded archive and its extracted files, ``$SACREBLEU/<test set>/<test
set>.<pair>.{src,ref,...}`` the text sacreBLEU extracts from them.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

from ..data.corpus import DataError
from .bleu import first_line


@dataclass
class TestSet:
    """A sacreBLEU test set's lines for one language pair."""

    name: str  # sacreBLEU's name, e.g. wmt14
    langpair: str  # e.g. en-de
    sources: list[str]
    references: list[list[str]]  # one stream per reference translation, each as long as sources

    def first(self, limit: int | None) -> TestSet:
        """Its first ``limit`` lines (all with None)."""
        return TestSet(
            self.name, self.langpair, self.sources[:limit], [r[:limit] for r in self.references]
        )

    @property
    def label(self) -> str:
        """``sacrebleu:wmt14:en-de``: what a run's metrics name the references by."""
        return f"sacrebleu:{self.name}:{self.langpair}"


def sacrebleu_dir() -> Path:
    """sacreBLEU's cache, read now: ``$SACREBLEU``, else ``~/.sacrebleu``."""
    return Path(os.environ.get("SACREBLEU") or Path.home() / ".sacrebleu")


def _dataset(name: str, langpair: str):
    """sacreBLEU's dataset object for ``name``, rooted at :func:`sacrebleu_dir`; a test set or a
    pair sacreBLEU does not know is one DataError line naming what it has."""
    from sacrebleu.dataset import DATASETS
    from sacrebleu.utils import get_available_testsets_for_langpair

    dataset = DATASETS.get(name)
    if dataset is None:
        known = sorted(get_available_testsets_for_langpair(langpair))
        raise DataError(
            f"sacreBLEU has no test set {name!r}; "
            + (f"those with {langpair}: {', '.join(known)}" if known else "`sacrebleu --list`")
        )
    if langpair not in dataset.langpairs:
        raise DataError(
            f"sacreBLEU's {name} has no pair {langpair}; its pairs: "
            f"{', '.join(sorted(dataset.langpairs))} (langpair=SRC-TGT)"
        )
    # sacreBLEU reads $SACREBLEU once, when first imported; follow its value now (a test or a
    # notebook may set it later)
    outdir = str(sacrebleu_dir() / dataset.name)
    if getattr(dataset, "_outdir", outdir) != outdir:
        dataset = copy.copy(dataset)
        dataset._outdir, dataset._rawdir = outdir, os.path.join(outdir, "raw")
    return dataset


def _read(path: str) -> list[str]:
    """A processed text file, as sacreBLEU's CLI reads it (trailing whitespace stripped)."""
    from sacrebleu.utils import smart_open

    with smart_open(path) as handle:
        return [line.rstrip() for line in handle]


def load_test_set(name: str, langpair: str) -> TestSet:
    """The sources and references of sacreBLEU's ``name`` for ``langpair`` (e.g. ``en-de``),
    from its cache, downloading them first when they are not there.

    Failing that (no network and no cached copy, a corrupt archive), one DataError line with
    sacreBLEU's own error and what to do."""
    dataset = _dataset(name, langpair)
    where = sacrebleu_dir() / dataset.name
    try:
        source_file = dataset.get_source_file(langpair)
        reference_files = dataset.get_reference_files(langpair)
        sources = _read(source_file)
        references = [_read(path) for path in reference_files]
    except (Exception, SystemExit) as err:  # noqa: BLE001 - sacreBLEU exits on a bad download
        why = first_line(err) if not isinstance(err, SystemExit) else "sacreBLEU gave up"
        hint = (
            f"no network and no cached copy in {where}: run `sacrebleu -t {name} -l {langpair} "
            "--echo src` where there is network, then copy that directory to $SACREBLEU here"
            if isinstance(err, URLError)
            else f"remove {where} to download it again, or point $SACREBLEU to a good copy"
        )
        raise DataError(
            f"cannot load sacreBLEU test set {name} {langpair} ({why}): {hint}"
        ) from err
    for path, refs in zip(reference_files, references, strict=True):
        if len(refs) != len(sources):
            raise DataError(
                f"{path} has {len(refs)} lines but {source_file} has {len(sources)}: remove "
                f"{where} to download the test set again"
            )
    return TestSet(name, langpair, sources, references)
