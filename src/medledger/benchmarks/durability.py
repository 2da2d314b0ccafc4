"""What durable acknowledgement costs, and how long a crash takes to recover from.

Three ways of anchoring the same 1 KiB records one transaction each, run in turn (paired, the
median of ``runs``), each on its own fresh devnet:

* ``no outbox``: the journal writes patched out (what anchoring cost before issue #14; not a
  mode the package offers);
* ``outbox``: every signed transaction committed to the SQLite outbox before it is sent, and
  marked mined after (a throwaway devnet, as the tests use);
* ``outbox + snapshots``: a durable devnet, as a user's: the outbox, plus a snapshot of Anvil's
  state every ``SNAPSHOT_EVERY`` transactions.

Then recovery: on the durable devnet, records anchored with no snapshot after them, Anvil
killed (SIGKILL), and the time for the next connection to restart it and replay the journal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import TYPE_CHECKING, Any

from medledger.benchmarks.harness import KIB, open_world

if TYPE_CHECKING:
    from collections.abc import Iterator

    from medledger.benchmarks.harness import World

MODES = ("no outbox", "outbox", "outbox + snapshots")


def measure(quick: bool, runs: int) -> dict[str, Any]:
    """Throughput of each mode (records/s, medians of ``runs``) and the recovery time."""
    count = 300 if quick else 2000
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    with open_world() as bare, open_world() as plain, open_world(state="on") as durable:
        # A devnet each, so every chain grows by the same records.
        worlds = {"no outbox": bare, "outbox": plain, "outbox + snapshots": durable}
        for run in range(runs):
            for mode in MODES[run % 3 :] + MODES[: run % 3]:  # each mode first in turn
                with _without_outbox() if mode == "no outbox" else contextlib.nullcontext():
                    times[mode].append(_anchor(worlds[mode], count))
        recovery = _recovery(durable, 200 if quick else 1000)
    base = _median(times["no outbox"])
    rows = [
        {
            "mode": mode, "records": count, "seconds": round(_median(times[mode]), 3),
            "records_per_second": round(count / _median(times[mode]), 1),
            "ratio_to_no_outbox": round(base / _median(times[mode]), 2),
        }
        for mode in MODES
    ]  # fmt: skip
    return {"rows": rows, "recovery": recovery}


def _anchor(world: World, count: int) -> float:
    from medledger import records

    bodies = [os.urandom(KIB) for _ in range(count)]
    store = world.fresh_store()
    started = time.perf_counter()
    records.anchor(
        world.chain, store, world.hospital, world.patient.address,
        [records.Draft(b, records.Category.VITALS) for b in bodies],
    )  # fmt: skip
    seconds = time.perf_counter() - started
    world.drop_stores()
    return seconds


def _recovery(world: World, count: int) -> dict[str, Any]:
    """Anchor ``count`` records after a snapshot, kill Anvil, time the restart and replay."""
    from medledger.chain import Chain, devnet

    started = time.perf_counter()
    block = devnet.snapshot(world.settings)
    snapshot_seconds = time.perf_counter() - started
    state = world.settings.devnet_dir / "state.json"
    size = state.stat().st_size if state.is_file() else 0
    os.environ["MEDLEDGER_DEVNET_SNAPSHOT_EVERY"] = str(10 * count)
    try:
        _anchor(world, count)
    finally:
        os.environ.pop("MEDLEDGER_DEVNET_SNAPSHOT_EVERY", None)
    pid = devnet.status(world.settings).pid
    assert pid is not None
    os.killpg(pid, signal.SIGKILL)
    started = time.perf_counter()
    chain = Chain(world.settings)
    seconds = time.perf_counter() - started
    restored = chain.restored
    return {
        "snapshot_block": block, "snapshot_seconds": round(snapshot_seconds, 3),
        "state_bytes": size, "lost_transactions": count,
        "replayed": restored.replayed if restored else 0,
        "restart_and_replay_seconds": round(seconds, 2),
    }  # fmt: skip


@contextlib.contextmanager
def _without_outbox() -> Iterator[None]:
    """The outbox's writes as no-ops (the counterfactual the cost is measured against)."""
    from medledger.chain.outbox import Outbox

    names = ("add", "mined", "stored", "intend")
    saved = {name: getattr(Outbox, name) for name in names}
    try:
        for name in names:
            setattr(Outbox, name, lambda *_args, **_kwargs: None)
        yield
    finally:
        for name, method in saved.items():
            setattr(Outbox, name, method)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]
