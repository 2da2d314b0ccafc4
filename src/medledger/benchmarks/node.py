"""The node's own limit: how fast Anvil accepts and mines pre-signed anchor transactions.

Every figure that depends on the chain is also given as a ratio to this one, measured in the
same run on the same machine. The transactions are the very ``anchor`` calls the single-record
mode sends (random digests, one hospital, consecutive nonces), all signed before the clock
starts; the client then does nothing but send them, a window of ``CHUNK`` per JSON-RPC batch,
and wait for the window's last receipt. Two ways of mining are measured:

* ``block per window``: each window mined as one block (``evm_mine``), how the package drives
  its devnet (:meth:`medledger.chain.pipeline.Rpc.windows_mined`, used here too); this is the
  node's limit;
* ``block per transaction``: Anvil's instant mining, one block per transaction, as the devnet
  ran before; it slows as the chain grows, which is why the package stopped using it for sends
  of many transactions.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medledger.benchmarks.harness import World

MODES = ("block per window", "block per transaction")


def measure(world: World, quick: bool, runs: int) -> dict[str, Any]:
    """Median transactions per second of each mode over ``runs`` runs (a fresh batch of
    transactions each run), with the spread (slowest, fastest)."""
    count = 1000 if quick else 3000
    rows = []
    for mode in MODES:
        # Instant mining gets slower block after block: fewer transactions keep it from
        # dragging the run out (its figure is the context, not the limit).
        n = count if mode == MODES[0] else count // 3
        rates = [n / _once(world, n, per_window=mode == MODES[0]) for _ in range(runs)]
        rows.append({
            "mode": mode, "transactions": n, "runs": runs,
            "tx_per_second": round(statistics.median(rates), 1),
            "spread": [round(min(rates), 1), round(max(rates), 1)],
        })  # fmt: skip
    return {"rows": rows}


def limit(node: dict[str, Any] | None) -> float | None:
    """The node's limit (block per window), or None when it was not measured."""
    for row in (node or {}).get("rows", []):
        if row.get("mode") == MODES[0]:
            return float(row["tx_per_second"])
    return None


def _once(world: World, count: int, per_window: bool) -> float:
    """Seconds from the first send to the last receipt of ``count`` pre-signed anchors."""
    import coincurve

    from medledger.chain.pipeline import CHUNK, Rpc, calldata, sign_eip1559, tx_hash
    from medledger.records import ANCHOR_SIGNATURE
    from medledger.records.anchoring import ANCHOR_GAS_LIMIT, ANCHOR_TYPES
    from medledger.records.record import registry

    chain, sender = world.chain, world.hospital
    rpc = Rpc(chain.url)
    to = registry(chain).address
    nonce, block, tip = rpc.batch([
        ("eth_getTransactionCount", [sender.address, "pending"]),
        ("eth_getBlockByNumber", ["latest", False]),
        ("eth_maxPriorityFeePerGas", []),
    ])  # fmt: skip
    first = int(nonce["result"], 16)
    max_fee = 2 * int(block["result"]["baseFeePerGas"], 16) + int(tip["result"], 16)
    key = coincurve.PrivateKey(bytes(sender.key))
    raws = [
        "0x" + sign_eip1559(
            key, chain.chain_id, first + i, to,
            calldata(ANCHOR_SIGNATURE, ANCHOR_TYPES,
                     [world.patient.address, os.urandom(32), os.urandom(32), 1, b"\0" * 32]),
            ANCHOR_GAS_LIMIT, max_fee, int(tip["result"], 16),
        ).hex()
        for i in range(count)
    ]  # fmt: skip
    with rpc.windows_mined() if per_window else contextlib.nullcontext():
        started = time.perf_counter()
        for start in range(0, count, CHUNK):
            window = raws[start : start + CHUNK]
            replies = rpc.batch([("eth_sendRawTransaction", [raw]) for raw in window])
            refused = [r["error"] for r in replies if "error" in r]
            if refused:
                raise RuntimeError(f"the node refused a pre-signed anchor: {refused[0]}")
            if per_window:
                rpc.batch([("evm_mine", [])])
            last = tx_hash(window[-1])
            while not rpc.batch([("eth_getTransactionReceipt", [last])])[0].get("result"):
                time.sleep(0.002)
        return time.perf_counter() - started
