"""The body path by size: encrypt-and-store, then fetch-verify-decrypt, 1 KiB to 10 MiB.

Write is ``sealed.seal_one`` (a fresh key, AES-256-GCM, wraps for patient and hospital, the
commitment) with the import into the embedded store (UnixFS chunks, every block hashed and
written, the root pinned). Read is ``cat`` (every block checked against its CID), then
``sealed.open_one`` (unwrapping the reader's key, decrypting, checking the plaintext against its
commitment): exactly ``records.open_body`` after ``store.cat``. The chain lookup a full
``medledger read`` adds is measured in the growth section.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import TYPE_CHECKING, Any

from medledger.benchmarks import profiling
from medledger.benchmarks.harness import KIB, MIB

if TYPE_CHECKING:
    from medledger.benchmarks.harness import World

SIZES = (KIB, 10 * KIB, 100 * KIB, MIB, 4 * MIB, 10 * MIB)


def measure(world: World, quick: bool, runs: int) -> dict[str, Any]:
    """Median write and read latency per size (``runs`` repetitions, more for small bodies)."""
    from medledger import crypto, records, sealed

    chain, patient, hospital = world.chain, world.patient, world.hospital
    readers = (crypto.public_key(patient.key), crypto.public_key(hospital.key))
    context = records.Context(chain.chain_id, "0x" + "00" * 20, hospital.address)
    aad = records.associated_data(context, patient.address, int(records.Category.IMAGING), None)
    rows = []
    for size in SIZES:
        # At least 5 timed repetitions of every size; the first, untimed, warms the allocator
        # (the first 10 MiB read of a process took fresh memory from the system).
        repeat = max(runs, 20 if size <= 100 * KIB else 5)
        writes, fetches, opens = [], [], []
        for attempt in range(repeat + 1):
            store = world.fresh_store()
            body = os.urandom(size)
            t0 = time.perf_counter()
            stored = sealed.seal_one(store, sealed.Document(body, aad, readers))
            t1 = time.perf_counter()
            data = store.cat(stored.cid)
            t2 = time.perf_counter()
            # open_one raises unless the plaintext matches the commitment made on write
            plain = sealed.open_one(data, aad, stored.commitment, private_key=patient.key)
            t3 = time.perf_counter()
            if plain != body:
                raise AssertionError("the body did not round-trip")
            world.drop_stores()
            if attempt == 0:
                continue
            writes.append(t1 - t0)
            fetches.append(t2 - t1)
            opens.append(t3 - t2)
        write, fetch, decrypt = (statistics.median(x) for x in (writes, fetches, opens))
        reads = [f + o for f, o in zip(fetches, opens, strict=True)]
        mb_s = [[round(size / max(x) / 1e6, 1), round(size / min(x) / 1e6, 1)]
                for x in (writes, reads)]  # fmt: skip
        rows.append({
            "size": size, "runs": repeat,
            "write_ms": round(write * 1e3, 3), "write_mb_per_s": round(size / write / 1e6, 1),
            "fetch_ms": round(fetch * 1e3, 3), "decrypt_ms": round(decrypt * 1e3, 3),
            "total_ms": round((fetch + decrypt) * 1e3, 3),
            "read_mb_per_s": round(size / (fetch + decrypt) / 1e6, 1),
            "write_spread": mb_s[0], "read_spread": mb_s[1],
        })  # fmt: skip
    store = world.fresh_store()
    body = os.urandom(10 * MIB)
    done: list[sealed.Sealed] = []
    profile = profiling.top(
        "one 10 MiB encrypt-and-store",
        lambda: done.append(sealed.seal_one(store, sealed.Document(body, aad, readers))),
    )
    profile += profiling.top(
        "one 10 MiB fetch-verify-decrypt",
        lambda: sealed.open_one(
            store.cat(done[0].cid), aad, done[0].commitment, private_key=patient.key
        ),
    )
    world.drop_stores()
    return {"rows": rows, "profile": profile}
