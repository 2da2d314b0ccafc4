"""Batch anchoring: one transaction anchors many records by the Merkle root of their ids.

Each record of a batch is sealed and stored exactly like a single record and gets the id it
would have had alone (``records.derive_id`` with the batch's issuer). The batch's *manifest*, a
public JSON object in IPFS, lists every record's fields (id, patient, CID, commitment, category,
previous version) in tree order: the same fields a single anchoring puts in its public event, so
a manifest reveals nothing more than single anchoring would, and anyone holding it can rebuild
the positional tree (``merkle.IndexedTree``), prove a record off chain from its proof alone, or
register it on chain. A batch belongs to its issuer: its id is ``keccak256(abi.encode(issuer,
root))``, and the chain holds no more records from it than the count it declared.

A record of a batch becomes an ordinary record (``getRecord``, grants, claims, history) once
``registerFromBatch`` has run for it; the client does that on demand, when a grant or a
grantee's read needs it. Until then the patient and the issuer read it straight from the batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from hexbytes import HexBytes

from medledger import providers as registry
from medledger import records
from medledger import sealed as sealing
from medledger.chain import deployments
from medledger.crypto import merkle
from medledger.errors import IntegrityError, MedLedgerError, PreconditionFailed
from medledger.ipfs.cid import Cid
from medledger.records.categories import Category

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from eth_account.signers.local import LocalAccount

    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore

MANIFEST_KIND = "medledger/batch-manifest"
MANIFEST_VERSION = 2  # v2: positional trees (records in tree order); v1 trees hashed sorted pairs
BATCH_GAS_LIMIT = 200_000
REGISTER_GAS_LIMIT = 200_000


@dataclass(frozen=True)
class Entry:
    """One record to put in a batch."""

    patient: str
    draft: records.Draft
    previous: bytes | None = None


def batch_id(issuer: str, root: bytes) -> bytes:
    """A batch's id, as ``RecordRegistry.batchIdOf`` derives it."""
    return keccak(encode(["address", "bytes32"], [to_checksum_address(issuer), root]))


@dataclass(frozen=True)
class Batch:
    """An anchored batch."""

    id: bytes
    root: bytes
    manifest: Cid
    issuer: str
    records: tuple[records.Record, ...]
    transaction_hash: str
    gas_used: int


def anchor_batch(
    chain: Chain,
    store: BlockStore,
    issuer: LocalAccount,
    entries: Iterable[Entry],
    progress: Callable[[int], None] | None = None,
) -> Batch:
    """Seal and store every entry, then anchor them all in one transaction."""
    entries = list(entries)
    if not entries:
        raise PreconditionFailed("a batch needs at least one record")
    contract = deployments.contract(chain, "RecordRegistry")
    checksummed = {p: to_checksum_address(p) for p in {e.patient for e in entries}}
    for patient in checksummed.values():  # the chain checks each again when it is registered
        registry.require_writer(chain, issuer.address, patient)
    writer = registry.writer_number(chain, issuer.address)
    for entry in entries:
        if entry.previous is not None and records.writer_of(chain, entry.previous) != writer:
            raise PreconditionFailed(
                f"0x{entry.previous.hex()} was written by another writer: only its writer "
                "writes its next version"
            )
    readers = records.Readers(chain, issuer)
    jobs = [
        sealing.Job(
            checksummed[e.patient],
            e.draft.body,
            int(e.draft.category),
            e.previous,
            readers.of(checksummed[e.patient], e.draft.category),
        )
        for e in entries
    ]
    ctx = sealing.Context(chain.chain_id, contract.address, issuer.address)
    sealed = sealing.seal_all(ctx, store, jobs, progress)
    rows: list[dict[str, Any]] = [
        {
            "id": "0x" + s.id.hex(),
            "patient": job.patient,
            "cid": str(s.cid),
            "commitment": "0x" + s.commitment.hex(),
            "category": job.category,
            "previous": "0x" + job.previous.hex() if job.previous else None,
        }
        for job, s in zip(jobs, sealed, strict=True)
    ]
    tree = merkle.IndexedTree.build([s.id for s in sealed])
    manifest = {
        "v": MANIFEST_VERSION, "kind": MANIFEST_KIND, "chain": chain.chain_id,
        "registry": contract.address, "issuer": issuer.address, "root": "0x" + tree.root.hex(),
        "records": rows,
    }  # fmt: skip
    manifest_cid = store.add_bytes(json.dumps(manifest, separators=(",", ":")).encode())
    (receipt,) = chain.transact_many(
        "anchoring the batch",
        issuer,
        [contract.functions.anchorBatch(tree.root, manifest_cid.digest, len(rows))],
        BATCH_GAS_LIMIT,
    )
    chain.cache.pop("batches", None)
    identifier = batch_id(issuer.address, tree.root)
    tx = "0x" + bytes(receipt["transactionHash"]).hex()
    block = int(receipt["blockNumber"])
    when = chain.block_time(block)
    anchored = tuple(
        records.Record(
            id=s.id,
            patient=job.patient,
            issuer=issuer.address,
            previous=job.previous,
            cid=s.cid,
            commitment=s.commitment,
            category=Category(job.category),
            anchored_at=when,
            block=block,
            transaction_hash=tx,
            superseded=False,
            chain_id=chain.chain_id,
            registry=contract.address,
            batch=identifier,
            registered=False,
        )
        for job, s in zip(jobs, sealed, strict=True)
    )
    return Batch(
        identifier, tree.root, manifest_cid, issuer.address, anchored, tx, int(receipt["gasUsed"])
    )


