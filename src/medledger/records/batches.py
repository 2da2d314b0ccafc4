"""Batch anchoring: one transaction anchors many records by the Merkle root of their ids.

Each record of a batch is sealed and stored exactly like a single record and gets the id it
would have had alone (:func:`medledger.records.ids.derive_id` with the batch's issuer). The
batch's *manifest* (:mod:`medledger.sealed.manifest`, a public JSON object in IPFS) lists every
record's fields (id, patient, CID, commitment, category, previous version) in tree order: the
same fields a single anchoring puts in its public event, so a manifest reveals nothing more
than single anchoring would, and anyone holding it can rebuild the positional tree
(``merkle.IndexedTree``), prove a record off chain from its proof alone, or register it on
chain. A batch belongs to its issuer: its id is ``keccak256(abi.encode(issuer, root))``, and
the chain holds no more records from it than the count it declared.

A record of a batch becomes an ordinary record (``getRecord``, grants, claims, history) once
``registerFromBatch`` has run for it (:func:`ensure_registered`); the client does that on
demand, when a grant or a grantee's read needs it. Until then the patient and the issuer read
it straight from the batch (:mod:`medledger.records.batch_index`).

Like single anchoring, a batch writes each body once (:mod:`~medledger.records.once`): entries
whose body is already on chain for that patient from this issuer are left out of the new batch
and reported with the record they have.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode

from medledger import providers
from medledger.addresses import parse_address
from medledger.chain import eventindex
from medledger.chain.outbox import Intent, open_outbox
from medledger.chain.pipeline import Pipeline
from medledger.crypto.sameness import to_write
from medledger.errors import PreconditionFailed
from medledger.keccak import keccak
from medledger.records import once
from medledger.records.anchoring import Draft, Readers, anchored_at
from medledger.records.batch_index import batch_proof
from medledger.records.ids import ZERO_ID, Context, associated_data, derive_id
from medledger.records.reading import writer_of
from medledger.records.record import Record, registry
from medledger.sealed import Document, manifest, seal_many

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore
    from medledger.ipfs.cid import Cid
    from medledger.records.anchoring import ExtraReaders
    from medledger.sealed import Sealed

BATCH_GAS_LIMIT = 200_000
REGISTER_GAS_LIMIT = 200_000


@dataclass(frozen=True)
class Entry:
    """One record to put in a batch."""

    patient: str
    draft: Draft
    previous: bytes | None = None


@dataclass(frozen=True)
class Batch:
    """An anchored batch."""

    id: bytes
    root: bytes
    manifest: Cid | None
    issuer: str
    records: tuple[Record, ...]
    transaction_hash: str
    gas_used: int
    #: Positions of entries that wrote nothing (already on chain, or twice in the call); when
    #: every entry is one, no batch was anchored (``id`` and ``root`` are zero).
    skipped: frozenset[int] = frozenset()


def batch_id(issuer: str, root: bytes) -> bytes:
    """A batch's id, as ``RecordRegistry.batchIdOf`` derives it."""
    return keccak(encode(["address", "bytes32"], [parse_address(issuer), root]))


def anchor_batch(
    chain: Chain,
    store: BlockStore,
    issuer: Signer,
    entries: Iterable[Entry],
    progress: Callable[[int], None] | None = None,
    readers: ExtraReaders | None = None,
) -> Batch:
    """Seal and store every entry, then anchor them all in one transaction.

    ``readers`` names who else gets each body's key, as for :func:`~medledger.records.anchor`.
    """
    entries = list(entries)
    if not entries:
        raise PreconditionFailed("a batch needs at least one record")
    checksummed = {p: parse_address(p) for p in {e.patient for e in entries}}
    for patient in checksummed.values():  # the chain checks each again when it is registered
        providers.require_writer(chain, issuer.address, patient)
    writer = providers.writer_number(chain, issuer.address)
    for entry in entries:
        if entry.previous is not None and writer_of(chain, entry.previous) != writer:
            raise PreconditionFailed(
                f"0x{entry.previous.hex()} was written by another writer: only its writer "
                "writes its next version"
            )
    box = open_outbox(chain.settings.home)
    with box.sender_lock(chain.journal_key, issuer.address), _collector_paused():
        return _batch_once(chain, store, issuer, entries, checksummed, progress, readers)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector for one batch.

    A batch makes ~10 objects a record, none of them in a cycle (reference counting frees them
    all), yet so many allocations started ~230 collections in a 10,000-record batch, two of
    them full (every one of the ~63,000 objects web3 and friends leave), 0.24-0.45 s in all:
    about a quarter of the main process's CPU. The collector runs again, as it was, after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _batch_once(
    chain: Chain,
    store: BlockStore,
    issuer: Signer,
    entries: list[Entry],
    checksummed: Mapping[str, str],
    progress: Callable[[int], None] | None,
    readers: ExtraReaders | None,
) -> Batch:
    ctx = Context(chain.chain_id, registry(chain).address, issuer.address)
    Pipeline(chain, issuer).settle()
    box = open_outbox(chain.settings.home)
    secret = once.issuer_secret(bytes(issuer.key))
    same = [
        once.body_key(secret, ctx, checksummed[e.patient], e.previous, e.draft.body)
        for e in entries
    ]
    found = once.anchored(chain, store, box, same)
    todo, repeated = to_write(same, found)
    skipped = frozenset(repeated)
    if not todo:
        return Batch(ZERO_ID, ZERO_ID, None, issuer.address,
                     tuple(found[key] for key in same), "", 0, skipped)  # fmt: skip
    made = _anchor_batch(chain, store, issuer, [entries[i] for i in todo],
                         [same[i] for i in todo], progress, readers)  # fmt: skip
    by_key = {**found, **{same[i]: rec for i, rec in zip(todo, made.records, strict=True)}}
    return replace(made, records=tuple(by_key[key] for key in same), skipped=skipped)


