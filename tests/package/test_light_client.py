"""The chain client without web3 or eth-account: its accounts, hashes, addresses and contract
calls give what those libraries gave (they are the oracles here, imported by the tests only)."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak as eth_utils_keccak
from hypothesis import given
from hypothesis import strategies as st

from medledger.accounts import DEV_ACCOUNT_COUNT, DEV_MNEMONIC, dev_account, load_account
from medledger.addresses import checksum
from medledger.chain import deployments
from medledger.errors import AccountError
from medledger.keccak import keccak

Account.enable_unaudited_hdwallet_features()


@pytest.mark.parametrize("index", range(DEV_ACCOUNT_COUNT), ids=lambda i: f"dev:{i}")
def test_a_dev_account_is_the_one_eth_accounts_hd_wallet_derives(index):
    expected = Account.from_mnemonic(DEV_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
    account = dev_account(index)
    assert (account.address, account.key) == (expected.address, bytes(expected.key))


def test_an_env_account_is_the_one_its_key_names(monkeypatch):
    expected = Account.create()
    monkeypatch.setenv("SOME_KEY", "0x" + bytes(expected.key).hex())
    assert load_account("env:SOME_KEY", 1).address == expected.address


@pytest.mark.parametrize("value", ["0x1234", "not hex", "0x" + "00" * 32])
def test_an_env_variable_that_is_no_private_key_is_refused(monkeypatch, value):
    monkeypatch.setenv("SOME_KEY", value)
    with pytest.raises(AccountError, match="does not hold a valid private key"):
        load_account("env:SOME_KEY", 1)


@given(st.binary(max_size=300))
def test_keccak_is_eth_utils_keccak(data):
    assert keccak(data) == eth_utils_keccak(data)


@given(st.binary(min_size=20, max_size=20))
def test_checksum_is_eip55_as_eth_utils_writes_it(raw):
    expected = to_checksum_address(raw)
    assert checksum(raw) == checksum("0x" + raw.hex()) == checksum("0x" + raw.hex().upper())
    assert checksum(raw) == expected


@pytest.mark.parametrize(
    ("contract", "function", "args"),
    [
        ("ConsentManager", "eip712Domain", ()),  # several outputs, a string, an array
        ("ProviderRegistry", "participant", ("hospital",)),  # a struct
        ("ProviderRegistry", "actingInstitution", ("hospital",)),
        ("ProviderRegistry", "getRoleMembers", (bytes(32),)),  # an address array
        ("RecordRegistry", "providers", ()),  # one address
    ],
)
def test_a_call_returns_what_web3_returned(chain, verified_institution, hospital, contract,
                                           function, args):  # fmt: skip
    verified_institution(hospital)
    args = tuple(hospital.address if a == "hospital" else a for a in args)
    light = deployments.contract(chain, contract)
    web3 = chain.w3.eth.contract(address=light.address, abi=light.abi)
    expected = getattr(web3.functions, function)(*args).call()
    assert getattr(light.functions, function)(*args).call() == expected
