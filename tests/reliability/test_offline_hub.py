"""A hub load without network fails fast in one line (offline detection first, then only the
datasets cache is read), and its advice works: a mirror of the hub's exact schema loads."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from seq2seq.data import hub
from tests.cli.runner import assert_one_error_line, run_main
from tests.fixtures.hub_mirror import build_mirror


@pytest.fixture(scope="module")
def hub_mirror(tmp_path_factory) -> Path:
    return build_mirror(tmp_path_factory.mktemp("hub_mirror"))


def test_no_network_is_one_line_at_once_and_the_mirror_advice_works(
    hub_mirror, tmp_path, capfd, monkeypatch
):
    probes = []

    def unreachable(timeout: float = hub.PROBE_TIMEOUT_S) -> str:
        probes.append(timeout)
        return "huggingface.co cannot be reached: Name or service not known"

    monkeypatch.setattr(hub, "hub_unreachable", unreachable)
    argv = ["data=wmt14_en_de", "data.vocab.size=60", f"data.cache_dir={tmp_path / 'cache'}"]
    start = time.perf_counter()
    result = run_main("prepare", argv, capfd, monkeypatch)
    elapsed = time.perf_counter() - start
    assert_one_error_line(
        result,
        "cannot load wmt/wmt14 (config de-en) from the Hugging Face hub: no network "
        "(huggingface.co cannot be reached: Name or service not known) and no copy in the "
        "datasets cache; set data.hub_mirror (or SEQ2SEQ_HUB_MIRROR) to a directory of hub repo "
        "copies, or data.dir to local files",
    )
    assert probes and elapsed < 10, elapsed  # datasets' own retries took 26 s
    assert "Retrying" not in result.stderr + result.stdout

    probes.clear()
    followed = run_main("prepare", [*argv, f"data.hub_mirror={hub_mirror}"], capfd, monkeypatch)
    assert followed.code == 0, followed.stderr[-3000:]
    assert "120 pairs" in followed.stdout
    assert probes == []  # a mirror needs no network: nothing probed


def test_the_offline_switches_are_detected_without_a_connection(monkeypatch):
    def no_socket(*args, **kwargs):
        raise AssertionError("no connection may be tried")

    monkeypatch.setattr(hub.socket, "create_connection", no_socket)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.hub_unreachable() == "HF_HUB_OFFLINE is set"
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "true")
    assert hub.hub_unreachable() == "HF_DATASETS_OFFLINE is set"


def test_an_unreachable_endpoint_is_found_in_seconds(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    start = time.perf_counter()
    assert hub.hub_unreachable(timeout=2.0) == "127.0.0.1 cannot be reached: Connection refused"
    assert time.perf_counter() - start < 3
