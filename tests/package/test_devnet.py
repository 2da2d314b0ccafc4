"""The devnet starts on demand, keeps its state on disk, and two homes never mix."""

from __future__ import annotations

import os
import signal

import pytest
import requests

from medledger.chain import devnet
from medledger.config import load_settings
from medledger.errors import DevnetError


def _block(url: str) -> int:
    reply = requests.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}, timeout=5
    )
    return int(reply.json()["result"], 16)


def _mine(url: str) -> None:
    requests.post(
        url, json={"jsonrpc": "2.0", "id": 1, "method": "evm_mine", "params": []}, timeout=5
    )


@pytest.fixture
def home_settings(tmp_path):
    settings = load_settings(tmp_path / "home")
    yield settings
    devnet.stop(settings)


def test_state_survives_a_stop_and_start(home_settings):
    first = devnet.ensure_running(home_settings)
    for _ in range(3):
        _mine(first.url)
    assert _block(first.url) == 3
    assert devnet.stop(home_settings) is True
    assert devnet.status(home_settings).running is False
    assert (home_settings.devnet_dir / "state.json").stat().st_size > 0
    second = devnet.ensure_running(home_settings)
    assert _block(second.url) == 3


def test_ensure_running_reuses_the_running_devnet(home_settings):
    first = devnet.ensure_running(home_settings)
    again = devnet.ensure_running(home_settings)
    assert again.pid == first.pid
    assert devnet.status(home_settings).running


def test_two_homes_run_separate_chains(home_settings, tmp_path):
    other = load_settings(tmp_path / "other")
    try:
        a = devnet.ensure_running(home_settings)
        b = devnet.ensure_running(other)
        assert a.url != b.url
        _mine(a.url)
        assert _block(a.url) == 1 and _block(b.url) == 0
    finally:
        devnet.stop(other)


def test_stop_when_not_running_says_so(home_settings):
    assert devnet.stop(home_settings) is False


def test_devnet_listens_only_on_loopback(home_settings):
    info = devnet.ensure_running(home_settings)
    assert info.url.startswith("http://127.0.0.1:")


def test_the_devnet_loads_its_last_snapshot_and_never_lets_anvil_write_it(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Anvil rewrites its state file in place (O_TRUNC, no rename): a kill mid-dump left a file it
    # could not load. MedLedger writes the snapshots itself, so Anvil only ever loads one.
    state = tmp_path / "state.json"
    monkeypatch.delenv("MEDLEDGER_DEVNET_STATE", raising=False)
    assert devnet._state_args(state) == []
    state.write_text("{}")
    assert devnet._state_args(state) == ["--load-state", str(state)]
    monkeypatch.setenv("MEDLEDGER_DEVNET_STATE", "off")
    assert devnet._state_args(state) == []


def test_a_bad_state_setting_is_named(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDLEDGER_DEVNET_STATE", "sometimes")
    with pytest.raises(DevnetError, match="MEDLEDGER_DEVNET_STATE must be on or off"):
        devnet._state_args(tmp_path / "state.json")


@pytest.mark.parametrize("value", ["0", "-3", "soon"])
def test_a_bad_snapshot_interval_is_named(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDLEDGER_DEVNET_SNAPSHOT_EVERY", value)
    with pytest.raises(DevnetError, match="MEDLEDGER_DEVNET_SNAPSHOT_EVERY"):
        devnet._snapshot_every()


def test_the_genesis_block_survives_crash_after_crash(home_settings, monkeypatch):
    # Anvil 1.7 adds a fresh genesis block at each load and dumps both; loaded again, either
    # came back as block 0 and every deployment looked gone. Snapshots keep the first genesis.
    monkeypatch.setenv("MEDLEDGER_DEVNET_STATE", "on")
    info = devnet.ensure_running(home_settings)
    genesis = _genesis(info.url)
    for crash in range(1, 4):
        for _ in range(3):
            _mine(info.url)
        devnet.snapshot(home_settings)
        os.killpg(info.pid, signal.SIGKILL)
        info = devnet.ensure_running(home_settings)
        assert (_block(info.url), _genesis(info.url)) == (3 * crash, genesis)


def _genesis(url: str) -> str:
    reply = requests.post(url, json={
        "jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["0x0", False],
    }, timeout=5)  # fmt: skip
    return str(reply.json()["result"]["hash"])
