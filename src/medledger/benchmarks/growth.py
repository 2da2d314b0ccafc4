"""Growth: does the cost of one operation stay flat as a hospital network's chain fills up?

Two series on one devnet. *Single*: 1,000, 10,000 and 100,000 records anchored one by one and
as many grants on chain. *Batched* (after it): 1,000, 10,000, 100,000 and 1,000,000 records
anchored in batches of 10,000. Quick mode uses small levels and batches; ``up_to`` caps both.

The chain grows the way a network's does: by many patients. The filler goes to
:data:`PATIENTS_FULL` (quick: :data:`PATIENTS_QUICK`) filler patients, registered first
(:mod:`medledger.benchmarks.filler`), round robin; each filler record is granted by its patient
to another filler patient; each filler batch has a real manifest in the store. The measured
patient's own history stays small: only the few records, grants and reads measured at each
level are its own.

At each level, one more operation of each kind is timed (the median of ``samples``):

- single series: ``anchor`` (``records.anchor``), ``grant`` (``consent.grant``, envelope
  included), ``hasAccess`` (the view call; gas by ``eth_estimateGas`` incl. 21,000), ``read``
  (``consent.read`` by a grantee: lookup, events, fetch, verify, decrypt; gas of its access
  log) and ``audit`` (``consent.access_trail`` of the measured patient, what ``medledger
  audit`` prints);
- batched series: ``anchorBatch`` (``records.anchor_batch`` of :data:`MEASURED_BATCH` records,
  one of them the patient's), ``batch read`` (find the patient's batched record, its proof,
  fetch and decrypt it) and ``audit`` again (it lists batched records from the manifests).

Reads (``read``, ``audit``, ``batch read``) run on a new chain connection each time, as a new
``medledger`` command does: nothing cached by an earlier call of this process helps them.

*Flatness*: each row's ``ratio`` is its latency over the same operation's latency at the
series' first level (1,000 records in full mode), ``flagged`` when above :data:`FLAT_LIMIT`.
Each level also records the devnet's resident memory and the fill rate (transactions a second
while filling up to it), so a slowdown of Anvil itself shows.
"""

from __future__ import annotations

import functools
import os
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medledger.benchmarks import filler
from medledger.benchmarks.harness import receipt_gas

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from medledger.accounts import Signer
    from medledger.benchmarks.harness import World
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore

SINGLE_FULL = (1_000, 10_000, 100_000)
SINGLE_QUICK = (100, 1_000)
BATCHED_FULL = (1_000, 10_000, 100_000, 1_000_000)
BATCHED_QUICK = (1_000, 4_000)
BATCH_FULL, BATCH_QUICK = 10_000, 1_000
PATIENTS_FULL, PATIENTS_QUICK = 500, 20
MEASURED_BATCH = 100
FLAT_LIMIT = 1.20
_SAMPLES = 5


def levels(quick: bool, up_to: int | None) -> tuple[list[int], list[int]]:
    """The single and batched levels of a run (at most ``up_to`` records each)."""
    single, batched = (SINGLE_QUICK, BATCHED_QUICK) if quick else (SINGLE_FULL, BATCHED_FULL)
    return ([n for n in single if up_to is None or n <= up_to],
            [n for n in batched if up_to is None or n <= up_to])  # fmt: skip


