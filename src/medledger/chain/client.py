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
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from eth_abi.abi import decode as abi_decode

from medledger.accounts import load_account
from medledger.addresses import checksum
from medledger.chain import devnet
from medledger.chain import outbox as journal
from medledger.chain.artifacts import all_error_abis, artifact
from medledger.chain.contracts import Contract, ContractCall, abi_type
from medledger.chain.pipeline import Pipeline, Rpc
from medledger.config import LOCAL_NETWORK
from medledger.errors import (
    ConfigurationError,
    NodeUnavailable,
    TransactionRejected,
    TransactionReverted,
)
from medledger.keccak import keccak

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from web3 import Web3

    from medledger.accounts import Signer
    from medledger.chain.pipeline import Receipt
    from medledger.config import Settings

RPC_TIMEOUT_SECONDS = 30
CALLS_PER_BATCH = 500  # eth_calls per JSON-RPC batch (hosted nodes cap batches near 1,000)
# What nodes put before a revert's reason, removed in this order: Anvil and Geth ("execution
# reverted: ..."), Hardhat Network ("Error: VM Exception while processing transaction: ...",
# "Error: Transaction reverted without a reason string").
_NODE_PREFIXES = ("Error: ", "VM Exception while processing transaction: ", "execution reverted: ")


@dataclass(frozen=True)
class DecodedError:
    """A custom error decoded from revert data."""

    name: str
    args: dict[str, object]


def _error_table() -> dict[bytes, tuple[str, list[str], list[str]]]:
    table: dict[bytes, tuple[str, list[str], list[str]]] = {}
    for item in all_error_abis():
        types = [abi_type(i) for i in item["inputs"]]
        selector = keccak(f"{item['name']}({','.join(types)})".encode())[:4]
        table[selector] = (item["name"], [i["name"] for i in item["inputs"]], types)
    return table


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
    entry = _errors().get(selector)
    if entry is None:
        return DecodedError(f"unknown error 0x{selector.hex()}", {})
    name, names, types = entry
    values = abi_decode(types, body)
    return DecodedError(name, {n: _display(v) for n, v in zip(names, values, strict=True)})


def _display(value: object) -> object:
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return checksum(value)
    return value


@cache
def _errors() -> dict[bytes, tuple[str, list[str], list[str]]]:
    return _error_table()


