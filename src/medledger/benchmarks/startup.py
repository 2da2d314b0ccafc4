"""CLI start-up: wall time of ``medledger --help`` and of one ``medledger read``, each a new
process (import, settings, the devnet already running, one record fetched and decrypted)."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medledger.benchmarks.harness import World


def command() -> list[str]:
    """The installed ``medledger`` next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).with_name("medledger")
    found = str(beside) if beside.exists() else shutil.which("medledger")
    if found is None:
        raise FileNotFoundError("the medledger command is not installed")
    return [found]


def measure(world: World, runs: int) -> dict[str, Any]:
    """Median wall time of each command over ``max(runs, 5)`` runs."""
    from medledger import consent, records

    body = b'{"resourceType":"Observation","status":"final"}'
    (record,) = records.anchor(
        world.chain, world.home_store(), world.hospital, world.patient.address,
        [records.Draft(body, records.Category.VITALS)], readers=consent.readers_for(world.chain),
    )  # fmt: skip
    env = world.env()
    read = [*command(), "read", record.hex_id, "--account", "dev:5", "--no-log"]
    results: dict[str, Any] = {}
    for key, argv in (("help_seconds", [*command(), "--help"]), ("read_seconds", read)):
        times = []
        for _ in range(max(runs, 5)):
            started = time.perf_counter()
            done = subprocess.run(argv, env=env, capture_output=True, check=False)
            times.append(time.perf_counter() - started)
            if done.returncode != 0:
                raise RuntimeError(f"{' '.join(argv[1:3])} failed: {done.stderr.decode().strip()}")
        results[key] = round(statistics.median(times), 3)
        results[key.replace("_seconds", "_spread")] = [round(min(times), 3), round(max(times), 3)]
    return results
