"""A connection to one EVM chain: contracts, calls, the chain clock, and transactions with
readable reverts.

Every transaction goes through :class:`medledger.chain.pipeline.Pipeline` (signed locally, sent
raw, so any JSON-RPC endpoint works, including ones that hold no accounts) and comes back as its
one :class:`~medledger.chain.pipeline.Receipt` type. Before sending, the node estimates gas,
which runs the transaction: a revert then comes back as a decoded custom error
(``TransactionReverted``) and nothing is sent.
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
from hexbytes import HexBytes
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, Web3RPCError

from medledger.accounts import load_account
from medledger.chain import devnet
from medledger.chain.artifacts import all_error_abis, artifact
from medledger.chain.pipeline import Pipeline
from medledger.config import LOCAL_NETWORK
from medledger.errors import (
    ConfigurationError,
    NodeUnavailable,
    TransactionRejected,
    TransactionReverted,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from eth_account.signers.local import LocalAccount
    from web3.contract import Contract
    from web3.contract.contract import ContractFunction

    from medledger.chain.pipeline import Receipt
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
        #: What starting the devnet from an older state replayed (None: nothing to tell).
        self.restored: devnet.Restored | None = None
        if url is None:
            started = devnet.ensure_running(settings)
            url, self.restored = started.url, started.restored
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

    @property
    def embedded(self) -> bool:
        """True for this home's own devnet (snapshots and journal replay keep it durable)."""
        return self.settings.rpc_url_for(self.network) is None

    @cached_property
    def journal_key(self) -> str:
        """This chain's rows in the outbox: this home's devnet, or a chain id."""
        return devnet.JOURNAL_KEY if self.embedded else f"chain-{self.chain_id}"

    @property
    def confirmations(self) -> int:
        """Blocks a transaction must be under before it counts as written (1: its own)."""
        return 1 if self.embedded else self.settings.confirmations_for(self.network)

    def sent(self, count: int) -> None:
        """Told by the pipeline after each send: the embedded devnet may take a snapshot."""
        if self.embedded and count:
            devnet.after_send(self.settings)

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
    ) -> Receipt:
        """Send one contract call and return its receipt (see :meth:`send`)."""
        (receipt,) = self.send(action, account, [function], value=value)
        return receipt

    def send(
        self,
        action: str,
        account: LocalAccount,
        functions: Sequence[ContractFunction],
        gas: int | None = None,
        progress: Callable[[int], None] | None = None,
        value: int = 0,
    ) -> list[Receipt]:
        """Send contract calls from one account through the pipeline; return their receipts.

        The first call is estimated first, so a revert is decoded (``TransactionReverted``)
        before anything is sent; without ``gas``, each call's limit is its estimate with a
        margin. Every call goes to the same contract."""
        if not functions:
            return []
        to = functions[0].address
        payloads = [bytes(HexBytes(f._encode_transaction_data())) for f in functions]
        estimate = self.estimate(action, account, to, payloads[0], value)
        limit = gas if gas is not None else estimate + estimate // 4 + 10_000
        return Pipeline(self, account).send(action, to, payloads, limit, progress, value=value)

    def deploy(self, action: str, account: LocalAccount, name: str, *args: object) -> Receipt:
        """Deploy a packaged contract; the receipt's ``contract_address`` is its address."""
        compiled = artifact(name)
        factory = self.w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        data = bytes(HexBytes(factory.constructor(*args).data_in_transaction))
        estimate = self.estimate(action, account, None, data)
        return Pipeline(self, account).send(action, None, [data], estimate + estimate // 4)[0]

    def estimate(
        self, action: str, account: LocalAccount, to: str | None, data: bytes, value: int = 0
    ) -> int:
        """Run a transaction as a call and return its gas; a revert becomes a decoded
        ``TransactionReverted`` and nothing is sent."""
        tx: dict[str, Any] = {"from": account.address, "data": data, "value": value}
        if to is not None:
            tx["to"] = to
        try:
            return int(self.w3.eth.estimate_gas(tx))  # type: ignore[arg-type]
        except (ContractCustomError, ContractLogicError) as exc:
            raise self._reverted(action, exc) from None
        except Web3RPCError as exc:
            raise TransactionRejected.from_node(action, str(exc)) from None
        except (requests.RequestException, OSError) as exc:
            raise NodeUnavailable("chain RPC", self.url, type(exc).__name__) from None

    @staticmethod
    def _reverted(
        action: str, exc: ContractCustomError | ContractLogicError
    ) -> TransactionReverted:
        data = exc.data if isinstance(exc.data, str) else None
        if data is None and isinstance(exc, ContractLogicError) and exc.message:
            return TransactionReverted(action, exc.message.removeprefix("execution reverted: "))
        decoded = decode_revert(data)
        return TransactionReverted(action, decoded.name, decoded.args)
