"""The consistency check behind ``medledger doctor``: the store, the outbox and the chain compared.

It reports, for one chain:

- transactions the outbox holds unmined (an interrupted command) and, with ``resume``, settles
  them: the same signed transactions are sent again, or marked dropped when another transaction
  took their nonce;
- mined transactions the chain no longer has (rolled back: a reorganisation, or a devnet that
  lost blocks and was not replayed), re-sent with ``resume`` when their nonce is still free;
- *orphans*: bodies a write stored whose transaction never landed (the process died before
  sending, the transaction reverted or was dropped), which ``collect`` unpins and removes;
- chain records whose body no configured store holds, telling erased records (their body was
  removed on purpose) from lost ones.

Bodies and transactions the outbox never saw (``medledger ipfs add``, another home's writes) are
left alone: only what this home wrote for a write can be an orphan.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from medledger.chain import eventindex, events
from medledger.chain import outbox as journal
from medledger.chain.pipeline import Rpc, Settled, settle
from medledger.ipfs.cid import Cid

if TYPE_CHECKING:
    from collections.abc import Mapping

    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore

GRACE_SECONDS = 3600.0
"""A body whose writer process still runs is in flight, not an orphan, for up to this long."""


@dataclass(frozen=True)
class Checkup:
    """What :func:`check` found (and did, with ``resume`` or ``collect``)."""

    pending: tuple[str, ...]
    rolled_back: tuple[str, ...]
    orphans: tuple[str, ...]
    in_flight: int
    missing: tuple[str, ...]
    erased: int
    records: int
    resumed: Settled | None = None
    collected: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """Nothing unmined, rolled back, orphaned or lost."""
        return not (self.pending or self.rolled_back or self.orphans or self.missing)


def check(chain: Chain, store: BlockStore, resume: bool = False, collect: bool = False) -> Checkup:
    """Compare store, outbox and chain (see the module); ``resume`` settles unmined and
    rolled-back transactions, ``collect`` removes orphaned bodies."""
    box = journal.open_outbox(chain.settings.home)
    key = chain.journal_key
    rpc = Rpc(chain.url)
    resumed = None
    if resume:
        resumed = _resume(rpc, box, key)
    pending = tuple(e.hash for e in box.entries(key, (journal.SIGNED,)))
    mined = box.entries(key, (journal.MINED,))
    present = rpc.find_receipts([e.hash for e in mined])
    rolled_back = tuple(e.hash for e in mined if e.hash not in present)
    orphans, in_flight = _orphans(chain, rpc, box, present)
    collected = 0
    if collect and orphans:
        for cid in orphans:
            store.unpin(Cid.parse(cid))
        collected = store.gc()
        box.forget_bodies(key, orphans)
        orphans = ()
    missing, erased, count = _bodies_on_chain(chain, store)
    return Checkup(
        pending, rolled_back, orphans, in_flight, missing, erased, count, resumed, collected
    )


def orphaned_bodies(chain: Chain) -> tuple[str, ...]:
    """The orphans of :func:`check` alone (what ``ipfs gc`` may collect besides unpinned
    blocks)."""
    box = journal.open_outbox(chain.settings.home)
    rpc = Rpc(chain.url)
    mined = box.entries(chain.journal_key, (journal.MINED,))
    return _orphans(chain, rpc, box, rpc.find_receipts([e.hash for e in mined]))[0]


def referenced_digests(chain: Chain) -> set[bytes]:
    """Every 32-byte word of every event of this chain's MedLedger contracts: a superset of the
    CID digests a record, batch, manifest, trial datum or key envelope points to (a guard: a
    body whose digest a chain event names is never collected)."""
    words: set[bytes] = set()
    for log in eventindex.for_chain(chain).every():
        words.update(log.topics)
        data = log.data
        words.update(data[i : i + 32] for i in range(0, len(data) - 31, 32))
    return words


def forget_orphans(chain: Chain, cids: tuple[str, ...]) -> None:
    """Forget collected orphans in the outbox."""
    journal.open_outbox(chain.settings.home).forget_bodies(chain.journal_key, cids)


def _resume(rpc: Rpc, box: journal.Outbox, key: str) -> Settled:
    """For each account with unmined or rolled-back transactions, holding its lock (a command
    of that account still sending finishes first): mark the rolled-back ones unmined again and
    settle them (the same signed bytes sent again, or dropped if their nonce was taken)."""
    senders = {e.sender for e in box.entries(key, (journal.SIGNED, journal.MINED))}
    totals = [0, 0, 0]
    for sender in sorted(senders):
        with box.sender_lock(key, sender):
            mined = box.entries(key, (journal.MINED,), sender)
            present = rpc.find_receipts([e.hash for e in mined])
            lost = [e.hash for e in mined if e.hash not in present]
            if lost:
                box.unmine(key, lost)
            done = settle(rpc, box, key, sender)
        totals = [totals[0] + done.mined, totals[1] + done.resent, totals[2] + done.dropped]
    return Settled(*totals)


def _orphans(
    chain: Chain, rpc: Rpc, box: journal.Outbox, present: Mapping[str, object]
) -> tuple[tuple[str, ...], int]:
    """Bodies whose write never landed (``present``: the mined journal entries the chain still
    has), and how many are still in flight. A body a chain event names is never one, whatever
    the outbox says."""
    key = chain.journal_key
    orphans: list[str] = []
    in_flight = 0
    unknown: dict[str, list[str]] = {}
    now = time.time()
    for body in box.bodies(key):
        if body.tx is None:
            if _alive(body.pid) and now - body.created < GRACE_SECONDS:
                in_flight += 1
            else:
                orphans.append(body.cid)
            continue
        entry = box.sent_state(key, body.tx)
        if entry is None:  # pruned from the journal: ask the chain
            unknown.setdefault(body.tx, []).append(body.cid)
        elif entry.state == journal.DROPPED or (
            entry.state == journal.MINED and entry.status != 1 and body.tx in present
        ):
            orphans.append(body.cid)
    if unknown:
        receipts = rpc.find_receipts(list(unknown))
        for tx, cids in unknown.items():
            receipt = receipts.get(tx)
            if receipt is not None and receipt.status != 1:
                orphans.extend(cids)
    if orphans:
        needed = referenced_digests(chain)
        orphans = [c for c in orphans if Cid.parse(c).digest not in needed]
    return tuple(orphans), in_flight


def _bodies_on_chain(chain: Chain, store: BlockStore) -> tuple[tuple[str, ...], int, int]:
    """Registered records whose body the store lacks (not erased), erased records, and how
    many records the registry holds."""
    anchored = events.logs(chain, "RecordRegistry", "RecordAnchored")
    erased = {bytes(log.args["id"]) for log in events.logs(chain, "ConsentManager", "RecordErased")}
    missing = []
    for log in anchored:
        record_id = bytes(log.args["id"])
        if record_id in erased:
            continue
        if not store.has(Cid.from_digest_v0(bytes(log.args["cidDigest"]))):
            missing.append("0x" + record_id.hex())
    return tuple(missing), len(erased), len(anchored)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
