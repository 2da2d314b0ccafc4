"""End-to-end anchoring throughput: encrypt, store, anchor, confirmed; against a naive baseline.

Every mode does the same client work per record (a fresh key, AES-GCM, wraps for the patient
and the hospital, the blocks in the embedded store) and differs only in how the chain learns
of it:

* ``single``: one ``anchor`` transaction per record through the package's pipeline;
* ``batch-N``: one ``anchorBatch`` transaction per N records (plus the public manifest);
* ``naive``: the baseline, ``NaiveRecordStore.addRecord(patient, cidString, typeString)``
  sent as one contract call per record (``chain.transact``), each awaited before the next (how
  the common open-source EHR dApps drive their contracts), with the CID kept as a string in
  storage.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import TYPE_CHECKING, Any

from medledger.benchmarks import profiling
from medledger.benchmarks.harness import KIB, MIB, receipt_gas

if TYPE_CHECKING:
    from medledger.benchmarks.harness import World

SIZES = (KIB, 100 * KIB, MIB)
BATCHES = (100, 1000, 10_000)


def plan(quick: bool) -> dict[int, dict[str, int]]:
    """Records per (body size, mode). Byte budgets keep a cell within the machine's disk and
    minutes: a cell whose batch alone would exceed the budget is left out (reported)."""
    budget = (24 if quick else 256) * MIB
    single = {
        KIB: 500 if quick else 3000,
        100 * KIB: 50 if quick else 300,
        MIB: 10 if quick else 60,
    }
    naive = {KIB: 60 if quick else 300, 100 * KIB: 20 if quick else 100, MIB: 5 if quick else 30}
    cells: dict[int, dict[str, int]] = {}
    for size in SIZES:
        row = {"single": single[size], "naive": naive[size]}
        for n in BATCHES:
            if n * size <= budget:
                row[f"batch-{n}"] = n * max(1, min(3 if not quick else 1, budget // (n * size)))
        cells[size] = row
    return cells


def measure(world: World, quick: bool, runs: int) -> dict[str, Any]:
    """Run every cell ``runs`` times; keep the median time of each, its spread, and its ratio to
    the node's limit measured first in the same world (:mod:`~medledger.benchmarks.node`)."""
    from medledger.benchmarks import node

    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    node_rates = node.measure(world, quick, runs)
    limit = node.limit(node_rates)
    naive = _deploy_naive(world)
    for size, cells in plan(quick).items():
        for n in BATCHES:
            if f"batch-{n}" not in cells:
                skipped.append(
                    f"batch-{n} of {size // KIB:,} KiB bodies ({n * size / MIB:,.0f} MiB)"
                )
        results: dict[str, dict[str, Any]] = {}
        for mode, count in cells.items():
            times, gas = [], 0
            for _ in range(runs):
                seconds, gas = _run(world, naive, mode, size, count)
                times.append(seconds)
                world.drop_stores()
            median = statistics.median(times)
            results[mode] = {
                "size": size, "mode": mode, "records": count, "runs": runs,
                "seconds": round(median, 3), "records_per_second": round(count / median, 1),
                "spread": [round(count / max(times), 1), round(count / min(times), 1)],
                "gas_per_record": round(gas / count),
                "ratio_to_node": round(count / median / limit, 2) if limit else None,
            }  # fmt: skip
        base = results["naive"]["records_per_second"]
        for mode, row in results.items():
            row["ratio_to_naive"] = (
                None if mode == "naive" else round(row["records_per_second"] / base, 1)
            )
            rows.append(row)
    profile = profiling.top(
        "1,000 records of 1 KiB, single-record transactions",
        lambda: _run(world, naive, "single", KIB, 1000),
    )
    profile += profiling.top(
        "10,000 records of 1 KiB, one batch", lambda: _run(world, naive, "batch-10000", KIB, 10_000)
    )
    world.drop_stores()
    return {"rows": rows, "skipped": skipped, "node": node_rates, "profile": profile}


def _bodies(size: int, count: int) -> list[bytes]:
    return [os.urandom(size) for _ in range(count)]


def _run(world: World, naive: Any, mode: str, size: int, count: int) -> tuple[float, int]:
    """One cell: (seconds, total gas). Bodies are made before the clock starts."""
    from medledger import consent, records

    bodies = _bodies(size, count)
    store = world.fresh_store()
    patient = world.patient.address
    started = time.perf_counter()
    readers = consent.readers_for(world.chain)  # as every caller of records.anchor passes
    if mode == "single":
        anchored = records.anchor(
            world.chain, store, world.hospital, patient,
            [records.Draft(b, records.Category.VITALS) for b in bodies], readers=readers,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        sample = [receipt_gas(world.chain, r.transaction_hash) for r in anchored[:20]]
        return seconds, sorted(sample)[len(sample) // 2] * count  # every anchor costs the same
    if mode.startswith("batch-"):
        n = int(mode.split("-")[1])
        gas = 0
        for start in range(0, count, n):
            entries = [
                records.Entry(patient, records.Draft(b, records.Category.VITALS))
                for b in bodies[start : start + n]
            ]
            batch = records.anchor_batch(
                world.chain, store, world.hospital, entries, readers=readers
            )
            gas += batch.gas_used
        return time.perf_counter() - started, gas
    return _run_naive(world, naive, store, bodies, started)


def _run_naive(
    world: World, naive: Any, store: Any, bodies: list[bytes], started: float
) -> tuple[float, int]:
    from medledger import crypto, providers, records, sealed

    chain = world.chain
    readers = (
        providers.encryption_key(chain, world.patient.address),
        crypto.public_key(world.hospital.key),
    )
    context = records.Context(chain.chain_id, naive.address, world.hospital.address)
    gas = 0
    for body in bodies:
        aad = records.associated_data(
            context, world.patient.address, int(records.Category.VITALS), None
        )
        stored = sealed.seal_one(store, sealed.Document(body, aad, readers))
        receipt = chain.transact(
            "naive baseline", world.hospital,
            naive.functions.addRecord(world.patient.address, str(stored.cid), "Observation"),
        )  # fmt: skip
        gas += receipt.gas_used
    return time.perf_counter() - started, gas


def _deploy_naive(world: World) -> Any:
    from medledger.accounts import dev_account

    receipt = world.chain.deploy("deploying the baseline", dev_account(0), "NaiveRecordStore")
    assert receipt.contract_address is not None
    return world.chain.contract("NaiveRecordStore", receipt.contract_address)
