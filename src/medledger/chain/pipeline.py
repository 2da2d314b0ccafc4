"""The one transaction sender: local signing, nonces for many transactions in flight, batched
JSON-RPC for sending and for receipts, and the one :class:`Receipt` type.

Every transaction of the package goes through :class:`Pipeline` (``Chain.transact``,
``Chain.send`` and ``Chain.deploy`` are thin doors to it). It goes below web3.py's per-call API
because per-call HTTP round trips and result formatting, not the chain, are what limit
anchoring throughput: calldata is encoded with eth-abi, and raw JSON-RPC batches (one HTTP
request per chunk of transactions) carry the signed transactions to the node and bring the
receipts back.

Transactions are EIP-1559 (type 2) where the latest block carries a base fee, legacy (type 0,
EIP-155 replay protection, priced by ``eth_gasPrice``) where it carries none (pre-London and
many consortium chains); a network's ``fee_market`` in config.toml overrides what the block
says (see :mod:`medledger.networks`). Both are RLP-encoded with ``rlp`` and signed with
``coincurve``: the same bytes ``eth_account``'s ``sign_transaction`` produces (RFC 6979
signatures are deterministic; tests compare them under hypothesis), in about 150 us instead of
1,200 us, which eth-account spends in its typed-transaction validation layers. At 500
transactions a second the difference is most of a core. A network's configured ``chain_id``
is checked against the node's before anything is signed.

Retries never send a record twice: a retry re-sends the *same* signed transaction (same nonce,
same hash), which a node either already has ("already known") or mines once; and record ids
commit to their content, so even a transaction signed anew for the same record would revert
with ``RecordAlreadyAnchored``.

An account whose key stays in an external signer (:mod:`medledger.signers`) is asked for each
transaction's signature instead (one JSON-RPC call each, the answer checked against the
transaction asked for and the account's address), all before any is sent; from there on its
transactions take the same path.

Every signed transaction is committed to the :mod:`~medledger.chain.outbox` before it is sent,
and a send holds its account's lock from the nonce it reads to the receipts it awaits, so two
commands from one account (or one home) take turns instead of taking the same nonces. Before
signing anything new, a send settles what an interrupted send of the same account left behind.
"""

from __future__ import annotations

import contextlib
import functools
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import coincurve
import requests
from eth_abi.encoding import TupleEncoder
from eth_abi.registry import registry as abi_registry
from rlp.codec import encode_raw  # type: ignore[import-untyped]

from medledger.chain import failpoints
from medledger.chain import outbox as journal
from medledger.errors import (
    ConfigurationError,
    NodeUnavailable,
    Notice,
    TransactionRejected,
    TransactionReverted,
)
from medledger.httpsession import session_for
from medledger.keccak import keccak
from medledger.signers import ExternalSigner

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.networks import FeeMarket

CHUNK = 250
RECEIPT_TIMEOUT_SECONDS = 300.0
# Re-send only after 10 s without a new receipt: at 2 s a slow node was sent the same 250
# transactions again and again ("already imported"), adding load to it. This did not cure the
# growth benchmark's slow Anvil runs (7-17 tx/s, seen with both settings): that cause is open.
_RESEND_AFTER_SECONDS = 10.0
_POLL_SECONDS = 0.01
_SWEEP_SECONDS = 0.25
_RETRIES = 6  # connection retries, 0.1 s doubling: about 6 s (a devnet restart and replay)
# While a send mines its own windows, the devnet also mines every 3 s (see windows_mined). Not
# 1 s: Anvil (1.7.1) raises its in-memory state history to 1,500 blocks, whatever
# --prune-history says, once interval mining of 2 s or less is set, and never lowers it again;
# it keeps a full copy of the state per block, so a growth fill reached 15 GB at ~1,350 blocks
# and 60,000 records. With 3 s the devnet's limit holds (0.65 GB at 40,000 records, not 2.9).
_FALLBACK_INTERVAL_SECONDS = 3


@dataclass(frozen=True)
class Receipt:
    """A mined transaction: what callers use of its receipt (events through
    :func:`medledger.chain.events.from_receipt`)."""

    transaction_hash: str
    block_number: int
    block_timestamp: int | None
    gas_used: int
    status: int
    logs: tuple[dict[str, Any], ...]
    to: str | None = None
    contract_address: str | None = None


@functools.lru_cache(maxsize=256)
def selector(signature: str) -> bytes:
    """The 4-byte selector of ``name(type,...)``."""
    return keccak(signature.encode())[:4]