@dataclass(frozen=True)
class _Indexed:
    record: records.Record
    issuer: str
    index: int
    tree: merkle.IndexedTree


def _index(chain: Chain, store: BlockStore) -> dict[bytes, _Indexed]:
    """Every record of every batch on this chain whose manifest the store can serve."""
    cached = chain.cache.get("batches")
    if isinstance(cached, dict):
        return cached
    contract = deployments.contract(chain, "RecordRegistry")
    start = deployments.require(chain).contracts["RecordRegistry"].block
    index: dict[bytes, _Indexed] = {}
    for event in contract.events.BatchAnchored().get_logs(from_block=start):
        args = event["args"]
        try:
            manifest = json.loads(store.cat(Cid.from_digest_v0(bytes(args["manifestDigest"]))))
            rows = manifest["records"]
            tree = merkle.IndexedTree.build([bytes(HexBytes(r["id"])) for r in rows])
        except (MedLedgerError, ValueError, KeyError, TypeError):
            continue  # a manifest this store cannot serve: its records are not found here
        if tree.root != bytes(args["root"]) or tree.count != int(args["count"]):
            continue  # a manifest that does not match its batch is ignored, never trusted
        issuer = to_checksum_address(args["issuer"])
        tx = "0x" + bytes(event["transactionHash"]).hex()
        when = chain.block_time(int(event["blockNumber"]))
        for position, row in enumerate(rows):
            record = _record(
                chain, contract.address, issuer, row, bytes(args["batchId"]),
                int(event["blockNumber"]), tx, when,
            )  # fmt: skip
            index[record.id] = _Indexed(record, issuer, position, tree)
    chain.cache["batches"] = index
    return index


def find(chain: Chain, store: BlockStore, record_id: bytes) -> records.Record | None:
    """Return a record known only from a batch (checked against its id and the root)."""
    found = _index(chain, store).get(record_id)
    if found is None:
        return None
    records.check_pointer(chain, found.record)
    tree, index = found.tree, found.index
    if not merkle.verify_indexed(tree.proof(index), tree.root, record_id, index, tree.count):
        raise IntegrityError(f"record 0x{record_id.hex()} is not in its batch's tree")
    return found.record


def in_batches_for(chain: Chain, store: BlockStore, patient: str) -> list[records.Record]:
    """Records of a patient known from batches (registered or not)."""
    patient = to_checksum_address(patient)
    return [i.record for i in _index(chain, store).values() if i.record.patient == patient]


@dataclass(frozen=True)
class Proof:
    """Where a batched record sits: its batch's issuer and root, its position, its siblings."""

    issuer: str
    root: bytes
    index: int
    siblings: list[bytes]


def proof(chain: Chain, store: BlockStore, record_id: bytes) -> Proof:
    """Return the Merkle proof of a batched record."""
    found = _index(chain, store).get(record_id)
    if found is None:
        raise PreconditionFailed(f"record 0x{record_id.hex()} is in no known batch")
    return Proof(found.issuer, found.tree.root, found.index, found.tree.proof(found.index))


def ensure_registered(
    chain: Chain, store: BlockStore, account: LocalAccount, record: records.Record
) -> records.Record:
    """Register a batched record on its own (a no-op when it already is)."""
    contract = deployments.contract(chain, "RecordRegistry")
    if chain.call("reading the record", contract.functions.exists(record.id)):
        return record
    where = proof(chain, store, record.id)
    entry = (
        record.patient, record.cid.digest, record.commitment, int(record.category),
        record.previous or records.ZERO_ID,
    )  # fmt: skip
    chain.transact_many(
        "registering the record from its batch",
        account,
        [
            contract.functions.registerFromBatch(
                where.issuer, where.root, entry, where.index, where.siblings
            )
        ],
        REGISTER_GAS_LIMIT,
    )
    return replace(record, registered=True)


def _record(
    chain: Chain, registry_address: str, issuer: str, row: dict[str, Any], batch: bytes,
    block: int, tx: str, when: Any,
) -> records.Record:  # fmt: skip
    try:
        category: Category | int = Category(int(row["category"]))
    except ValueError:
        category = int(row["category"])
    return records.Record(
        id=bytes(HexBytes(row["id"])),
        patient=to_checksum_address(row["patient"]),
        issuer=issuer,
        previous=bytes(HexBytes(row["previous"])) if row.get("previous") else None,
        cid=Cid.parse(row["cid"]),
        commitment=bytes(HexBytes(row["commitment"])),
        category=category,
        anchored_at=when,
        block=block,
        transaction_hash=tx,
        superseded=False,
        chain_id=chain.chain_id,
        registry=registry_address,
        batch=batch,
        registered=False,
    )