class Chain:
    """A chain reached through one JSON-RPC endpoint.

    Calls, estimates, blocks and logs go through :attr:`rpc` (the pipeline's JSON-RPC client);
    :attr:`w3`, a web3.py connection to the same node, is made only when a caller asks for it
    (a few slow paths and the tests), so a command that reads imports no web3."""

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
        self.rpc = Rpc(url)
        self._block_times: dict[int, datetime] = {}
        #: Per-connection memo for other modules (the validated deployment, for one).
        self.cache: dict[str, Any] = {}

    @cached_property
    def w3(self) -> Web3:
        """A web3.py connection to the same node (imported on first use)."""
        from web3 import Web3

        return Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": RPC_TIMEOUT_SECONDS}))

    def request(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC call's result; a node's error becomes ``NodeUnavailable`` naming it."""
        (reply,) = self.rpc.batch([(method, params)])
        if "error" in reply:
            message = str(reply["error"].get("message", reply["error"]))
            raise NodeUnavailable("chain RPC", self.url, f"{method}: {message}")
        return reply.get("result")

    @cached_property
    def chain_id(self) -> int:
        """The chain id the node reports (checked once, so a dead node fails early)."""
        return int(self.request("eth_chainId", []), 16)

    @cached_property
    def genesis_hash(self) -> str:
        """The hash of block 0 (lower-case hex), which with the chain id names the chain: one
        request per connection."""
        return str(self.block(0)["hash"]).lower()

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
        """This chain's rows in the outbox: this home's devnet, or a chain id and genesis hash
        (a chain reset under the same id, as a restarted test node is, is another chain: what
        was signed for the old one is never sent to it). Rows of versions that named a chain
        by its id alone are taken over by the first chain of that id seen."""
        if self.embedded:
            return devnet.JOURNAL_KEY
        key = f"chain-{self.chain_id}-{self.genesis_hash[2:10]}"
        journal.open_outbox(self.settings.home).adopt(f"chain-{self.chain_id}", key)
        return key

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

    def block(self, number: int | str) -> dict[str, Any]:
        """A block's header fields as the node sends them (hex strings), by number or tag."""
        tag = hex(number) if isinstance(number, int) else number
        found = self.request("eth_getBlockByNumber", [tag, False])
        if found is None:
            raise NodeUnavailable("chain RPC", self.url, f"block {number} is not served")
        return dict(found)

    def code(self, address: str) -> bytes:
        """The code deployed at ``address`` (empty: none)."""
        return bytes.fromhex(str(self.request("eth_getCode", [address, "latest"]))[2:])

    def now(self) -> datetime:
        """The latest block's time (the clock the contracts judge by); read fresh, never
        cached, because a revert or reorg can replace the latest block."""
        return datetime.fromtimestamp(int(self.block("latest")["timestamp"], 16), tz=UTC)

    def block_time(self, number: int) -> datetime:
        """Return a block's timestamp (cached: a mined block's time never changes)."""
        if number not in self._block_times:
            stamp = int(self.block(number)["timestamp"], 16)
            self._block_times[number] = datetime.fromtimestamp(stamp, tz=UTC)
        return self._block_times[number]

    def account(self, spec: str | None) -> Signer:
        """Resolve ``--account`` (default: the setting, or ``dev:0`` on a devnet)."""
        chosen = spec or self.settings.default_account
        if chosen is None:
            if not self.is_devnet:
                raise ConfigurationError("--account", "required on a network that is not a devnet")
            chosen = "dev:0"
        return load_account(chosen, self.chain_id, self.settings.signers)

    def contract(self, name: str, address: str) -> Contract:
        """Return a deployed contract (its functions called or sent through this chain)."""
        return Contract(self, name, address)

    def call(self, action: str, function: ContractCall) -> Any:
        """Call a view function; a revert becomes ``TransactionReverted``."""
        return function.call(action)

    def call_many(self, action: str, functions: Sequence[ContractCall]) -> list[Any]:
        """Call many view functions in one JSON-RPC batch (at the latest block each); the
        first revert becomes ``TransactionReverted``."""
        found: list[Any] = []
        for start in range(0, len(functions), CALLS_PER_BATCH):
            chunk = functions[start : start + CALLS_PER_BATCH]
            replies = self.rpc.batch([
                ("eth_call", [{"to": f.address, "data": "0x" + f.data.hex()}, "latest"])
                for f in chunk
            ])  # fmt: skip
            for function, reply in zip(chunk, replies, strict=True):
                if "error" in reply:
                    raise self._refused(action, reply["error"])
                found.append(function.decode(bytes.fromhex(str(reply["result"])[2:])))
        return found

    def eth_call(self, action: str, to: str, data: bytes) -> bytes:
        """Run calldata against ``to`` at the latest block and return the raw result; a revert
        becomes a decoded ``TransactionReverted``."""
        tx = {"to": to, "data": "0x" + data.hex()}
        (reply,) = self.rpc.batch([("eth_call", [tx, "latest"])])
        if "error" in reply:
            raise self._refused(action, reply["error"])
        return bytes.fromhex(str(reply["result"])[2:])

    def transact(
        self, action: str, account: Signer, function: ContractCall, value: int = 0
    ) -> Receipt:
        """Send one contract call and return its receipt (see :meth:`send`)."""
        (receipt,) = self.send(action, account, [function], value=value)
        return receipt

    def send(
        self,
        action: str,
        account: Signer,
        functions: Sequence[ContractCall],
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
        payloads = [f.data for f in functions]
        estimate = self.estimate(action, account, to, payloads[0], value)
        limit = gas if gas is not None else estimate + estimate // 4 + 10_000
        return Pipeline(self, account).send(action, to, payloads, limit, progress, value=value)

    def deploy(self, action: str, account: Signer, name: str, *args: object) -> Receipt:
        """Deploy a packaged contract; the receipt's ``contract_address`` is its address."""
        from eth_abi.abi import encode as abi_encode

        compiled = artifact(name)
        constructor = next((e for e in compiled.abi if e.get("type") == "constructor"), None)
        types = [abi_type(i) for i in constructor["inputs"]] if constructor else []
        data = bytes.fromhex(compiled.bytecode[2:]) + abi_encode(types, list(args))
        estimate = self.estimate(action, account, None, data)
        return Pipeline(self, account).send(action, None, [data], estimate + estimate // 4)[0]

    def estimate(
        self, action: str, account: Signer | None, to: str | None, data: bytes, value: int = 0
    ) -> int:
        """Run a transaction as a call and return its gas; a revert becomes a decoded
        ``TransactionReverted`` and nothing is sent."""
        tx: dict[str, Any] = {"data": "0x" + data.hex(), "value": hex(value)}
        if account is not None:
            tx["from"] = account.address
        if to is not None:
            tx["to"] = to
        (reply,) = self.rpc.batch([("eth_estimateGas", [tx])])
        if "error" in reply:
            raise self._refused(action, reply["error"])
        return int(reply["result"], 16)

    @staticmethod
    def _refused(action: str, error: dict[str, Any]) -> TransactionReverted | TransactionRejected:
        """A node's error for a call or an estimate: a revert (decoded custom error, or the
        node's reason) or a refusal (nonce, funds, fees) in the node's words."""
        message = str(error.get("message", error))
        data = error.get("data")
        if isinstance(data, dict):  # some nodes nest it
            data = data.get("data")
        if isinstance(data, str) and len(data) >= 10:
            decoded = decode_revert(data)
            return TransactionReverted(action, decoded.name, decoded.args)
        if "revert" in message.lower():
            for prefix in _NODE_PREFIXES:
                message = message.removeprefix(prefix)
            return TransactionReverted(action, message)
        return TransactionRejected.from_node(action, message)