def measure(
    world: World, quick: bool, runs: int, up_to: int | None = None,
    say: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:  # fmt: skip
    """Register the filler patients, then fill the chain level by level (single records, then
    batches) and time one more of each operation at each level; ``say`` hears each level."""
    single, batched = levels(quick, up_to)
    samples = max(runs, _SAMPLES)
    store = world.fresh_store()
    patients, signup = filler.register_patients(world, PATIENTS_QUICK if quick else PATIENTS_FULL)
    rows: list[dict[str, Any]] = []
    fills: list[dict[str, Any]] = []
    on_chain = 0
    for level in single:
        filled = filler.add_records(world, patients, level - on_chain)
        fills.append(_fill_row(world, "single", level, level - on_chain, filled))
        on_chain = level
        rows += _single_ops(world, store, samples, "single", level)
        say(_progress(fills[-1]))
    on_chain = 0
    for level in batched:
        filled, found = filler.add_batches(
            world, store, patients, level - on_chain, BATCH_QUICK if quick else BATCH_FULL
        )
        _require_found(world, store, found)
        fills.append(_fill_row(world, "batched", level, level - on_chain, filled))
        on_chain = level
        rows += _batched_ops(world, store, patients, samples, level)
        say(_progress(fills[-1]))
    flatness(rows)
    return {
        "rows": rows, "samples": samples, "levels": fills, "flat_limit": FLAT_LIMIT,
        "filler_patients": len(patients.accounts),
        "signup": {"transactions": signup.transactions, "seconds": round(signup.seconds, 1)},
    }  # fmt: skip


def flatness(rows: list[dict[str, Any]]) -> None:
    """Set each row's ``ratio`` (latency over the same operation's at its series' first level)
    and ``flagged`` (ratio above :data:`FLAT_LIMIT`); None where a latency is missing."""
    first: dict[tuple[str, str], float] = {}
    for row in sorted(rows, key=lambda r: r["on_chain"]):
        key = (row.get("series", "single"), row["operation"])
        latency = row.get("latency_ms")
        base = first.setdefault(key, latency) if latency else None
        row["ratio"] = round(latency / base, 2) if latency and base else None
        row["flagged"] = row["ratio"] is not None and row["ratio"] > FLAT_LIMIT


def devnet_rss_mib(world: World) -> float | None:
    """The devnet process's resident memory (``VmRSS`` in ``/proc``), None where unknown."""
    from medledger.chain import devnet

    pid = devnet.status(world.settings).pid
    try:
        text = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    found = next((line.split()[1] for line in text.splitlines() if line.startswith("VmRSS:")), None)
    return round(int(found) / 1024, 1) if found else None


def _fill_row(
    world: World, series: str, level: int, added: int, filled: filler.Filled
) -> dict[str, Any]:
    seconds = filled.seconds if filled.seconds > 0 else None
    return {
        "series": series, "on_chain": level, "block": world.chain.w3.eth.block_number,
        "fill_transactions": filled.transactions, "fill_seconds": round(filled.seconds, 1),
        "fill_tx_per_second": round(filled.transactions / seconds, 1) if seconds else None,
        "fill_records_per_second": round(added / seconds, 1) if seconds else None,
        "devnet_rss_mib": devnet_rss_mib(world),
    }  # fmt: skip


def _progress(fill: dict[str, Any]) -> str:
    return (
        f"growth: {fill['series']} {fill['on_chain']:,} on chain (block {fill['block']:,}): "
        f"filled at {fill['fill_tx_per_second']} tx/s, devnet {fill['devnet_rss_mib']} MiB"
    )


def _single_ops(
    world: World, store: BlockStore, samples: int, series: str, level: int
) -> list[dict[str, Any]]:
    """Time anchor, grant, hasAccess, read and audit ``samples`` times at one level."""
    from medledger import consent, records
    from medledger.chain import deployments

    chain, hospital, patient, reader = world.chain, world.hospital, world.patient, world.reader
    manager = deployments.contract(chain, "ConsentManager")
    readers = consent.readers_for(chain)
    times: dict[str, list[float]] = {op: [] for op in ("anchor", "grant", "hasAccess", "read",
                                                      "audit")}  # fmt: skip
    gas: dict[str, list[int | None]] = {op: [] for op in times}
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
        if not allowed:
            raise AssertionError("a fresh grant did not give access")
        times["anchor"].append(t1 - t0)
        times["grant"].append(t2 - t1)
        times["hasAccess"].append(t3 - t2)
        times["read"].append(_timed(world, functools.partial(_read, store, reader, record.id)))
        times["audit"].append(
            _timed(world, lambda c: consent.access_trail(c, patient.address, store))
        )
        gas["anchor"].append(receipt_gas(chain, record.transaction_hash))
        gas["grant"].append(_last_tx_gas(world, patient.address))
        gas["hasAccess"].append(
            int(manager.functions.hasAccess(reader.address, record.id).estimate_gas())
        )
        gas["read"].append(_last_tx_gas(world, reader.address))
        gas["audit"].append(None)
    return _rows(series, level, times, gas)


def _batched_ops(
    world: World, store: BlockStore, patients: filler.Patients, samples: int, level: int
) -> list[dict[str, Any]]:
    """Time anchoring a batch, reading the patient's record from it and the patient's audit."""
    from medledger import consent, records

    chain, hospital, patient = world.chain, world.hospital, world.patient
    readers = consent.readers_for(chain)
    times: dict[str, list[float]] = {"anchorBatch": [], "batch read": [], "audit": []}
    gas: dict[str, list[int | None]] = {op: [] for op in times}
    for _ in range(samples):
        owners = [patient.address] + [
            patients.accounts[patients.take()].address for _ in range(MEASURED_BATCH - 1)
        ]
        entries = [
            records.Entry(p, records.Draft(os.urandom(1024), records.Category.VITALS))
            for p in owners
        ]
        t0 = time.perf_counter()
        batch = records.anchor_batch(chain, store, hospital, entries, readers=readers)
        times["anchorBatch"].append(time.perf_counter() - t0)
        gas["anchorBatch"].append(batch.gas_used)
        mine = batch.records[0].id

        def batch_read(c: Any, record_id: bytes = mine) -> None:
            records.read(c, store, patient, record_id)
            records.batch_proof(c, store, record_id)

        times["batch read"].append(_timed(world, batch_read))
        gas["batch read"].append(None)
        times["audit"].append(
            _timed(world, lambda c: consent.access_trail(c, patient.address, store))
        )
        gas["audit"].append(None)
    return _rows("batched", level, times, gas)


def _read(store: BlockStore, reader: Signer, record_id: bytes, chain: Chain) -> None:
    from medledger import consent

    consent.read(chain, store, reader, record_id)


def _timed(world: World, operation: Callable[[Any], object]) -> float:
    """Seconds ``operation`` takes on a new chain connection (as a new command's)."""
    from medledger.chain import Chain

    started = time.perf_counter()
    operation(Chain(world.settings))
    return time.perf_counter() - started


def _rows(
    series: str, level: int, times: dict[str, list[float]], gas: dict[str, list[int | None]]
) -> list[dict[str, Any]]:
    return [
        {"series": series, "on_chain": level, "operation": op, "gas": _median_or_none(gas[op]),
         "latency_ms": round(statistics.median(seconds) * 1e3, 2)}
        for op, seconds in times.items()
    ]  # fmt: skip


def _require_found(world: World, store: BlockStore, ids: Sequence[bytes]) -> None:
    """Every filler batch's sample record must be found by the batch lookup."""
    from medledger import records
    from medledger.chain import Chain

    chain = Chain(world.settings)
    for record_id in ids:
        if records.find_batched(chain, store, record_id) is None:
            raise AssertionError(f"filler record 0x{record_id.hex()} is in no batch found")


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


def _median_or_none(values: Sequence[int | None]) -> int | None:
    measured = [v for v in values if v]
    return round(statistics.median(measured)) if measured else None
