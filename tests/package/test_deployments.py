"""Deployments keyed by the chain (chain id and genesis hash), files of older versions, and the
claims token chosen at deploy time.

The session's devnet is reached three ways (``local``, its URL, a configured name) and must be
one deployment; a second Anvil with chain id 4242, started here, is a chain that is not a devnet
(no DevStablecoin by default). Tokens are ``MockERC20`` (OpenZeppelin's ERC20, see
``erc20.py``).
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest
from erc20 import deploy_token

from medledger.accounts import dev_account
from medledger.chain import Chain, deployments
from medledger.chain.artifacts import DEPLOYABLE
from medledger.toolchain import anvil_path

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

WITHOUT_DEV_TOKEN = [n for n in DEPLOYABLE if n != "DevStablecoin"]


def one_line_error(outcome, message: str) -> None:
    assert outcome.exit_code == 1, outcome.stdout
    assert message in outcome.stderr, outcome.stderr
    assert len(outcome.stderr.strip().splitlines()) == 1, outcome.stderr


def block_number(chain: Chain) -> int:
    return int(chain.request("eth_blockNumber", []), 16)


def home_with_config(tmp_path: Path, text: str) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(text)
    return home


# ---------------------------------------------------------------------------- one chain, one file


@pytest.mark.parametrize("spelling", ["local", "url", "configured-name"])
def test_a_network_name_and_its_url_are_one_deployment(
    medledger, chain, tmp_path, monkeypatch, spelling
):
    network = {"local": "local", "url": chain.url, "configured-name": "ward"}[spelling]
    if spelling != "local":  # another home: its config names the session's devnet "ward"
        home = home_with_config(tmp_path, f'[networks.ward]\nrpc = "{chain.url}"\n')
        monkeypatch.setenv("MEDLEDGER_HOME", str(home))
    outcome = medledger("deploy", "--network", network, "--account", "dev:0", "--json")
    assert outcome.exit_code == 0, outcome.stderr
    report = outcome.json()
    assert report["deployed"] == []  # the session deployed them, reached as "local"
    assert report["file"] == str(deployments.deployment_file(chain))
    assert report["genesis_hash"] == chain.request("eth_getBlockByNumber", ["0x0", False])["hash"]
    files = sorted(p.name for p in chain.settings.deployments_dir.glob("*.json"))
    assert files == [deployments.deployment_file(chain).name]
    assert files[0].startswith(f"31337-{report['genesis_hash'][2:10]}")


@pytest.mark.parametrize("legacy_name", ["local", "url"])
def test_a_file_of_an_older_version_is_read_and_moved_to_the_chains_file(
    medledger, chain, tmp_path, monkeypatch, legacy_name
):
    recorded = json.loads(deployments.deployment_file(chain).read_text())
    del recorded["claims_token"]  # older versions did not record it
    name = "local" if legacy_name == "local" else deployments._legacy_name(chain.url)
    legacy = tmp_path / f"{name}.json"
    legacy.write_text(json.dumps(recorded))
    reader = Chain(replace(chain.settings, deployments_dir=tmp_path))
    kept = recorded["contracts"]["ClaimsManager"]["address"]
    assert deployments.require(reader).address("ClaimsManager") == kept
    monkeypatch.setenv("MEDLEDGER_DEPLOYMENTS", str(tmp_path))
    outcome = medledger("deploy", "--json")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json()["deployed"] == []
    assert not legacy.exists()
    moved = json.loads((tmp_path / deployments.deployment_file(chain).name).read_text())
    assert moved["contracts"] == recorded["contracts"]
    dev = recorded["contracts"]["DevStablecoin"]["address"]
    assert moved["claims_token"] == {"address": dev, "symbol": "mUSD", "decimals": 6}


def test_of_two_older_files_for_one_chain_the_one_named_after_the_network_is_read(
    medledger, chain, tmp_path, monkeypatch
):
    """Older versions wrote a second file (and a second set of contracts) when the same chain
    was reached by URL; reached as ``local``, ``local.json`` is the one read, however recent."""
    recorded = json.loads(deployments.deployment_file(chain).read_text())
    (tmp_path / "local.json").write_text(json.dumps(recorded))
    other = json.loads(json.dumps(recorded))
    other["contracts"]["ClaimsManager"]["address"] = "0x" + "11" * 20
    other["updated_at"] = recorded["updated_at"] + 3600
    by_url = tmp_path / f"{deployments._legacy_name(chain.url)}.json"
    by_url.write_text(json.dumps(other))
    monkeypatch.setenv("MEDLEDGER_DEPLOYMENTS", str(tmp_path))
    outcome = medledger("deploy", "--json")
    assert outcome.exit_code == 0, outcome.stderr
    assert outcome.json()["deployed"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [by_url.name, deployments.deployment_file(chain).name]
    )


# ---------------------------------------------------------------------------- the claims token


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("stranger", "is not a contract on chain 31337"),
        ("ProviderRegistry", "does not answer decimals(): is it an ERC-20?"),
        ("8-decimals", "has 8 decimals; a claims token has 6 or 18"),
        ("0x1234", "has 4 hex digits, not 40"),
    ],
)
def test_deploy_refuses_a_claims_token_that_is_not_a_6_or_18_decimals_erc20_before_sending(
    medledger, chain, tmp_path, monkeypatch, token, message
):
    address = token
    if token == "stranger":
        address = dev_account(9).address
    elif token == "ProviderRegistry":
        address = deployments.require(chain).address("ProviderRegistry")
    elif token == "8-decimals":
        address = deploy_token(chain, dev_account(0).address, "EIGHT", 8)
    monkeypatch.setenv("MEDLEDGER_DEPLOYMENTS", str(tmp_path))  # nothing recorded: all is new
    before = block_number(chain)
    outcome = medledger("deploy", "--claims-token", address)
    one_line_error(outcome, message)
    assert block_number(chain) == before
    assert list(tmp_path.iterdir()) == []


def test_a_deployment_keeps_its_claims_token(medledger, chain):
    other = deploy_token(chain, dev_account(0).address, "tUSD", 6)
    before = block_number(chain)
    outcome = medledger("deploy", "--claims-token", other)
    one_line_error(outcome, "a deployment keeps its token")
    assert block_number(chain) == before


# ---------------------------------------------------------------------------- not a devnet


@pytest.fixture
def ward_chain(settings) -> Iterator[Chain]:
    """A second Anvil (chain id 4242, so not a devnet) on 127.0.0.1, for this test only."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [str(anvil_path()), "--host", "127.0.0.1", "--port", str(port), "--chain-id", "4242",
         "--silent"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        ward = Chain(settings, f"http://127.0.0.1:{port}")
        for _ in range(100):
            try:
                assert ward.chain_id == 4242
                break
            except Exception:
                time.sleep(0.05)
        yield ward
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize("chosen_by", ["option", "config"])
def test_a_chain_that_is_not_a_devnet_needs_a_chosen_token_and_its_name_and_url_share_it(
    medledger, ward_chain, tmp_path, monkeypatch, chosen_by
):
    deployer = dev_account(0)
    monkeypatch.setenv("DEPLOYER_KEY", deployer.key.hex())
    monkeypatch.setenv("MEDLEDGER_DEPLOYMENTS", str(tmp_path / "deployments"))
    config = f'[networks.ward]\nrpc = "{ward_chain.url}"\n'
    monkeypatch.setenv("MEDLEDGER_HOME", str(home_with_config(tmp_path, config)))
    account = ("--account", "env:DEPLOYER_KEY")

    refused = medledger("deploy", "--network", "ward", *account)
    one_line_error(refused, "network 'ward' is not a devnet, so claims need a real ERC-20")
    assert block_number(ward_chain) == 0  # nothing was sent

    token = deploy_token(ward_chain, deployer.address, "tUSD", 6)
    chosen = ("--claims-token", token)
    if chosen_by == "config":
        config += f'claims_token = "{token}"\n'
        (tmp_path / "home" / "config.toml").write_text(config)
        chosen = ()
    first = medledger("deploy", "--network", "ward", *account, *chosen, "--json")
    assert first.exit_code == 0, first.stderr
    assert first.json()["deployed"] == WITHOUT_DEV_TOKEN
    assert first.json()["claims_token"] == {"address": token, "symbol": "tUSD", "decimals": 6}
    again = medledger("deploy", "--network", ward_chain.url, *account, "--json")
    assert again.exit_code == 0, again.stderr
    assert again.json()["deployed"] == [] and again.json()["file"] == first.json()["file"]
    assert again.json()["claims_token"]["address"] == token
