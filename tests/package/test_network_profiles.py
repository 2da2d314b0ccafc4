"""Network profiles in config.toml: a preset fills chain id, confirmations, fee market and log
block range; keys written in the entry win; a node on another chain than the profile's is one
line before anything is sent. No public RPC provider is contacted: every ``rpc`` here is
127.0.0.1 (the session's devnet, or a closed port for settings that are only read)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from medledger.accounts import dev_account
from medledger.chain.pipeline import Rpc
from medledger.config import load_settings
from medledger.errors import ConfigurationError
from medledger.networks import PROFILES

README = Path(__file__).resolve().parents[2] / "README.md"
CLOSED = "http://127.0.0.1:9"

# Chain ids as each network's documentation publishes them (the oracle; networks.py names the
# pages): a typo in a profile fails here.
PUBLISHED_CHAIN_IDS = {
    "sepolia": 11155111,
    "holesky": 17000,
    "hoodi": 560048,
    "base-sepolia": 84532,
    "optimism-sepolia": 11155420,
    "arbitrum-sepolia": 421614,
    "polygon-amoy": 80002,
    "devnet": 31337,
}


def settings_with(tmp_path: Path, entry: str, name: str = "net", rpc: str = CLOSED):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(f'[networks.{name}]\nrpc = "{rpc}"\n{entry}')
    return load_settings(home)


@pytest.mark.parametrize("profile", sorted(PUBLISHED_CHAIN_IDS))
def test_a_profile_fills_the_keys_an_entry_leaves_out(tmp_path, profile):
    settings = settings_with(tmp_path, f'profile = "{profile}"\n')
    net = settings.network_for("net")
    assert net is not None and net.profile == profile
    assert net.chain_id == PUBLISHED_CHAIN_IDS[profile]
    assert net.fee_market == (None if profile == "devnet" else "eip1559")
    assert net.confirmations >= 1 and net.log_block_range >= 1_000
    assert settings.confirmations_for("net") == net.confirmations
    assert settings.log_block_range_for(CLOSED) == net.log_block_range  # its URL: the same entry
    assert settings.confirmations_for(CLOSED) == net.confirmations


def test_every_published_network_has_a_profile_and_every_profile_is_documented():
    assert set(PROFILES) == set(PUBLISHED_CHAIN_IDS)
    section = README.read_text().split("## Configuration and local state", 1)[1]
    section = section.split("\n## ", 1)[0]
    for name in [*PROFILES, "profile", "chain_id", "fee_market", "log_block_range"]:
        assert re.search(rf"\b{re.escape(name)}\b", section), name


def test_keys_written_in_the_entry_win_over_the_profile(tmp_path):
    settings = settings_with(
        tmp_path,
        'profile = "sepolia"\nchain_id = 5\nconfirmations = 1\nfee_market = "legacy"\n'
        "log_block_range = 500\n",
    )
    net = settings.network_for("net")
    assert net is not None
    assert (net.chain_id, net.confirmations, net.fee_market, net.log_block_range) == (
        5, 1, "legacy", 500
    )  # fmt: skip
    assert settings.confirmations_for("net") == 1


def test_an_entry_without_profile_keeps_the_defaults(tmp_path):
    settings = settings_with(tmp_path, "")
    net = settings.network_for("net")
    assert net is not None
    assert (net.chain_id, net.confirmations, net.fee_market, net.log_block_range) == (
        None, 1, None, 2_000
    )  # fmt: skip
    assert settings.log_block_range_for("local") == PROFILES["devnet"].log_block_range
    assert settings.network_for("http://127.0.0.1:1") is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('profile = "mainnet"\n', "profile: 'mainnet' is not a profile (known: sepolia,"),
        ('fee_market = "1559"\n', 'fee_market: must be "eip1559" or "legacy"'),
        ("log_block_range = 0\n", "log_block_range: must be a whole number from 1 to 1,000,000"),
        ('chain_id = "11155111"\n', "chain_id: must be a whole number from 1 to"),
        ("confirmations = true\n", "confirmations: must be a whole number from 1 to 1,000"),
        ('fee-market = "legacy"\n', "fee-market: is not a setting (known: rpc, profile,"),
    ],
    ids=["unknown-profile", "fee-market", "log-range", "chain-id", "confirmations", "typo"],
)
def test_a_wrong_network_key_is_one_line_naming_it(tmp_path, entry, message):
    with pytest.raises(ConfigurationError) as raised:
        settings_with(tmp_path, entry)
    assert str(raised.value).startswith("config.toml [networks.net] ")
    assert message in str(raised.value) and "\n" not in str(raised.value)


@pytest.fixture
def profiled_home(chain, tmp_path, monkeypatch):
    """Factory: a home whose config.toml names the session's devnet ``ward`` with a profile."""

    def make(profile: str) -> None:
        settings_with(tmp_path, f'profile = "{profile}"\n', name="ward", rpc=chain.url)
        monkeypatch.setenv("MEDLEDGER_HOME", str(tmp_path / "home"))

    return make


@pytest.mark.parametrize("network", ["ward", "url"])
def test_a_node_on_another_chain_than_the_profile_s_is_one_line_and_nothing_is_sent(
    medledger, chain, profiled_home, network
):
    profiled_home("sepolia")
    before = Rpc(chain.url).nonce(dev_account(7).address, "pending")
    target = chain.url if network == "url" else "ward"

    out = medledger("patient", "register", "--network", target, "--account", "dev:7")

    assert out.exit_code == 1, out.stdout
    assert out.stderr.splitlines() == [
        "error: config.toml [networks.ward]: expects chain id 11155111 (profile 'sepolia') but "
        "its rpc node is on chain 31337: fix rpc (or chain_id); nothing was sent"
    ]
    assert Rpc(chain.url).nonce(dev_account(7).address, "pending") == before


def test_the_devnet_profile_matches_the_session_devnet_and_writes(medledger, chain, profiled_home):
    profiled_home("devnet")
    before = Rpc(chain.url).nonce(dev_account(7).address, "pending")
    out = medledger("patient", "register", "--network", "ward", "--account", "dev:7")
    assert out.exit_code == 0, out.stderr
    assert Rpc(chain.url).nonce(dev_account(7).address, "pending") == before + 1