def _anchor_batch(
    chain: Chain,
    store: BlockStore,
    issuer: Signer,
    entries: list[Entry],
    same: list[bytes],
    progress: Callable[[int], None] | None,
    readers: ExtraReaders | None,
) -> Batch:
    contract = registry(chain)
    checksummed = {p: parse_address(p) for p in {e.patient for e in entries}}
    keys = Readers(chain, issuer, readers)
    ctx = Context(chain.chain_id, contract.address, issuer.address)
    box = open_outbox(chain.settings.home)
    patients = [checksummed[e.patient] for e in entries]
    ids: list[bytes] = []
    items: list[dict[str, Any]] = []

    def describe(done: list[Sealed]) -> None:  # runs while the workers seal the next chunks
        at, end = len(ids), len(ids) + len(done)
        for e, p, s in zip(entries[at:end], patients[at:end], done, strict=True):
            category = int(e.draft.category)
            i = derive_id(ctx, p, s.cid.digest, s.commitment, category, e.previous)
            ids.append(i)
            items.append({
                "id": "0x" + i.hex(),
                "patient": p,
                "cid": str(s.cid),
                "commitment": "0x" + s.commitment.hex(),
                "category": category,
                "previous": "0x" + e.previous.hex() if e.previous else None,
            })  # fmt: skip

    aad = functools.cache(functools.partial(associated_data, ctx))  # one per patient, mostly
    # The manifest joins the bodies' transaction: one commit, not two. The readers of each
    # patient's records come from events read in one view: one sync, not two per patient.
    with eventindex.one_view(chain), store.bulk():
        sealed = seal_many(store, [
            Document(
                e.draft.body, aad(p, int(e.draft.category), e.previous),
                keys.of(p, e.draft.category),
            )
            for e, p in zip(entries, patients, strict=True)
        ], progress, describe)  # fmt: skip
        raw, built = manifest.build(chain.chain_id, contract.address, issuer.address, {}, items)
        manifest_cid = store.add_bytes(raw)
    identifier = batch_id(issuer.address, built.root)
    box.intend(
        chain.journal_key,
        [
            (k, Intent(i, identifier, item["cid"], s.commitment, p))
            for k, i, item, s, p in zip(same, ids, items, sealed, patients, strict=True)
        ],
        stored=[item["cid"] for item in items] + [str(manifest_cid)],
    )
    (receipt,) = chain.send(
        "anchoring the batch",
        issuer,
        [contract.functions.anchorBatch(built.root, manifest_cid.digest, len(items))],
        BATCH_GAS_LIMIT,
    )
    when = anchored_at(chain, receipt)
    anchored = tuple(
        Record(
            id=i, patient=p, issuer=issuer.address, previous=e.previous, cid=s.cid,
            commitment=s.commitment, category=e.draft.category, anchored_at=when,
            block=receipt.block_number, transaction_hash=receipt.transaction_hash,
            superseded=False, chain_id=chain.chain_id, registry=contract.address,
            batch=identifier, registered=False,
        )
        for e, p, s, i in zip(entries, patients, sealed, ids, strict=True)
    )  # fmt: skip
    return Batch(
        identifier, built.root, manifest_cid, issuer.address, anchored,
        receipt.transaction_hash, receipt.gas_used,
    )  # fmt: skip


def ensure_registered(chain: Chain, store: BlockStore, account: Signer, record: Record) -> Record:
    """Register a batched record on its own (a no-op when it already is)."""
    (done,) = ensure_all_registered(chain, store, account, [record])
    return done


def ensure_all_registered(
    chain: Chain, store: BlockStore, account: Signer, chosen: list[Record]
) -> list[Record]:
    """Register the batched records among ``chosen`` on their own, all in one send (those
    already registered are left as they are)."""
    contract = registry(chain)
    known = chain.call_many("reading the record", [contract.functions.exists(r.id) for r in chosen])
    missing = [r for r, exists in zip(chosen, known, strict=True) if not exists]
    calls = []
    for record in missing:
        where = batch_proof(chain, store, record.id)
        entry = (
            record.patient, record.cid.digest, record.commitment, int(record.category),
            record.previous or ZERO_ID,
        )  # fmt: skip
        calls.append(contract.functions.registerFromBatch(
            where.issuer, where.root, entry, where.index, where.siblings
        ))  # fmt: skip
    if calls:
        chain.send("registering records from their batches", account, calls, REGISTER_GAS_LIMIT)
    return [replace(r, registered=True) for r in chosen]
