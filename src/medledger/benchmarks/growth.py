"""Growth: does the cost of one operation stay flat as records and grants pile up on chain?

At each level (100, 1,000, 10,000, 100,000 records and as many grants on chain) it measures,
for one more operation of each kind: ``anchor`` (gas, latency through ``records.anchor``),
``grant`` (gas, latency through ``consent.grant``, envelope included), ``hasAccess`` (gas by
``eth_estimateGas`` including the 21,000 of a transaction, latency of the call) and ``read``
(latency of ``consent.read`` by a grantee: chain lookup, events, fetch, verify, decrypt; gas of
its on-chain access log).

The filler records and grants are real transactions on the same contracts, sent through the
package's pipeline with random pointers (their bodies are never read, so none is stored);
the patient gives the filler grants, each for a different record, to the same reader.
"""

from __future__ import annotations

import os
import statistics
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from medledger.benchmarks.harness import receipt_gas

if TYPE_CHECKING:
    from medledger.benchmarks.harness import World

LEVELS_FULL = (100, 1000, 10_000, 100_000)
LEVELS_QUICK = (100, 1000, 10_000)
_SAMPLES = 5


def measure(world: World, quick: bool, runs: int, up_to: int | None = None) -> dict[str, Any]:
    """Fill the chain level by level (up to ``up_to`` records and grants) and time one more of
    each operation at each level."""
    from medledger import consent, records
    from medledger.chain import deployments

    chain, hospital, patient, reader = world.chain, world.hospital, world.patient, world.reader
    store = world.fresh_store()
    manager = deployments.contract(chain, "ConsentManager")
    readers = consent.readers_for(chain)
    rows: list[dict[str, Any]] = []
    on_chain = 0
    samples = max(runs, _SAMPLES)
    levels = [n for n in (LEVELS_QUICK if quick else LEVELS_FULL) if up_to is None or n <= up_to]
    for level in levels:
        _fill(world, level - on_chain)
        on_chain = level
        anchors, grants, checks, reads = [], [], [], []
        anchor_gas: list[int | None] = []
        grant_gas: list[int | None] = []
        check_gas: list[int | None] = []
        read_gas: list[int | None] = []
        for _ in range(samples):
            t0 = time.perf_counter()
            (record,) = records.anchor(
                chain, store, hospital, patient.address,
                [records.Draft(os.urandom(1024), records.Category.VITALS)], readers=readers,
            )  # fmt: skip
            t1 = time.perf_counter()
            consent.grant(
                chain, store, patient, patient.address, reader.address,
                consent.Scope(consent.ScopeKind.RECORD, record=record.id),
                consent.Purpose.TREATMENT, timedelta(days=30),
            )  # fmt: skip
            t2 = time.perf_counter()
            allowed = manager.functions.hasAccess(reader.address, record.id).call()
            t3 = time.perf_counter()
            consent.read(chain, store, reader, record.id)
            t4 = time.perf_counter()
            if not allowed:
                raise AssertionError("a fresh grant did not give access")
            anchors.append(t1 - t0)
            grants.append(t2 - t1)
            checks.append(t3 - t2)
            reads.append(t4 - t3)
            anchor_gas.append(receipt_gas(chain, record.transaction_hash))
            grant_gas.append(_last_tx_gas(world, patient.address))
            check_gas.append(
                int(manager.functions.hasAccess(reader.address, record.id).estimate_gas())
            )
            read_gas.append(_last_tx_gas(world, reader.address))
        for operation, times, gas in (
            ("anchor", anchors, anchor_gas), ("grant", grants, grant_gas),
            ("hasAccess", checks, check_gas), ("read", reads, read_gas),
        ):  # fmt: skip
            rows.append({
                "on_chain": level, "operation": operation,
                "gas": _median_or_none(gas),
                "latency_ms": round(statistics.median(times) * 1e3, 2),
            })  # fmt: skip
    return {"rows": rows, "samples": samples}


def _fill(world: World, count: int) -> None:
    """Anchor ``count`` filler records and give as many record grants, pipelined."""
    if count <= 0:
        return
    from medledger import records
    from medledger.chain import deployments
    from medledger.chain.pipeline import Pipeline, calldata

    chain, hospital, patient, reader = world.chain, world.hospital, world.patient, world.reader
    registry = deployments.contract(chain, "RecordRegistry")
    manager = deployments.contract(chain, "ConsentManager")
    rows = [(os.urandom(32), os.urandom(32)) for _ in range(count)]
    payloads = [
        calldata(
            records.ANCHOR_SIGNATURE,
            ["address", "bytes32", "bytes32", "uint8", "bytes32"],
            [patient.address, digest, commitment, 3, bytes(32)],
        )
        for digest, commitment in rows
    ]
    Pipeline(chain, hospital).send("filling records", registry.address, payloads, 150_000)
    ids = [
        records.derive_id(
            records.Context(chain.chain_id, registry.address, hospital.address),
            patient.address,
            digest,
            commitment,
            3,
            None,
        )
        for digest, commitment in rows
    ]
    expires = int(time.time()) + 365 * 86400
    grants = [
        calldata(
            "grant(address,address,uint8,bytes32,uint8,uint40,bytes32)",
            ["address", "address", "uint8", "bytes32", "uint8", "uint40", "bytes32"],
            [patient.address, reader.address, 0, record_id, 1, expires, os.urandom(32)],
        )
        for record_id in ids
    ]
    Pipeline(chain, patient).send("filling grants", manager.address, grants, 200_000)


def _last_tx_gas(world: World, sender: str) -> int | None:
    """Gas of ``sender``'s latest transaction in the last few blocks (the grant or the access
    log the package sent; neither returns its receipt)."""
    chain = world.chain
    latest = chain.w3.eth.block_number
    for number in range(latest, max(latest - 8, 0), -1):
        block: Any = chain.w3.eth.get_block(number, full_transactions=True)
        for tx in reversed(block["transactions"]):
            if tx["from"] == sender:
                return receipt_gas(chain, "0x" + bytes(tx["hash"]).hex())
    return None


def _median_or_none(values: list[int | None]) -> int | None:
    measured = [v for v in values if v]
    return round(statistics.median(measured)) if measured else None
