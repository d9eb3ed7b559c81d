"""Hub datasets through ``datasets.load_dataset``, or through a mirror of hub repos offline.

A dataset is named as on the hub: id, config name, revision, and any further keyword
arguments of ``load_dataset`` (``data_dir``, ``data_files``, ...). A mirror (``data.hub_mirror``
or ``$SEQ2SEQ_HUB_MIRROR``) is a directory holding copies of hub repos, laid out as the repos
are (data files and the README.md whose ``configs:`` block maps configs and splits to files):
``owner/name`` is read from ``MIRROR/owner/name``, and at a revision other than main from
``MIRROR/owner/name@REVISION`` (a directory has no revisions, so the copy of that revision is
its own directory). ``datasets`` resolves a local repo copy with the same packaged builders and
the same ``configs:`` / split-name rules as the hub, so a mirror loads exactly what the hub
would, and the tests load their hub fixtures this way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import datasets

from .corpus import DataError, one_line, quiet_datasets

log = logging.getLogger(__name__)

# load_dataset arguments that data.* fields set (or that would not give a DatasetDict)
RESERVED_KWARGS = {
    "path": "data.hub_id",
    "name": "data.hub_config",
    "revision": "data.revision",
    "cache_dir": "data.cache_dir",
    "split": "data.hub_splits",
    "streaming": None,
}


def describe(hub_id: str, config: str | None, revision: str | None) -> str:
    """``wmt/wmt14 (config de-en, revision main)`` for messages."""
    details = [f"config {config}"] if config else []
    if revision:
        details.append(f"revision {revision}")
    return f"{hub_id} ({', '.join(details)})" if details else hub_id


def is_main(revision: str | None) -> bool:
    return revision in (None, "", "main")


def mirror_path(hub_id: str, revision: str | None, mirror: str | Path) -> Path:
    """Where a mirror keeps ``hub_id`` at ``revision``: ``MIRROR/owner/name[@REVISION]``."""
    leaf = hub_id if is_main(revision) else f"{hub_id}@{revision}"
    return Path(mirror).expanduser() / leaf


PARQUET_EXPORT = "refs/convert/parquet"
PROBE_TIMEOUT_S = 3.0
TRUE = ("1", "true", "yes", "on")


def hub_unreachable(timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the hub cannot be reached (``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` set, or no
    connection to its host within ``timeout`` seconds), None when it can: checked before
    ``datasets`` tries, which retries for half a minute without network."""
    from urllib.parse import urlsplit

    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(name, "").strip().lower() in TRUE:
            return f"{name} is set"
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        return f"{host} cannot be reached: {err.strerror or type(err).__name__}"
    return None


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """datasets and huggingface_hub in offline mode: only their caches are read."""
    import datasets.config as datasets_config
    import huggingface_hub.constants as hub_constants

    saved = datasets_config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE
    datasets_config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets_config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved


def _advice(err: BaseException, *, revision: str | None, mirrored: bool) -> str:
    """What to do about a failed load, where the error says more than datasets does."""
    message = str(err)
    if "Dataset scripts are no longer supported" in message:
        return (
            "; this is a loading-script dataset: load the hub's parquet export with "
            f"data.revision={PARQUET_EXPORT} and data.load_kwargs.data_dir=CONFIG"
        )
    if revision == PARQUET_EXPORT and "Available: ['default']" in message:
        return (
            "; the parquet export has one directory per config and no configs list: "
            "set data.hub_config=null and data.load_kwargs.data_dir=CONFIG"
        )
    if "Config name is missing" in message or "BuilderConfig" in message:
        return "; set data.hub_config to one of the dataset's configs"
    if isinstance(err, ConnectionError) and not mirrored:
        return (
            "; without network, set data.hub_mirror (or SEQ2SEQ_HUB_MIRROR) to a directory of "
            "hub repo copies, or data.dir to local files"
        )
    return ""


def load_hub(
    hub_id: str,
    *,
    config: str | None = None,
    revision: str | None = None,
    load_kwargs: Mapping[str, Any] | None = None,
    mirror: str | None = None,
    cache_dir: str | None = None,
) -> datasets.DatasetDict:
    """``datasets.load_dataset(hub_id, name=config, revision=revision, **load_kwargs)``, all of
    the dataset's splits; from ``mirror`` (see the module doc) when one is given.

    Raises:
        DataError: one line naming the dataset and datasets' own error (e.g. its list of
            configs when the config name is missing), with what to do where that is known.
    """
    kwargs = dict(load_kwargs or {})
    for key in sorted(set(kwargs) & set(RESERVED_KWARGS)):
        instead = RESERVED_KWARGS[key]
        raise DataError(
            f"data.load_kwargs.{key} is not allowed"
            + (f": set {instead} instead" if instead else ": the corpus is loaded whole")
        )
    what = describe(hub_id, config, revision)
    path, where, asked_revision = hub_id, "the Hugging Face hub", revision
    if mirror and not Path(hub_id).expanduser().is_absolute():
        copy = mirror_path(hub_id, revision, mirror)
        if not copy.is_dir():
            at = "" if is_main(revision) else f" --revision {revision}"
            raise DataError(
                f"the hub mirror {mirror} has no copy of {what}: expected the directory {copy} "
                f"(`hf download {hub_id} --repo-type dataset{at} --local-dir {copy}` puts it "
                "there), or unset data.hub_mirror / SEQ2SEQ_HUB_MIRROR to use the hub"
            )
        # a directory has no revisions: the copy of the revision is its own directory
        path, where, revision = str(copy), f"the mirror copy {copy}", None
        log.info("loading %s from %s", what, copy)
    # no network: the datasets cache only, at once (not half a minute of retries)
    no_network = hub_unreachable() if path == hub_id and not Path(path).exists() else None
    try:
        with quiet_datasets(), offline() if no_network else contextlib.nullcontext():
            loaded = datasets.load_dataset(
                path, name=config, revision=revision, cache_dir=cache_dir, **kwargs
            )
    except Exception as err:
        if no_network:
            raise DataError(
                f"cannot load {what} from the Hugging Face hub: no network ({no_network}) and "
                "no copy in the datasets cache; set data.hub_mirror (or SEQ2SEQ_HUB_MIRROR) to a "
                "directory of hub repo copies, or data.dir to local files"
            ) from err  # noqa: BLE001 - whatever datasets raises is told in one line
        raise DataError(
            f"cannot load {what} from {where}: {one_line(err)}"
            + _advice(err, revision=asked_revision, mirrored=path != hub_id)
        ) from err
    return loaded