@functools.lru_cache(maxsize=256)
def _encoder(types: tuple[str, ...]) -> TupleEncoder:
    # eth-abi's own encoders, looked up once: ``eth_abi.encode`` parses and validates the type
    # strings on every call, which was two thirds of its 42 us per anchor.
    return TupleEncoder(encoders=[abi_registry.get_encoder(t) for t in types])  # type: ignore[no-untyped-call]


def calldata(signature: str, types: Sequence[str], args: Sequence[object]) -> bytes:
    """Encode a call with eth-abi (much cheaper per call than web3's contract functions)."""
    return selector(signature) + bytes(_encoder(tuple(types))(list(args)))


def _word(number: int) -> bytes:
    """An RLP integer: big-endian bytes without leading zeros (zero is the empty string)."""
    return number.to_bytes((number.bit_length() + 7) // 8, "big")


def sign_eip1559(
    private_key: bytes | coincurve.PrivateKey, chain_id: int, nonce: int, to: str | None,
    data: bytes, gas: int, max_fee: int, tip: int, value: int = 0,
) -> bytes:  # fmt: skip
    """Return the raw signed type-2 transaction (no access list; ``to`` None creates a
    contract). Pass a ``coincurve.PrivateKey`` to sign many: making one costs 80 us."""
    key = (
        private_key
        if isinstance(private_key, coincurve.PrivateKey)
        else coincurve.PrivateKey(private_key)
    )
    target = b"" if to is None else bytes.fromhex(to[2:])
    # rlp's encode_raw on fields already in bytes: rlp.encode infers a serializer for every
    # field of every transaction (50 us each time); the result is the same bytes.
    fields = [_word(chain_id), _word(nonce), _word(tip), _word(max_fee), _word(gas), target,
              _word(value), data, []]  # fmt: skip
    signature = key.sign_recoverable(keccak(b"\x02" + encode_raw(fields)), hasher=None)
    v, r, s = signature[64], signature[:32], signature[32:64]
    return b"\x02" + bytes(encode_raw([*fields, _word(v), r.lstrip(b"\0"), s.lstrip(b"\0")]))


def sign_legacy(
    private_key: bytes | coincurve.PrivateKey, chain_id: int, nonce: int, to: str | None,
    data: bytes, gas: int, gas_price: int, value: int = 0,
) -> bytes:  # fmt: skip
    """Return the raw signed legacy (type 0) transaction, replay-protected for ``chain_id``
    (EIP-155: the chain id is signed, and ``v`` is ``35 + 2 * chain_id`` plus the recovery id);
    ``to`` None creates a contract."""
    key = (
        private_key
        if isinstance(private_key, coincurve.PrivateKey)
        else coincurve.PrivateKey(private_key)
    )
    target = b"" if to is None else bytes.fromhex(to[2:])
    fields = [_word(nonce), _word(gas_price), _word(gas), target, _word(value), data]
    signature = key.sign_recoverable(
        keccak(encode_raw([*fields, _word(chain_id), b"", b""])), hasher=None
    )
    v, r, s = signature[64] + 35 + 2 * chain_id, signature[:32], signature[32:64]
    return bytes(encode_raw([*fields, _word(v), r.lstrip(b"\0"), s.lstrip(b"\0")]))


@dataclass(frozen=True)
class Fees:
    """What every transaction of one send offers per gas."""

    market: FeeMarket
    #: The max fee per gas (type 2) or the gas price (legacy).
    price: int
    #: The max priority fee per gas (type 2 only).
    tip: int = 0


def sign(
    key: coincurve.PrivateKey, chain_id: int, nonce: int, to: str | None, data: bytes, gas: int,
    fees: Fees, value: int = 0,
) -> bytes:  # fmt: skip
    """The raw signed transaction of the fee market ``fees`` are for."""
    if fees.market == "legacy":
        return sign_legacy(key, chain_id, nonce, to, data, gas, fees.price, value)
    return sign_eip1559(key, chain_id, nonce, to, data, gas, fees.price, fees.tip, value)


def tx_hash(raw: str) -> str:
    """The hash of a raw signed transaction (``0x``-hex)."""
    return "0x" + keccak(bytes.fromhex(raw[2:])).hex()


class Rpc:
    """Batched JSON-RPC to one node: sending raw transactions and collecting their receipts."""

    def __init__(self, url: str, mines: bool = False) -> None:
        self.url = url
        #: The node is this home's devnet: a send of many transactions mines them a window per
        #: block (see :meth:`windows_mined`) instead of a block per transaction.
        self.mines = mines
        self._session = session_for(url)
        self._next_id = 0

    def submit(
        self,
        action: str,
        raws: Sequence[str],
        progress: Callable[[int], None] | None = None,
        timeout: float = RECEIPT_TIMEOUT_SECONDS,
    ) -> list[Receipt]:
        """Send signed transactions (at most CHUNK in flight) and return their receipts, in
        order. A node that already has one ("already known") is not an error."""
        # A window is sent, then its receipts collected, before the next is sent. Thousands
        # pending at once stalled Anvil's pool in our runs.
        receipts: list[Receipt] = []
        mining = self.windows_mined() if self.mines and len(raws) > 1 else contextlib.nullcontext()
        with mining:
            for start in range(0, len(raws), CHUNK):
                chunk = raws[start : start + CHUNK]
                replies = self.batch([("eth_sendRawTransaction", [raw]) for raw in chunk])
                replies = self._gaps_sent_again(chunk, replies)
                failpoints.reach("after-send")
                hashes = [
                    sent_hash(action, raw, reply, self)
                    for raw, reply in zip(chunk, replies, strict=True)
                ]
                window = dict(zip(hashes, chunk, strict=True))
                receipts.extend(self.receipts(action, window, progress, timeout))
        return receipts

    def _gaps_sent_again(
        self, chunk: Sequence[str], replies: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Send again, alone and in nonce order, the transactions a node refused as a nonce gap.

        Hardhat Network answers a batch's requests in no fixed order and, while it mines a block
        per transaction, queues none ahead of its predecessors ("Nonce too high ... can't be
        queued when automining"): what it took is a prefix of the window (each of its blocks
        holds the next nonce), so the rest, sent after it one by one, are taken. A node that
        queues (Anvil, Geth) never answers so; a real gap is refused again and reported.
        """
        answered = list(replies)
        for index, reply in enumerate(replies):
            if "nonce too high" in str(reply.get("error", "")).lower():
                (answered[index],) = self.batch([("eth_sendRawTransaction", [chunk[index]])])
        return answered

    @contextlib.contextmanager
    def windows_mined(self) -> Iterator[None]:
        """Mine each window of transactions in one block, on this home's devnet.

        Anvil mines a block per transaction by default, and each block costs it more the longer
        the chain: pre-signed anchors fell from about 1,300 to 140 a second within 2,000 blocks
        here, while one block per window of 250 kept about 1,500 a second over 14,000. Real
        networks put many transactions in a block too. Instant mining comes back at the end;
        meanwhile the devnet also mines every 3 seconds, so other commands never wait long; a
        command killed here leaves a devnet that still mines every second, until the next send
        of any account restores instant mining (:meth:`Pipeline._fees_and_nonce`).
        """
        self.batch([("evm_setIntervalMining", [_FALLBACK_INTERVAL_SECONDS])])
        try:
            yield
        finally:
            # evm_mine after the switch: a transaction another command sent in between is mined
            # now, not when the next one arrives.
            self.batch([("evm_setAutomine", [True])])
            self.batch([("evm_mine", [])])

    def receipts(
        self,
        action: str,
        raws: dict[str, str],
        progress: Callable[[int], None] | None = None,
        timeout: float = RECEIPT_TIMEOUT_SECONDS,
    ) -> list[Receipt]:
        """Collect receipts in batches; re-send the same signed transactions if they stall."""
        hashes = list(raws)
        found: dict[str, Receipt] = {}
        deadline = time.monotonic() + timeout
        last_progress = time.monotonic()
        last_sweep = 0.0
        mine = self.mines and len(hashes) > 1  # mine the window (see windows_mined)
        while len(found) < len(hashes):
            pending = [h for h in hashes if h not in found][:CHUNK]
            fresh = 0
            if mine:
                self.batch([("evm_mine", [])])
                mine = False
            # Probe the window's first and last transaction: one sender's transactions are
            # mined in nonce order. Asking for every receipt on every poll kept the node busy
            # answering instead of mining (throughput fell to 130 tx/s after 10,000 blocks).
            first, last = self.batch([
                ("eth_getTransactionReceipt", [pending[0]]),
                ("eth_getTransactionReceipt", [pending[-1]]),
            ])  # fmt: skip
            swept = time.monotonic() - last_sweep > _SWEEP_SECONDS
            if last.get("result") or (first.get("result") and swept):
                last_sweep = time.monotonic()
                for tx_hash_, receipt in self.find_receipts(pending).items():
                    found[tx_hash_] = receipt
                    fresh += 1
            if progress is not None and fresh:
                progress(fresh)
            now = time.monotonic()
            if fresh:
                last_progress = now
                mine = self.mines and len(hashes) > 1  # the rest did not fit in that block
                continue
            if now > deadline:
                raise NodeUnavailable("chain RPC", self.url, "receipts did not arrive")
            if now - last_progress > _RESEND_AFTER_SECONDS:
                # A node may drop transactions (restart, pool eviction). Re-sending the very
                # same signed transactions cannot duplicate anything: same nonces, same hashes.
                stalled = [h for h in hashes if h not in found][:CHUNK]
                replies = self.batch([("eth_sendRawTransaction", [raws[h]]) for h in stalled])
                for tx_hash_, reply in zip(stalled, replies, strict=True):
                    error = str(reply.get("error", "")).lower()
                    if "error" in reply and "already" not in error and "nonce too low" not in error:
                        sent_hash(action, raws[tx_hash_], reply, self)  # raises, saying why
                last_progress = now
                mine = self.mines and len(hashes) > 1
            time.sleep(_POLL_SECONDS)
        return [found[h] for h in hashes]

    def find_receipts(self, hashes: Sequence[str]) -> dict[str, Receipt]:
        """The receipts the node has for these transactions (absent ones are left out)."""
        found: dict[str, Receipt] = {}
        for start in range(0, len(hashes), CHUNK):
            chunk = hashes[start : start + CHUNK]
            replies = self.batch([("eth_getTransactionReceipt", [h]) for h in chunk])
            for tx_hash_, reply in zip(chunk, replies, strict=True):
                if reply.get("result"):
                    found[tx_hash_] = _receipt(reply["result"])
        return found

    def nonce(self, address: str, block: str = "latest") -> int:
        """The account's transaction count at ``block`` ("latest" or "pending")."""
        (reply,) = self.batch([("eth_getTransactionCount", [address, block])])
        return int(reply["result"], 16)

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        """One JSON-RPC batch request; results in call order. Retries connection failures."""
        body = []
        for method, params in calls:
            self._next_id += 1
            body.append({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        for attempt in range(_RETRIES + 1):
            try:
                reply = self._session.post(self.url, json=body, timeout=60)
                reply.raise_for_status()
                by_id = {item["id"]: item for item in reply.json()}
                return [by_id[item["id"]] for item in body]
            except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
                if attempt == _RETRIES:
                    raise NodeUnavailable("chain RPC", self.url, type(exc).__name__) from None
                time.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")


class Pipeline:
    """Sends many transactions from one account to one node, pipelined, through the outbox."""

    def __init__(self, chain: Chain, account: Signer) -> None:
        self.chain = chain
        self.account = account
        self.rpc = Rpc(chain.url, mines=chain.embedded)
        self.outbox = journal.open_outbox(chain.settings.home)

    def send(
        self,
        action: str,
        to: str | None,
        payloads: Sequence[bytes],
        gas: int,
        progress: Callable[[int], None] | None = None,
        value: int = 0,
    ) -> list[Receipt]:
        """Sign and send one transaction per payload (to ``to``, or creating a contract when
        None); return their receipts, in order, once each is durable (see the module)."""
        if not payloads:
            return []
        chain_id = self._chain_id()
        key = self.chain.journal_key
        sender = self.account.address
        with self.outbox.sender_lock(key, sender):
            settle(self.rpc, self.outbox, key, sender)
            nonce, fees = self._fees_and_nonce()
            if isinstance(self.account, ExternalSigner):
                # One JSON-RPC call per transaction, each checked; all before any is sent.
                self.account.check()
                raws = [
                    "0x" + self._external(chain_id, nonce + i, to, data, gas, fees, value).hex()
                    for i, data in enumerate(payloads)
                ]
            else:
                secret = coincurve.PrivateKey(bytes(self.account.key))
                raws = [
                    "0x" + sign(secret, chain_id, nonce + i, to, data, gas, fees, value).hex()
                    for i, data in enumerate(payloads)
                ]
            hashes = [tx_hash(raw) for raw in raws]
            self.outbox.add(
                key, sender, action, zip(hashes, range(nonce, nonce + len(raws)), raws, strict=True)
            )
            failpoints.reach("after-journal")
            receipts = self.rpc.submit(action, raws, progress)
            self.outbox.mined(
                key, [(r.transaction_hash, r.block_number, r.status) for r in receipts]
            )
            receipts = self._confirmed(action, dict(zip(hashes, raws, strict=True)), receipts)
        failpoints.reach("after-mined")
        self.chain.sent(len(receipts))
        for receipt in receipts:
            if receipt.status != 1:
                raise TransactionReverted(
                    action, "reverted after sending", {"tx": receipt.transaction_hash}
                )
        return receipts

    def settle(self) -> Settled:
        """Settle what an interrupted send of this account left unmined (see :func:`settle`)."""
        with self.outbox.sender_lock(self.chain.journal_key, self.account.address):
            return settle(self.rpc, self.outbox, self.chain.journal_key, self.account.address)

    def _confirmed(
        self, action: str, raws: dict[str, str], receipts: list[Receipt]
    ) -> list[Receipt]:
        """Wait for the network's confirmations (1: the receipt is enough); a transaction a
        reorganisation took out is sent again (the same signed bytes) and awaited anew."""
        depth = self.chain.confirmations
        deadline = time.monotonic() + RECEIPT_TIMEOUT_SECONDS
        while depth > 1:
            head = int(self.rpc.batch([("eth_blockNumber", [])])[0]["result"], 16)
            if head >= max(r.block_number for r in receipts) + depth - 1:
                current = self.rpc.find_receipts(list(raws))
                lost = {h: raw for h, raw in raws.items() if h not in current}
                if not lost and all(
                    current[r.transaction_hash].block_number == r.block_number for r in receipts
                ):
                    return receipts
                again = self.rpc.receipts(action, lost) if lost else []
                current.update({r.transaction_hash: r for r in again})
                receipts = [current[h] for h in raws]
                self.outbox.mined(
                    self.chain.journal_key,
                    [(r.transaction_hash, r.block_number, r.status) for r in receipts],
                )
            if time.monotonic() > deadline:
                raise NodeUnavailable("chain RPC", self.chain.url, "confirmations did not come")
            time.sleep(1.0)
        return receipts

    def _external(
        self, chain_id: int, nonce: int, to: str | None, data: bytes, gas: int, fees: Fees,
        value: int,
    ) -> bytes:  # fmt: skip
        assert isinstance(self.account, ExternalSigner)
        if fees.market == "legacy":
            return self.account.sign_legacy(chain_id, nonce, to, data, gas, fees.price, value)
        return self.account.sign_eip1559(
            chain_id, nonce, to, data, gas, fees.price, fees.tip, value
        )

    def _chain_id(self) -> int:
        """The node's chain id, refused (one line, nothing sent) when the network's
        configuration (``chain_id``, or its profile's) names another."""
        actual = self.chain.chain_id
        entry = None if self.chain.embedded else self.chain.settings.network_for(self.chain.network)
        if entry is not None and entry.chain_id is not None and entry.chain_id != actual:
            named = f" (profile {entry.profile!r})" if entry.profile else ""
            raise ConfigurationError(
                f"config.toml [networks.{entry.name}]",
                f"expects chain id {entry.chain_id}{named} but its rpc node is on chain "
                f"{actual}: fix rpc (or chain_id); nothing was sent",
            )
        return actual

    def _fees_and_nonce(self) -> tuple[int, Fees]:
        """The next nonce and the fees, from one batch: the latest block says the fee market
        (a base fee: EIP-1559) unless the network's ``fee_market`` says it.

        Type 2 offers twice the base fee plus the tip, so a window of many transactions
        signed now still gets in while the base fee rises. A legacy transaction pays its price
        in full: ``eth_gasPrice``, and on a chain with a base fee (``fee_market = "legacy"``
        chosen there) no less than the type-2 ceiling, for the same reason."""
        calls: list[tuple[str, list[Any]]] = [
            ("eth_getTransactionCount", [self.account.address, "pending"]),
            ("eth_getBlockByNumber", ["latest", False]),
            ("eth_maxPriorityFeePerGas", []),
            ("eth_gasPrice", []),
        ]
        if self.rpc.mines:  # undo what a command killed inside Rpc.windows_mined left
            calls.append(("evm_setAutomine", [True]))
        replies = self.rpc.batch(calls)
        nonce, block = (self._result(replies[i], calls[i][0]) for i in (0, 1))
        found = block.get("baseFeePerGas") if isinstance(block, dict) else None
        base = None if found is None else int(found, 16)
        entry = None if self.chain.embedded else self.chain.settings.network_for(self.chain.network)
        market = entry.fee_market if entry else None
        if entry and market == "eip1559" and base is None:
            raise ConfigurationError(
                f"config.toml [networks.{entry.name}] fee_market",
                'is "eip1559" but the chain\'s blocks carry no base fee (a pre-London chain): '
                'set fee_market = "legacy" or leave it out; nothing was sent',
            )
        if market is None:
            market = "legacy" if base is None else "eip1559"
        if market == "legacy":
            price = int(self._result(replies[3], "eth_gasPrice"), 16)
            if base is not None:
                tip = int(self._result(replies[2], "eth_maxPriorityFeePerGas"), 16)
                price = max(price, 2 * base + tip)
            return int(nonce, 16), Fees("legacy", price)
        assert base is not None  # detected, or refused above
        tip = int(self._result(replies[2], "eth_maxPriorityFeePerGas"), 16)
        return int(nonce, 16), Fees("eip1559", 2 * base + tip, tip)

    def _result(self, reply: dict[str, Any], method: str) -> Any:
        if "result" not in reply:
            problem = reply.get("error", {})
            message = problem.get("message", problem) if isinstance(problem, dict) else problem
            raise NodeUnavailable("chain RPC", self.chain.url, f"{method}: {message}")
        return reply["result"]


def settle(rpc: Rpc, box: journal.Outbox, key: str, sender: str | None = None) -> Settled:
    """Settle what the outbox holds unmined (for one sender, or all): mark mined what the node
    has mined, dropped what lost its nonce to another transaction, and re-send the rest (the
    same signed transactions) and await them. Callers hold the sender's lock."""
    left = box.entries(key, (journal.SIGNED,), sender)
    if not left:
        return Settled(0, 0, 0)
    mined = rpc.find_receipts([e.hash for e in left])
    box.mined(key, [(h, r.block_number, r.status) for h, r in mined.items()])
    rest = [e for e in left if e.hash not in mined]
    dropped: list[str] = []
    resent: list[Receipt] = []
    for account in dict.fromkeys(e.sender for e in rest):
        own = sorted((e for e in rest if e.sender == account), key=lambda e: e.nonce)
        taken = rpc.nonce(account)
        dropped.extend(e.hash for e in own if e.nonce < taken)
        live = [e for e in own if e.nonce >= taken]
        if live:
            resent.extend(rpc.submit("re-sending an interrupted write", [e.raw for e in live]))
    box.dropped(key, dropped)
    box.mined(key, [(r.transaction_hash, r.block_number, r.status) for r in resent])
    if resent:
        actions = sorted({e.action for e in rest if e.hash not in set(dropped)})
        warnings.warn(
            Notice(
                f"{len(resent)} transaction(s) an interrupted command signed were sent now "
                f"({'; '.join(actions)}): they were committed to the outbox before it stopped"
            ),
            stacklevel=2,
        )
    return Settled(len(mined), len(resent), len(dropped))


@dataclass(frozen=True)
class Settled:
    """What :func:`settle` found: already mined, re-sent and mined, dropped."""

    mined: int
    resent: int
    dropped: int


def sent_hash(action: str, raw: str, reply: dict[str, Any], rpc: Rpc | None = None) -> str:
    """The hash a node answered for a raw transaction; its refusal as a one-line error."""
    if "result" in reply:
        return str(reply["result"])
    message = str(reply.get("error", {}).get("message", reply))
    low = message.lower()
    if "already known" in low or "already imported" in low:
        return tx_hash(raw)  # the node has this very transaction: no resend
    if "nonce too low" in low and rpc is not None and rpc.find_receipts([tx_hash(raw)]):
        return tx_hash(raw)  # mined already (a devnet restart replayed it from the journal)
    raise TransactionRejected.from_node(action, message)


def _receipt(raw: dict[str, Any]) -> Receipt:
    logs = tuple(raw.get("logs", ()))
    stamp = logs[0].get("blockTimestamp") if logs else None
    created = raw.get("contractAddress")
    return Receipt(
        transaction_hash=str(raw["transactionHash"]),
        block_number=int(raw["blockNumber"], 16),
        block_timestamp=int(stamp, 16) if isinstance(stamp, str) else None,
        gas_used=int(raw["gasUsed"], 16),
        status=int(raw["status"], 16),
        logs=logs,
        to=str(raw["to"]) if raw.get("to") else None,
        contract_address=str(created) if created else None,
    )
