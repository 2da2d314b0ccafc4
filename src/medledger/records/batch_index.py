"""Records known from batches: each batch's manifest read back once, its tree rebuilt and
checked against the root and count the chain holds, and its items kept in the event index
(:mod:`medledger.chain.eventindex`, a derived table) so that a record is found, listed or
proven without reading every manifest again.

A record of a batch is not on chain on its own until ``registerFromBatch`` has run for it;
until then the patient and the issuer find it here (with a store that serves the manifests).
A manifest the store cannot serve, or that does not match its batch, is ignored, never
trusted: its records are simply not found (a batch whose manifest could not be read is tried
again when a record is looked for and not found). Each item kept is checked again when it is
used: its fields must hash to its id and its id must sit at its position under the root the
chain holds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address

from medledger.chain import eventindex, events
from medledger.crypto import merkle
from medledger.errors import IntegrityError, MedLedgerError, PreconditionFailed
from medledger.ipfs.cid import Cid
from medledger.records.record import Record, category_of, check_pointer, registry
from medledger.sealed import manifest

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Mapping

    from medledger.chain import Chain
    from medledger.chain.eventindex import RawLog
    from medledger.chain.events import Log
    from medledger.ipfs.blockstore import BlockStore

_TABLE = "batch_items"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch_items (
    block INTEGER NOT NULL,
    position INTEGER NOT NULL,
    slot INTEGER NOT NULL,
    record BLOB NOT NULL,
    patient TEXT NOT NULL,
    previous BLOB,
    cid TEXT NOT NULL,
    commitment BLOB NOT NULL,
    category INTEGER NOT NULL,
    PRIMARY KEY (block, position, slot)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS batch_items_by_record ON batch_items (record);
CREATE INDEX IF NOT EXISTS batch_items_by_patient ON batch_items (patient);
CREATE INDEX IF NOT EXISTS batch_items_by_previous ON batch_items (previous);
CREATE TABLE IF NOT EXISTS batches_read (
    block INTEGER NOT NULL,
    position INTEGER NOT NULL,
    readable INTEGER NOT NULL,
    PRIMARY KEY (block, position)
) WITHOUT ROWID;
"""
_CONTRACT, _EVENT = "RecordRegistry", "BatchAnchored"
_READ_TABLE = "batches_read"


@dataclass(frozen=True)
class BatchProof:
    """Where a batched record sits: its batch's issuer and root, its position, its siblings."""

    issuer: str
    root: bytes
    index: int
    siblings: list[bytes]


@dataclass(frozen=True)
class _Indexed:
    record: Record
    issuer: str
    index: int
    tree: merkle.IndexedTree


def find_batched(chain: Chain, store: BlockStore, record_id: bytes) -> Record | None:
    """Return a record known only from a batch (checked against its id and the root)."""
    found = _entry(chain, store, record_id)
    return _checked(chain, found) if found else None


def batched_for(chain: Chain, store: BlockStore, patient: str) -> list[Record]:
    """Records of a patient known from batches (registered or not)."""
    patient = to_checksum_address(patient)
    return [i.record for i in _lookup(chain, store, "patient", patient)]


def batched_successor(chain: Chain, store: BlockStore, record_id: bytes) -> Record | None:
    """The next version of a record written in a batch and not registered yet (so the chain
    has no ``RecordSuperseded`` for it), checked like :func:`find_batched`; None if none."""
    for entry in _lookup(chain, store, "previous", record_id):
        if not _registered(chain, entry.record.id):
            return _checked(chain, entry)
    return None


def batch_of(chain: Chain, record_id: bytes) -> bytes | None:
    """The batch a registered record was proven from (its ``RecordProven`` event), or None
    for a record anchored on its own."""
    proven = events.logs(chain, "RecordRegistry", "RecordProven", {"id": record_id})
    return bytes(proven[0]["batchId"]) if proven else None


def batch_proof(chain: Chain, store: BlockStore, record_id: bytes) -> BatchProof:
    """Return the Merkle proof of a batched record."""
    entry = _entry(chain, store, record_id)
    if entry is None:
        raise PreconditionFailed(f"record 0x{record_id.hex()} is in no known batch")
    return BatchProof(entry.issuer, entry.tree.root, entry.index, entry.tree.proof(entry.index))


def _registered(chain: Chain, record_id: bytes) -> bool:
    return bool(chain.call("reading the record", registry(chain).functions.exists(record_id)))


_TREES = "batch-trees"


def _entry(chain: Chain, store: BlockStore, record_id: bytes) -> _Indexed | None:
    """The kept item of a record, once the batches not read yet (and, if it is not among
    them, those whose manifest could not be read before) have been read."""
    found = _lookup(chain, store, "record", record_id) or _lookup(
        chain, store, "record", record_id, retry=True
    )
    return found[0] if found else None


def _checked(chain: Chain, entry: _Indexed) -> Record:
    """The record of ``entry`` once its fields hash to its id and its id sits at its position
    under the root the chain holds."""
    check_pointer(chain, entry.record)
    tree, index = entry.tree, entry.index
    if not merkle.verify_indexed(tree.proof(index), tree.root, entry.record.id, index, tree.count):
        raise IntegrityError(f"record {entry.record.hex_id} is not in its batch's tree")
    return entry.record


