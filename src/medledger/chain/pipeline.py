"""The one transaction sender: local signing, nonces for many transactions in flight, batched
JSON-RPC for sending and for receipts, and the one :class:`Receipt` type.

Every transaction of the package goes through :class:`Pipeline` (``Chain.transact``,
``Chain.send`` and ``Chain.deploy`` are thin doors to it). It goes below web3.py's per-call API
because per-call HTTP round trips and result formatting, not the chain, are what limit
anchoring throughput: calldata is encoded with eth-abi, and raw JSON-RPC batches (one HTTP
request per chunk of transactions) carry the signed transactions to the node and bring the
receipts back.

Transactions are EIP-1559 (type 2), RLP-encoded with ``rlp`` and signed with ``coincurve``:
the same bytes ``eth_account``'s ``sign_transaction`` produces (RFC 6979 signatures are
deterministic; a test compares them under hypothesis), in about 150 us instead of 1,200 us,
which eth-account spends in its typed-transaction validation layers. At 500 transactions a
second the difference is most of a core.

Retries never send a record twice: a retry re-sends the *same* signed transaction (same nonce,
same hash), which a node either already has ("already known") or mines once; and record ids
commit to their content, so even a transaction signed anew for the same record would revert
with ``RecordAlreadyAnchored``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import coincurve
import requests
import rlp  # type: ignore[import-untyped]
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from medledger.errors import NodeUnavailable, TransactionReverted

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from eth_account.signers.local import LocalAccount

    from medledger.chain import Chain

CHUNK = 250
RECEIPT_TIMEOUT_SECONDS = 300.0
# Re-send only after 10 s without a new receipt: at 2 s a slow node was sent the same 250
# transactions again and again ("already imported"), adding load to it. This did not cure the
# growth benchmark's slow Anvil runs (7-17 tx/s, seen with both settings): that cause is open.
_RESEND_AFTER_SECONDS = 10.0
_POLL_SECONDS = 0.01
_SWEEP_SECONDS = 0.25
_RETRIES = 3


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


def selector(signature: str) -> bytes:
    """The 4-byte selector of ``name(type,...)``."""
    return keccak(text=signature)[:4]


def calldata(signature: str, types: Sequence[str], args: Sequence[object]) -> bytes:
    """Encode a call with eth-abi (much cheaper per call than web3's contract functions)."""
    return selector(signature) + abi_encode(list(types), list(args))


def sign_eip1559(
    private_key: bytes, chain_id: int, nonce: int, to: str | None, data: bytes, gas: int,
    max_fee: int, tip: int, value: int = 0,
) -> bytes:  # fmt: skip
    """Return the raw signed type-2 transaction (no access list; ``to`` None creates a
    contract)."""
    target = b"" if to is None else bytes.fromhex(to[2:])
    fields = [chain_id, nonce, tip, max_fee, gas, target, value, data, []]
    signature = coincurve.PrivateKey(private_key).sign_recoverable(
        keccak(b"\x02" + rlp.encode(fields)), hasher=None
    )
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    return b"\x02" + bytes(rlp.encode([*fields, signature[64], r, s]))


class Pipeline:
    """Sends many transactions from one account to one node, pipelined."""

    def __init__(self, chain: Chain, account: LocalAccount) -> None:
        self.chain = chain
        self.account = account
        self._session = requests.Session()
        self._next_id = 0

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
        None); return their receipts, in order."""
        if not payloads:
            return []
        nonce, base_fee, tip = self._fees_and_nonce()
        key, chain_id, max_fee = bytes(self.account.key), self.chain.chain_id, 2 * base_fee + tip
        raws = [
            "0x"
            + sign_eip1559(key, chain_id, nonce + i, to, data, gas, max_fee, tip, value).hex()
            for i, data in enumerate(payloads)
        ]
        # At most CHUNK transactions in flight: a window is sent, then its receipts collected,
        # before the next is sent. Thousands pending at once stalled Anvil's pool in our runs.
        receipts: list[Receipt] = []
        for start in range(0, len(raws), CHUNK):
            chunk = raws[start : start + CHUNK]
            replies = self._batch([("eth_sendRawTransaction", [raw]) for raw in chunk])
            hashes = [
                self._sent_hash(action, raw, reply)
                for raw, reply in zip(chunk, replies, strict=True)
            ]
            receipts.extend(self._receipts(action, dict(zip(hashes, chunk, strict=True)), progress))
        for receipt in receipts:
            if receipt.status != 1:
                raise TransactionReverted(
                    action, "reverted after sending", {"tx": receipt.transaction_hash}
                )
        return receipts

    def _fees_and_nonce(self) -> tuple[int, int, int]:
        nonce, block, tip = self._batch([
            ("eth_getTransactionCount", [self.account.address, "pending"]),
            ("eth_getBlockByNumber", ["latest", False]),
            ("eth_maxPriorityFeePerGas", []),
        ])  # fmt: skip
        return (
            int(nonce["result"], 16),
            int(block["result"]["baseFeePerGas"], 16),
            int(tip["result"], 16),
        )

    def _sent_hash(self, action: str, raw: str, reply: dict[str, Any]) -> str:
        if "result" in reply:
            return str(reply["result"])
        message = str(reply.get("error", {}).get("message", reply))
        if "already known" in message.lower():  # the node has this very transaction: no resend
            return "0x" + keccak(bytes.fromhex(raw[2:])).hex()
        raise TransactionReverted(action, "rejected by the node", {"reason": message})

    def _receipts(
        self, action: str, raws: dict[str, str], progress: Callable[[int], None] | None
    ) -> list[Receipt]:
        """Collect receipts in batches; re-send the same signed transactions if they stall."""
        hashes = list(raws)
        found: dict[str, Receipt] = {}
        deadline = time.monotonic() + RECEIPT_TIMEOUT_SECONDS
        last_progress = time.monotonic()
        last_sweep = 0.0
        while len(found) < len(hashes):
            pending = [h for h in hashes if h not in found][:CHUNK]
            fresh = 0
            # Probe the window's first and last transaction: one sender's transactions are
            # mined in nonce order. Asking for every receipt on every poll kept the node busy
            # answering instead of mining (throughput fell to 130 tx/s after 10,000 blocks).
            first, last = self._batch([
                ("eth_getTransactionReceipt", [pending[0]]),
                ("eth_getTransactionReceipt", [pending[-1]]),
            ])  # fmt: skip
            swept = time.monotonic() - last_sweep > _SWEEP_SECONDS
            if last.get("result") or (first.get("result") and swept):
                last_sweep = time.monotonic()
                replies = self._batch([("eth_getTransactionReceipt", [h]) for h in pending])
                for tx_hash, reply in zip(pending, replies, strict=True):
                    result = reply.get("result")
                    if result:
                        found[tx_hash] = _receipt(result)
                        fresh += 1
            if progress is not None and fresh:
                progress(fresh)
            now = time.monotonic()
            if fresh:
                last_progress = now
                continue
            if now > deadline:
                raise NodeUnavailable("chain RPC", self.chain.url, "receipts did not arrive")
            if now - last_progress > _RESEND_AFTER_SECONDS:
                # A node may drop transactions (restart, pool eviction). Re-sending the very
                # same signed transactions cannot duplicate anything: same nonces, same hashes.
                stalled = [h for h in hashes if h not in found][:CHUNK]
                replies = self._batch([("eth_sendRawTransaction", [raws[h]]) for h in stalled])
                for tx_hash, reply in zip(stalled, replies, strict=True):
                    error = str(reply.get("error", "")).lower()
                    if "error" in reply and "already" not in error and "nonce too low" not in error:
                        self._sent_hash(action, raws[tx_hash], reply)  # raises, naming the reason
                last_progress = now
            time.sleep(_POLL_SECONDS)
        return [found[h] for h in hashes]

    def _batch(self, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        """One JSON-RPC batch request; results in call order. Retries connection failures."""
        body = []
        for method, params in calls:
            self._next_id += 1
            body.append({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        for attempt in range(_RETRIES + 1):
            try:
                reply = self._session.post(self.chain.url, json=body, timeout=60)
                reply.raise_for_status()
                by_id = {item["id"]: item for item in reply.json()}
                return [by_id[item["id"]] for item in body]
            except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
                if attempt == _RETRIES:
                    raise NodeUnavailable("chain RPC", self.chain.url, type(exc).__name__) from None
                time.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")


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
