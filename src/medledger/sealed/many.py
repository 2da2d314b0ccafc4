"""Sealing many record bodies at once: encrypt, store, derive each future record id.

Per-record work is CPU-bound (AES-GCM, key wraps, SHA-256 of every block, the id's keccak) plus
one small file per block in the embedded store. :func:`seal_all` does it in worker processes
when there are enough bodies and more than one core, and in this process otherwise. Workers
open the same embedded store folder and write blocks only; the caller's process pins every
root, holding the store's lock for the whole call (``bulk()``), so a ``gc`` elsewhere cannot
remove blocks written but not yet pinned. Other stores (Kubo, replicated) are network-bound and
are sealed in this process.

This module imports no web3, so a worker starts in a fraction of a second. Worker count:
``MEDLEDGER_WORKERS`` (``1`` turns parallel sealing off), default one per core, at most 4.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING

from eth_utils.crypto import keccak

from medledger import crypto
from medledger.errors import ConfigurationError, StoreError
from medledger.ipfs.local import LocalBlockStore
from medledger.ipfs.unixfs import import_chunks, iter_chunks

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from medledger.ipfs.blockstore import BlockStore
    from medledger.ipfs.cid import Cid

ZERO_ID = bytes(32)
AAD_PREFIX = b"medledger/record/v1"
PARALLEL_FROM = 64  # fewer bodies than this are sealed in this process (a pool costs ~0.3 s)
_MAX_WORKERS = 4


@dataclass(frozen=True)
class Context:
    """What every body of one anchoring call shares."""

    chain_id: int
    registry: str
    issuer: str


@dataclass(frozen=True)
class Job:
    """One body to seal, for ``patient``, wrapped for ``readers``."""

    patient: str
    body: bytes
    category: int
    previous: bytes | None
    readers: tuple[bytes, ...]


@dataclass(frozen=True)
class Sealed:
    """A body sealed and stored: its future record id, CID and commitment."""

    id: bytes
    cid: Cid
    commitment: bytes


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def _address(address: str) -> bytes:
    return bytes(12) + bytes.fromhex(address[2:])


def derive_id(
    ctx: Context, patient: str, cid_digest: bytes, commitment: bytes, category: int,
    previous: bytes | None,
) -> bytes:  # fmt: skip
    """``RecordIds.derive`` on chain: keccak of the ABI encoding of the record's fields.

    The words are packed by hand because every field is a static type and eth-abi's encoder
    costs about 150 us a call, as much as sealing a 1 KB body; tests compare this with eth-abi.
    """
    return keccak(
        b"".join(
            (
                _word(ctx.chain_id),
                _address(ctx.registry),
                _address(patient),
                _address(ctx.issuer),
                cid_digest,
                commitment,
                _word(category),
                previous or ZERO_ID,
            )
        )
    )


def associated_data(ctx: Context, patient: str, category: int, previous: bytes | None) -> bytes:
    """The AES-GCM associated data binding a body to its record's identity (ABI words)."""
    return AAD_PREFIX + b"".join((
        _word(ctx.chain_id), _address(ctx.registry), _address(patient), _address(ctx.issuer),
        _word(category), previous or ZERO_ID,
    ))  # fmt: skip


def seal_one(ctx: Context, store: BlockStore, job: Job, wrapper: crypto.Wrapper) -> Sealed:
    """Seal one body under a fresh key, store and pin it, derive its record id."""
    sealed, secret = _seal(ctx, job, wrapper)
    cid = store.add_bytes(sealed, pin=True)
    return _sealed(ctx, job, cid, secret)


def seal_all(
    ctx: Context,
    store: BlockStore,
    jobs: Sequence[Job],
    progress: Callable[[int], None] | None = None,
) -> list[Sealed]:
    """Seal, store and pin every body; results in the order of ``jobs``."""
    workers = worker_count()
    advance = progress or (lambda _n: None)
    with store.bulk():
        if workers < 2 or len(jobs) < PARALLEL_FROM or not isinstance(store, LocalBlockStore):
            wrapper = crypto.Wrapper()
            results = []
            for job in jobs:
                results.append(seal_one(ctx, store, job, wrapper))
                advance(1)
            return results
        size = -(-len(jobs) // (workers * 4))  # a few chunks per worker evens out their pace
        chunks = [list(jobs[i : i + size]) for i in range(0, len(jobs), size)]
        pool = _pool(workers)
        futures = [pool.submit(_seal_chunk, ctx, store.root, chunk) for chunk in chunks]
        results = []
        for future in futures:
            try:
                done = future.result()
            except BrokenProcessPool:
                _forget_pool()
                raise StoreError("a sealing worker process died; nothing was anchored") from None
            for sealed in done:
                store.pin_written(sealed.cid)
            results.extend(done)
            advance(len(done))
        return results


def worker_count() -> int:
    """How many processes seal bodies (``MEDLEDGER_WORKERS``, else one per core, at most 4)."""
    configured = os.environ.get("MEDLEDGER_WORKERS")
    if configured is None:
        return min(os.cpu_count() or 1, _MAX_WORKERS)
    try:
        count = int(configured)
    except ValueError:
        raise ConfigurationError("MEDLEDGER_WORKERS", f"{configured!r} is not a number") from None
    if count < 1:
        raise ConfigurationError("MEDLEDGER_WORKERS", "must be at least 1")
    return count


def _seal(ctx: Context, job: Job, wrapper: crypto.Wrapper) -> tuple[bytes, crypto.BodySecret]:
    aad = associated_data(ctx, job.patient, job.category, job.previous)
    secret = crypto.BodySecret.generate()
    return crypto.seal(job.body, aad, list(job.readers), secret, wrapper), secret


def _sealed(ctx: Context, job: Job, cid: Cid, secret: crypto.BodySecret) -> Sealed:
    commitment = crypto.commitment(secret.salt, job.body)
    record_id = derive_id(ctx, job.patient, cid.digest, commitment, job.category, job.previous)
    return Sealed(record_id, cid, commitment)


def _seal_chunk(ctx: Context, root: Path, jobs: list[Job]) -> list[Sealed]:
    """In a worker: seal and write the blocks of each body (the caller pins the roots)."""
    store = LocalBlockStore(root)
    wrapper = crypto.Wrapper()
    out = []
    for job in jobs:
        sealed, secret = _seal(ctx, job, wrapper)
        cid = import_chunks(iter_chunks(sealed), store.write_block_unlocked)
        out.append(_sealed(ctx, job, cid, secret))
    return out


_POOL: ProcessPoolExecutor | None = None
_POOL_SIZE = 0


def _pool(workers: int) -> ProcessPoolExecutor:
    """One pool per process, started on first use.

    Fork, not spawn or forkserver: those run the caller's main script again in each worker,
    which breaks a clinic's script that has no ``if __name__ == "__main__"`` guard. The package
    starts no threads; a store's lock descriptors are closed in the child (``ipfs.local``), so
    a worker never keeps the parent's lock alive.
    """
    global _POOL, _POOL_SIZE
    if _POOL is None or workers != _POOL_SIZE:
        if _POOL is not None:
            _POOL.shutdown()
        context = multiprocessing.get_context("fork")
        _POOL, _POOL_SIZE = ProcessPoolExecutor(workers, mp_context=context), workers
    return _POOL


def _forget_pool() -> None:
    global _POOL
    if _POOL is not None:
        _POOL.shutdown(wait=False, cancel_futures=True)
    _POOL = None


@atexit.register
def _shutdown() -> None:
    if _POOL is not None:
        _POOL.shutdown(cancel_futures=True)
