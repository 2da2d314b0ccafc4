"""Fee markets: legacy (type 0, EIP-155) transactions where the chain has no base fee or the
network's ``fee_market = "legacy"`` says so, EIP-1559 elsewhere.

Real nodes: Anvil started here on 127.0.0.1, once with ``--hardfork berlin`` (blocks without
``baseFeePerGas``) and once at its latest hardfork. The external signer is the stand-in of
``test_external_signer.py`` taught the legacy request the same descriptions give (Web3Signer's
``eth_signTransaction`` with ``gasPrice``, https://docs.web3signer.consensys.io/reference/api/json-rpc;
Clef's ``account_signTransaction``, https://geth.ethereum.org/docs/tools/clef/apis: a request
without ``maxFeePerGas`` is a legacy transaction, signed for the chain id, EIP-155), signing
with eth-account; not Clef or Web3Signer themselves.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import coincurve
import pytest
from eth_account import Account
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from test_external_signer import StandInSigner

from medledger import providers, records
from medledger.accounts import dev_account, load_account
from medledger.categories import Category
from medledger.chain import Chain, deployments
from medledger.chain.pipeline import Pipeline, Rpc, sign_legacy
from medledger.config import load_settings
from medledger.errors import ConfigurationError, MedLedgerError, SignerRefused
from medledger.ipfs.local import LocalBlockStore
from medledger.toolchain import anvil_path

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

OBSERVATION = (
    Path(__file__).resolve().parents[2] / "src/medledger/demo/data/Observation-example.json"
)
# A contract of pre-Shanghai opcodes only: its code returns 42 (init code copies and returns
# the 10-byte runtime: PUSH1 42 PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN).
FORTY_TWO = bytes.fromhex("600a600c600039600a6000f3" + "602a60005260206000f3")

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
private_keys = st.integers(min_value=1, max_value=coincurve.utils.GROUP_ORDER_INT - 1).map(
    lambda n: n.to_bytes(32, "big")
)


# --- signing: byte for byte what eth-account makes --------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    key=private_keys,
    chain_id=st.integers(1, 2**32),
    nonce=st.integers(0, 2**40),
    to=st.none() | addresses,
    data=st.binary(max_size=300),
    gas=st.integers(21_000, 30_000_000),
    gas_price=st.integers(0, 10**13),
    value=st.integers(0, 10**20),
)
def test_legacy_transactions_match_eth_account(
    key: bytes, chain_id: int, nonce: int, to: str | None, data: bytes, gas: int,
    gas_price: int, value: int,
) -> None:  # fmt: skip
    tx: dict[str, Any] = {
        "nonce": nonce, "data": data, "gas": gas, "value": value, "chainId": chain_id,
        "gasPrice": gas_price,
    }  # fmt: skip
    if to is not None:
        tx["to"] = to_checksum_address(to)
    expected = bytes(Account.from_key(key).sign_transaction(tx).raw_transaction)
    assert sign_legacy(key, chain_id, nonce, to, data, gas, gas_price, value) == expected


# --- real nodes --------------------------------------------------------------------------------


@pytest.fixture
def anvil() -> Iterator[Callable[..., str]]:
    """Factory: start an Anvil on 127.0.0.1 (chain id 31337) with extra arguments; its URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(*extra: str) -> str:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = [str(anvil_path()), "--host", "127.0.0.1", "--port", str(port), "--silent"]
        processes.append(
            subprocess.Popen(
                [*command, *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                Rpc(url).batch([("eth_chainId", [])])
                return url
            except MedLedgerError:
                time.sleep(0.05)
        raise AssertionError("anvil did not start")

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def chain_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, entry: str = "") -> Chain:
    """The node at ``url`` as network ``ward`` of a fresh home (``entry``: more keys)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text(f'[networks.ward]\nrpc = "{url}"\n{entry}')
    monkeypatch.setenv("MEDLEDGER_HOME", str(home))
    monkeypatch.setenv("MEDLEDGER_DEPLOYMENTS", str(tmp_path / "deployments"))
    return Chain(load_settings(), "ward")


def sent(chain: Chain, receipts: list[Any]) -> list[dict[str, Any]]:
    """The transactions as the node holds them."""
    replies = Rpc(chain.url).batch(
        [("eth_getTransactionByHash", [r.transaction_hash]) for r in receipts]
    )
    return [reply["result"] for reply in replies]


def pay(chain: Chain, account: Any, payloads: tuple[bytes, ...] = (b"", b"\x01")) -> list[Any]:
    return Pipeline(chain, account).send(
        "paying", dev_account(9).address, list(payloads), gas=60_000, value=1
    )


def is_eip155(tx: dict[str, Any], chain_id: int) -> bool:
    return int(tx["v"], 16) - 35 - 2 * chain_id in (0, 1)


def test_a_chain_without_base_fee_gets_replay_protected_legacy_transactions(
    anvil, tmp_path, monkeypatch
):
    chain = chain_at(tmp_path, monkeypatch, anvil("--hardfork", "berlin"))
    assert "baseFeePerGas" not in chain.block("latest")

    receipts = pay(chain, dev_account(0))
    created = Pipeline(chain, dev_account(0)).send("creating", None, [FORTY_TWO], gas=100_000)

    assert [r.status for r in receipts + created] == [1, 1, 1]
    txs = sent(chain, receipts + created)
    assert [tx["type"] for tx in txs] == ["0x0"] * 3
    assert all(is_eip155(tx, 31337) for tx in txs)
    assert int(txs[0]["gasPrice"], 16) == int(chain.request("eth_gasPrice", []), 16)
    answer = chain.eth_call("reading", str(created[0].contract_address), b"")
    assert int.from_bytes(answer, "big") == 42


def test_medledger_s_contracts_need_shanghai_so_a_berlin_chain_refuses_them_before_sending(
    anvil, tmp_path, monkeypatch
):
    """The shipped contracts are compiled for cancun (PUSH0 and later opcodes): a pre-Shanghai
    chain cannot run them, whatever the fee market. The deploy stops at the estimate."""
    chain = chain_at(tmp_path, monkeypatch, anvil("--hardfork", "berlin"))
    with pytest.raises(MedLedgerError, match="NotActivated") as refused:
        deployments.deploy(chain, dev_account(0))
    assert "compiled for the Cancun EVM" in str(refused.value)  # said so a person understands
    assert int(chain.request("eth_blockNumber", []), 16) == 0


def test_writes_on_a_legacy_chain_wait_for_their_confirmations(anvil, tmp_path, monkeypatch):
    chain = chain_at(tmp_path, monkeypatch, anvil("--hardfork", "berlin"), "confirmations = 3\n")
    stop = threading.Event()

    def mine() -> None:
        while not stop.wait(0.2):
            Rpc(chain.url).batch([("evm_mine", [])])

    miner = threading.Thread(target=mine, daemon=True)
    miner.start()
    try:
        receipts = pay(chain, dev_account(0))
        head = int(chain.request("eth_blockNumber", []), 16)
    finally:
        stop.set()
        miner.join()
    assert head >= max(r.block_number for r in receipts) + 2
    assert [tx["type"] for tx in sent(chain, receipts)] == ["0x0", "0x0"]


def test_eip1559_configured_on_a_chain_without_base_fee_is_one_line_and_nothing_is_sent(
    anvil, tmp_path, monkeypatch
):
    chain = chain_at(
        tmp_path, monkeypatch, anvil("--hardfork", "berlin"), 'fee_market = "eip1559"\n'
    )
    with pytest.raises(ConfigurationError) as raised:
        pay(chain, dev_account(0))
    message = str(raised.value)
    assert message.startswith('config.toml [networks.ward] fee_market: is "eip1559" but')
    assert 'set fee_market = "legacy"' in message and "\n" not in message
    assert Rpc(chain.url).nonce(dev_account(0).address, "pending") == 0


@pytest.mark.parametrize(
    ("entry", "kind"),
    [("", "0x2"), ('fee_market = "legacy"\n', "0x0"), ('fee_market = "eip1559"\n', "0x2")],
    ids=["detected-eip1559", "configured-legacy", "configured-eip1559"],
)
def test_a_london_chain_runs_deploy_anchor_and_read_in_the_configured_fee_market(
    anvil, tmp_path, monkeypatch, entry, kind
):
    chain = chain_at(tmp_path, monkeypatch, anvil(), entry)
    assert "baseFeePerGas" in chain.block("latest")
    store = LocalBlockStore(tmp_path / "ipfs")
    registrar, hospital, patient = dev_account(0), dev_account(3), dev_account(5)

    deployments.deploy(chain, registrar, registrars=[registrar.address], threshold=1)
    providers.apply_institution(chain, hospital, providers.InstitutionKind.HOSPITAL, "St Mary")
    providers.approve_institution(chain, registrar, hospital.address)
    providers.register_patient(chain, patient)
    providers.authorize_care(chain, patient, patient.address, hospital.address, None)
    (record,) = records.anchor(
        chain, store, hospital, patient.address,
        [records.Draft(OBSERVATION.read_bytes(), Category.LAB)],
    )  # fmt: skip

    assert records.read(chain, store, patient, record.id) == OBSERVATION.read_bytes()
    head = int(chain.request("eth_blockNumber", []), 16)
    blocks = [chain.request("eth_getBlockByNumber", [hex(n), True]) for n in range(1, head + 1)]
    kinds = [tx["type"] for block in blocks for tx in block["transactions"]]
    assert len(kinds) >= 10 and set(kinds) == {kind}
    if kind == "0x0":
        for block in blocks:  # a legacy price never below what the block charged
            for tx in block["transactions"]:
                assert int(tx["gasPrice"], 16) >= int(block["baseFeePerGas"], 16)


# --- the external signer -----------------------------------------------------------------------


class LegacySigner(StandInSigner):
    """The stand-in signer, also signing legacy requests (``gasPrice``, no ``maxFeePerGas``)
    as Web3Signer and Clef do: EIP-155 for the request's chain id. ``pre-eip155`` signs
    without the chain id (v 27/28); ``other-price`` signs another gas price."""

    def _sign_transaction(self, request: dict[str, Any], clef: bool) -> dict[str, Any]:
        if "gasPrice" not in request:
            return super()._sign_transaction(request, clef)
        account = self._account(request["from"])
        tx: dict[str, Any] = {
            "nonce": int(request["nonce"], 16), "gas": int(request["gas"], 16),
            "gasPrice": int(request["gasPrice"], 16), "value": int(request["value"], 16),
            "data": request["data"], "to": request.get("to", ""),
        }  # fmt: skip
        if self.mode != "pre-eip155":
            tx["chainId"] = int(request["chainId"], 16)
        if self.mode == "other-price":
            tx["gasPrice"] += 1
        raw = "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()
        return {"result": {"raw": raw, "tx": tx} if clef else raw}


@pytest.fixture
def legacy_signer() -> Iterator[LegacySigner]:
    server = LegacySigner(dev_account(3).key)
    yield server
    server.stop()


@pytest.mark.parametrize("mode", ["web3signer", "clef"], ids=["raw-hex", "clef-raw-and-tx"])
def test_a_signer_signs_legacy_transactions_a_berlin_chain_mines(
    anvil, tmp_path, monkeypatch, legacy_signer, mode
):
    legacy_signer.mode = mode
    chain = chain_at(tmp_path, monkeypatch, anvil("--hardfork", "berlin"))
    hospital = load_account(legacy_signer.spec(dev_account(3).address), 31337)

    receipts = pay(chain, hospital)

    txs = sent(chain, receipts)
    assert [r.status for r in receipts] == [1, 1]
    assert [tx["type"] for tx in txs] == ["0x0", "0x0"]
    assert all(is_eip155(tx, 31337) for tx in txs)
    local = [
        sign_legacy(dev_account(3).key, 31337, int(tx["nonce"], 16), tx["to"],
                    bytes.fromhex(tx["input"][2:]), int(tx["gas"], 16),
                    int(tx["gasPrice"], 16), 1).hex()
        for tx in txs
    ]  # fmt: skip
    raws = Rpc(chain.url).batch(
        [("eth_getRawTransactionByHash", [r.transaction_hash]) for r in receipts]
    )
    assert [reply["result"][2:] for reply in raws] == local


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("pre-eip155", "is not replay-protected for chain 31337 (EIP-155); nothing was sent"),
        ("other-price", "the signer returned another transaction than asked; nothing was sent"),
    ],
    ids=["without-chain-id", "another-gas-price"],
)
def test_a_legacy_transaction_the_signer_got_wrong_is_refused_and_nothing_is_sent(
    anvil, tmp_path, monkeypatch, legacy_signer, mode, message
):
    legacy_signer.mode = mode
    chain = chain_at(tmp_path, monkeypatch, anvil("--hardfork", "berlin"))
    hospital = load_account(legacy_signer.spec(dev_account(3).address), 31337)
    with pytest.raises(SignerRefused) as raised:
        pay(chain, hospital)
    assert str(raised.value).endswith(message) and "\n" not in str(raised.value)
    assert Rpc(chain.url).nonce(hospital.address, "pending") == 0