def _lookup(
    chain: Chain, store: BlockStore, column: str, value: bytes | str, retry: bool = False
) -> list[_Indexed]:
    """The kept items whose ``column`` is ``value``, once every batch not read yet (and with
    ``retry``, every batch whose manifest could not be read) has been read."""
    db, batches = _read_new(chain, store, retry)
    decoded: dict[tuple[int, int], Log] = {}
    rows = db.execute(
        f"SELECT block, position, slot, record, patient, previous, cid, commitment, category "
        f"FROM {_TABLE} WHERE {column} = ? ORDER BY block, position, slot",
        (value,),
    ).fetchall()
    address = registry(chain).address
    found = []
    for block, position, slot, *item in rows:
        raw = batches.get((block, position))
        if raw is None:
            continue  # its batch event is gone (a reorg the index has not cleaned yet)
        if (block, position) not in decoded:
            decoded[block, position] = events.decode(_CONTRACT, _EVENT, raw)
        log = decoded[block, position]
        tree = _tree(chain, db, log)
        found.append(_Indexed(_record(chain, address, log, item), log["issuer"], slot, tree))
    return found


def _read_new(
    chain: Chain, store: BlockStore, retry: bool
) -> tuple[sqlite3.Connection, dict[tuple[int, int], RawLog]]:
    """Read the manifest of every batch event not read yet; return the index's database and
    the batch events by (block, position), undecoded (decoding one costs about 0.1 ms: only
    the new ones and those a lookup finds are decoded)."""
    index = eventindex.for_chain(chain)
    db = index.derived(_SCHEMA)
    wanted = "readable = 1" if retry else "1"
    seen = {
        (b, p) for b, p in db.execute(f"SELECT block, position FROM {_READ_TABLE} WHERE {wanted}")
    }
    address = registry(chain).address
    every = index.select(address, events.topics(_CONTRACT, _EVENT, None))
    batches = {(raw.block, raw.position): raw for raw in every}
    for key, raw in batches.items():
        if key in seen:
            continue
        items = _manifest_items(chain, store, address, events.decode(_CONTRACT, _EVENT, raw))
        with index.writing() as writer:
            writer.execute(f"DELETE FROM {_TABLE} WHERE block = ? AND position = ?", key)
            writer.executemany(
                f"INSERT INTO {_TABLE} VALUES (?,?,?,?,?,?,?,?,?)",
                [(*key, slot, *item) for slot, item in enumerate(items or ())],
            )
            writer.execute(
                f"INSERT OR REPLACE INTO {_READ_TABLE} VALUES (?,?,?)",
                (*key, int(items is not None)),
            )
    return db, batches


def _manifest_items(
    chain: Chain, store: BlockStore, address: str, log: Log
) -> list[tuple[Any, ...]] | None:
    """The items of a batch's manifest as rows, or None if the store cannot serve it or it
    does not match its batch (ignored, never trusted)."""
    try:
        parsed = manifest.parse(store.cat(Cid.from_digest_v0(log["manifestDigest"])))
        if (
            parsed.root != log["root"]
            or parsed.tree.count != int(log["count"])
            or parsed.chain_id != chain.chain_id
            or parsed.contract.lower() != address.lower()
            or parsed.issuer.lower() != str(log["issuer"]).lower()
        ):
            return None
        return [_row(item) for item in parsed.items]
    except (MedLedgerError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _row(item: Mapping[str, Any]) -> tuple[Any, ...]:
    previous = item.get("previous")
    return (
        bytes.fromhex(str(item["id"]).removeprefix("0x")),
        to_checksum_address(item["patient"]),
        bytes.fromhex(str(previous).removeprefix("0x")) if previous else None,
        str(Cid.parse(str(item["cid"]))),
        bytes.fromhex(str(item["commitment"]).removeprefix("0x")),
        int(category_of(int(item["category"]))),
    )


def _tree(chain: Chain, db: sqlite3.Connection, log: Log) -> merkle.IndexedTree:
    """The tree of a batch rebuilt from its kept ids (memoised per connection)."""
    trees = chain.cache.setdefault(_TREES, {})
    key = (log.block, log.index, log.transaction_hash)
    if key not in trees:
        ids = [
            bytes(r)
            for (r,) in db.execute(
                f"SELECT record FROM {_TABLE} WHERE block = ? AND position = ? ORDER BY slot",
                (log.block, log.index),
            )
        ]
        trees[key] = merkle.IndexedTree.build(ids)
    tree: merkle.IndexedTree = trees[key]
    return tree


_cid = functools.lru_cache(maxsize=1 << 16)(Cid.parse)  # a patient's list parses its CIDs anew


def _record(chain: Chain, registry_address: str, log: Log, item: list[Any]) -> Record:
    record_id, patient, previous, cid, commitment, category = item
    return Record(
        id=bytes(record_id),
        patient=patient,
        issuer=log["issuer"],
        previous=bytes(previous) if previous else None,
        cid=_cid(cid),
        commitment=bytes(commitment),
        category=category_of(category),
        anchored_at=log.time(chain),
        block=log.block,
        transaction_hash=log.transaction_hash,
        superseded=False,
        chain_id=chain.chain_id,
        registry=registry_address,
        batch=log["batchId"],
        registered=False,
    )
