"""The growth section's batched reads at one level, on a chain holding only batched records:
to tell what their cost owes to the batched records from what it owes to the rest of the run.

    python tools/bench/batched_only.py 1000000

It fills a fresh devnet with ``N`` batched records (batches of 10,000, as the growth section
does, over 50 filler patients), times the growth section's batched operations (3 samples) and
prints them. Measured on 2 cores (2026-12-07) at 1,000,000: batch read 26.0 ms, audit 28.9 ms,
against 22.5 and 34.7 ms at the full run's first batched level (1,000) and 39.8 and 57.2 ms at
its 1,000,000 level, which comes after 100,000 single records and the earlier levels' samples.
"""

from __future__ import annotations

import sys

from medledger.benchmarks import filler, growth
from medledger.benchmarks.harness import open_world


def main(count: int) -> None:
    with open_world() as world:
        store = world.fresh_store()
        patients, _signup = filler.register_patients(world, 50)
        _filled, found = filler.add_batches(world, store, patients, count, 10_000)
        growth._require_found(world, store, found)
        rows = growth._batched_ops(world, store, patients, 3, count)
        for row in rows:
            print(f"{row['operation']}: {row['latency_ms']} ms at {count:,} batched records")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
