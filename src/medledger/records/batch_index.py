"""Records known from batches: every batch's manifest read back, its tree rebuilt and checked
against the root and count the chain holds, and a record found, listed or proven from it.

A record of a batch is not on chain on its own until ``registerFromBatch`` has run for it;
until then the patient and the issuer find it here (with a store that serves the manifests).
A manifest the store cannot serve, or that does not match its batch, is ignored, never
trusted: its records are simply not found. The index is kept per chain connection
(``chain.cache``) and dropped when this client anchors a batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_utils.address import to_checksum_address

from medledger.chain import events
from medledger.crypto import merkle
from medledger.errors import IntegrityError, MedLedgerError, PreconditionFailed
from medledger.ipfs.cid import Cid
from medledger.records.record import Record, category_of, check_pointer, registry
from medledger.sealed import manifest

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from medledger.chain import Chain
    from medledger.chain.events import Log
    from medledger.ipfs.blockstore import BlockStore

CACHE_KEY = "batches"


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
    found = _index(chain, store).get(record_id)
    if found is None:
        return None
    check_pointer(chain, found.record)
    tree, index = found.tree, found.index
    if not merkle.verify_indexed(tree.proof(index), tree.root, record_id, index, tree.count):
        raise IntegrityError(f"record 0x{record_id.hex()} is not in its batch's tree")
    return found.record


def batched_for(chain: Chain, store: BlockStore, patient: str) -> list[Record]:
    """Records of a patient known from batches (registered or not)."""
    patient = to_checksum_address(patient)
    return [i.record for i in _index(chain, store).values() if i.record.patient == patient]


def batched_successor(chain: Chain, store: BlockStore, record_id: bytes) -> Record | None:
    """The next version of a record written in a batch and not registered yet (so the chain
    has no ``RecordSuperseded`` for it), checked like :func:`find_batched`; None if none."""
    for entry in _index(chain, store).values():
        if entry.record.previous == record_id and not _registered(chain, entry.record.id):
            return find_batched(chain, store, entry.record.id)
    return None


def batch_of(chain: Chain, record_id: bytes) -> bytes | None:
    """The batch a registered record was proven from (its ``RecordProven`` event), or None
    for a record anchored on its own."""
    proven = events.logs(chain, "RecordRegistry", "RecordProven", {"id": record_id})
    return bytes(proven[0]["batchId"]) if proven else None


def batch_proof(chain: Chain, store: BlockStore, record_id: bytes) -> BatchProof:
    """Return the Merkle proof of a batched record."""
    found = _index(chain, store).get(record_id)
    if found is None:
        raise PreconditionFailed(f"record 0x{record_id.hex()} is in no known batch")
    return BatchProof(found.issuer, found.tree.root, found.index, found.tree.proof(found.index))


def _registered(chain: Chain, record_id: bytes) -> bool:
    return bool(chain.call("reading the record", registry(chain).functions.exists(record_id)))


def forget(chain: Chain) -> None:
    """Drop the index (a batch was anchored, or a test altered a manifest)."""
    chain.cache.pop(CACHE_KEY, None)


def _index(chain: Chain, store: BlockStore) -> dict[bytes, _Indexed]:
    """Every record of every batch on this chain whose manifest the store can serve."""
    cached = chain.cache.get(CACHE_KEY)
    if isinstance(cached, dict):
        return cached
    address = registry(chain).address
    index: dict[bytes, _Indexed] = {}
    for log in events.logs(chain, "RecordRegistry", "BatchAnchored"):
        try:
            parsed = manifest.parse(store.cat(Cid.from_digest_v0(log["manifestDigest"])))
            if (
                parsed.root != log["root"]
                or parsed.tree.count != int(log["count"])
                or parsed.chain_id != chain.chain_id
                or parsed.contract.lower() != address.lower()
                or parsed.issuer.lower() != str(log["issuer"]).lower()
            ):
                continue  # a manifest that does not match its batch is ignored, never trusted
            when = log.time(chain)
            found = [
                _Indexed(_record(chain, address, log, item, when), log["issuer"], position,
                         parsed.tree)
                for position, item in enumerate(parsed.items)
            ]  # fmt: skip
        except (MedLedgerError, ValueError, KeyError, TypeError, AttributeError):
            continue  # a manifest this store cannot serve: its records are not found here
        index.update((entry.record.id, entry) for entry in found)
    chain.cache[CACHE_KEY] = index
    return index


def _record(
    chain: Chain, registry_address: str, log: Log, item: Mapping[str, Any], when: datetime
) -> Record:
    previous = item.get("previous")
    return Record(
        id=bytes.fromhex(str(item["id"]).removeprefix("0x")),
        patient=to_checksum_address(item["patient"]),
        issuer=log["issuer"],
        previous=bytes.fromhex(str(previous).removeprefix("0x")) if previous else None,
        cid=Cid.parse(str(item["cid"])),
        commitment=bytes.fromhex(str(item["commitment"]).removeprefix("0x")),
        category=category_of(int(item["category"])),
        anchored_at=when,
        block=log.block,
        transaction_hash=log.transaction_hash,
        superseded=False,
        chain_id=chain.chain_id,
        registry=registry_address,
        batch=log["batchId"],
        registered=False,
    )
