"""A connection to one EVM chain: contracts, calls and transactions with readable reverts.

Transactions are signed locally (eth-account) and sent raw, so any JSON-RPC endpoint works,
including ones that hold no accounts. Before sending, the node estimates gas, which runs the
transaction: a revert then comes back as a decoded custom error (``TransactionReverted``) and
nothing is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from medledger import devnet
from medledger.accounts import load_account
from medledger.artifacts import all_error_abis, artifact
from medledger.config import LOCAL_NETWORK
from medledger.errors import ConfigurationError, NodeUnavailable, TransactionReverted

if TYPE_CHECKING:
    from collections.abc import Callable

    from eth_account.signers.local import LocalAccount
    from web3.contract import Contract
    from web3.contract.contract import ContractFunction
    from web3.types import TxReceipt

    from medledger.config import Settings

RPC_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class DecodedError:
    """A custom error decoded from revert data."""

    name: str
    args: dict[str, object]


def _error_table() -> dict[bytes, tuple[str, list[str], list[str]]]:
    table: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for item in all_error_abis():
        types = [_abi_type(i) for i in item["inputs"]]
        selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
        table[selector] = (item["name"], [i["name"] for i in item["inputs"]], types)
    return table


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


def decode_revert(data: bytes | str | None) -> DecodedError:
    """Decode revert data into a named custom error (or Solidity's Error/Panic)."""
    raw = (
        bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if isinstance(data, str)
        else (data or b"")
    )
    if len(raw) < 4:
        return DecodedError("revert without reason", {})
    selector, body = raw[:4], raw[4:]
    if selector == bytes.fromhex("08c379a0"):
        return DecodedError("Error", {"message": abi_decode(["string"], body)[0]})
    if selector == bytes.fromhex("4e487b71"):
        return DecodedError("Panic", {"code": hex(abi_decode(["uint256"], body)[0])})
    entry = _ERRORS.get(selector)
    if entry is None:
        return DecodedError(f"unknown error 0x{selector.hex()}", {})
    name, names, types = entry
    values = abi_decode(types, body)
    return DecodedError(name, {n: _display(v) for n, v in zip(names, values, strict=True)})


def _display(value: object) -> object:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    return value


_ERRORS = _error_table()


class Chain:
    """A chain reached through one JSON-RPC endpoint."""

    def __init__(self, settings: Settings, network: str | None = None) -> None:
        self.settings = settings
        self.network = network or settings.default_network
        url = settings.rpc_url_for(self.network)
        if url is None:
            url = devnet.ensure_running(settings).url
        self.url = url
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": RPC_TIMEOUT_SECONDS}))
        self._block_times: dict[int, datetime] = {}
        #: Per-connection memo for other modules (the validated deployment, for one).
        self.cache: dict[str, Any] = {}

    @cached_property
    def chain_id(self) -> int:
        """The chain id the node reports (checked once, so a dead node fails early)."""
        try:
            return int(self.w3.eth.chain_id)
        except (requests.RequestException, OSError) as exc:
            raise NodeUnavailable("chain RPC", self.url, type(exc).__name__) from None

    @property
    def is_devnet(self) -> bool:
        """True for the embedded devnet (or another local test chain)."""
        return self.network == LOCAL_NETWORK or self.chain_id in (31337, 1337)

    def forget_blocks(self) -> None:
        """Drop cached block times (after a devnet revert or a reorg replaced blocks)."""
        self._block_times.clear()

    def now(self) -> datetime:
        """The latest block's time (the clock the contracts judge by); read fresh, never
        cached, because a revert or reorg can replace the latest block."""
        return datetime.fromtimestamp(int(self.w3.eth.get_block("latest")["timestamp"]), tz=UTC)

    def block_time(self, number: int) -> datetime:
        """Return a block's timestamp (cached: a mined block's time never changes)."""
        if number not in self._block_times:
            block = self.w3.eth.get_block(number)
            self._block_times[number] = datetime.fromtimestamp(int(block["timestamp"]), tz=UTC)
        return self._block_times[number]

    def account(self, spec: str | None) -> LocalAccount:
        """Resolve ``--account`` (default: the setting, or ``dev:0`` on a devnet)."""
        chosen = spec or self.settings.default_account
        if chosen is None:
            if not self.is_devnet:
                raise ConfigurationError("--account", "required on a network that is not a devnet")
            chosen = "dev:0"
        return load_account(chosen, self.chain_id)

    def contract(self, name: str, address: str) -> Contract:
        """Return a web3 contract object for a deployed contract."""
        return self.w3.eth.contract(address=to_checksum_address(address), abi=artifact(name).abi)

    def call(self, action: str, function: ContractFunction) -> Any:
        """Call a view function; a revert becomes ``TransactionReverted``."""
        try:
            return function.call()
        except (ContractCustomError, ContractLogicError) as exc:
            raise self._reverted(action, exc) from None
        except (requests.RequestException, OSError) as exc:
            raise NodeUnavailable("chain RPC", self.url, type(exc).__name__) from None

    def transact(
        self, action: str, account: LocalAccount, function: ContractFunction, value: int = 0
    ) -> TxReceipt:
        """Sign and send a contract call, wait for its receipt, and return it."""
        params: dict[str, Any] = {"from": account.address, "chainId": self.chain_id, "value": value}
        try:
            params["nonce"] = self.w3.eth.get_transaction_count(account.address, "pending")
            tx = dict(function.build_transaction(params))  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError) as exc:
            raise self._reverted(action, exc) from None
        except (requests.RequestException, OSError) as exc:
            raise NodeUnavailable("chain RPC", self.url, type(exc).__name__) from None
        # The estimate is exact for the state it ran on; the block the transaction lands in
        # may differ (a timestamp, a slot another transaction warmed or cleared): a margin.
        tx["gas"] = int(tx["gas"]) + int(tx["gas"]) // 4 + 10_000
        return self.send_signed(action, account, tx)

    def deploy(self, action: str, account: LocalAccount, name: str, *args: object) -> TxReceipt:
        """Deploy a packaged contract; the receipt's ``contractAddress`` is its address."""
        compiled = artifact(name)
        factory = self.w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        params: dict[str, Any] = {"from": account.address, "chainId": self.chain_id}
        try:
            params["nonce"] = self.w3.eth.get_transaction_count(account.address, "pending")
            tx = factory.constructor(*args).build_transaction(params)
        except (ContractCustomError, ContractLogicError) as exc:
            raise self._reverted(action, exc) from None
        return self.send_signed(action, account, dict(tx))

    def dry_run(self, action: str, account: LocalAccount, to: str, data: bytes) -> None:
        """Run a transaction as a call; a revert becomes a decoded ``TransactionReverted``."""
        try:
            self.w3.eth.estimate_gas({"from": account.address, "to": to, "data": data})
        except (ContractCustomError, ContractLogicError) as exc:
            raise self._reverted(action, exc) from None
        except (requests.RequestException, OSError) as exc:
            raise NodeUnavailable("chain RPC", self.url, type(exc).__name__) from None

    def transact_many(
        self,
        action: str,
        account: LocalAccount,
        functions: list[ContractFunction],
        gas: int,
        progress: Callable[[int], None] | None = None,
    ) -> list[TxReceipt]:
        """Send many calls from one account, pipelined: sign all, send all, then collect.

        The caller has checked preconditions; the first call is estimated (so a revert is
        decoded before anything is sent) and every transaction gets ``gas`` as its limit.
        """
        if not functions:
            return []
        try:
            self.w3.eth.estimate_gas(
                {"from": account.address, "to": functions[0].address,
                 "data": functions[0]._encode_transaction_data()}
            )  # fmt: skip
            nonce = self.w3.eth.get_transaction_count(account.address, "pending")
            base_fee = int(self.w3.eth.get_block("latest")["baseFeePerGas"])
            tip = int(self.w3.eth.max_priority_fee)
        except (ContractCustomError, ContractLogicError) as exc:
            raise self._reverted(action, exc) from None
        except (requests.RequestException, OSError) as exc:
            raise NodeUnavailable("chain RPC", self.url, type(exc).__name__) from None
        hashes = []
        for offset, function in enumerate(functions):
            tx = {
                "from": account.address, "to": function.address, "nonce": nonce + offset,
                "data": function._encode_transaction_data(),
                "gas": gas, "chainId": self.chain_id, "type": 2,
                "maxFeePerGas": 2 * base_fee + tip, "maxPriorityFeePerGas": tip, "value": 0,
            }  # fmt: skip
            signed = account.sign_transaction(tx)
            try:
                hashes.append(self.w3.eth.send_raw_transaction(signed.raw_transaction))
            except Web3RPCError as exc:
                raise TransactionReverted(
                    action, "rejected by the node", {"reason": str(exc)}
                ) from None
        receipts = []
        for tx_hash in hashes:
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=300)
            if receipt["status"] != 1:
                raise TransactionReverted(action, "reverted after sending", {"tx": tx_hash.hex()})
            receipts.append(receipt)
            if progress is not None:
                progress(1)
        return receipts

    def send_signed(self, action: str, account: LocalAccount, tx: dict[str, Any]) -> TxReceipt:
        """Sign a built transaction, send it, and wait for a successful receipt."""
        signed = account.sign_transaction(tx)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120)
        except Web3RPCError as exc:
            raise TransactionReverted(
                action, "rejected by the node", {"reason": str(exc)}
            ) from None
        except (requests.RequestException, OSError) as exc:
            raise NodeUnavailable("chain RPC", self.url, type(exc).__name__) from None
        if receipt["status"] != 1:
            raise TransactionReverted(action, "reverted after sending", {"tx": tx_hash.hex()})
        return receipt

    @staticmethod
    def _reverted(
        action: str, exc: ContractCustomError | ContractLogicError
    ) -> TransactionReverted:
        data = exc.data if isinstance(exc.data, str) else None
        if data is None and isinstance(exc, ContractLogicError) and exc.message:
            return TransactionReverted(action, exc.message.removeprefix("execution reverted: "))
        decoded = decode_revert(data)
        return TransactionReverted(action, decoded.name, decoded.args)
