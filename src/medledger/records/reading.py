"""Reading records: one record or a patient's, checked against their ids; opening a body.
(Verifying is :mod:`~medledger.records.verifying`, versions :mod:`~medledger.records.versions`.)

Every record read from an event (or a batch manifest) is checked against its id before it is
returned, every block fetched from the store is checked against its CID, and every opened
body against its commitment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from eth_utils.address import to_checksum_address

from medledger.chain import events
from medledger.errors import IntegrityError, PreconditionFailed, RecordNotFound
from medledger.ipfs.cid import Cid
from medledger.records.batch_index import batched_for, find_batched
from medledger.records.ids import ZERO_ID, Context, associated_data
from medledger.records.record import (
    Record,
    RecordRef,
    category_of,
    check_pointer,
    registry,
)
from medledger.sealed import open_one

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.chain.events import Log
    from medledger.crypto.envelope import BodySecret
    from medledger.ipfs.blockstore import BlockStore

_CONTRACT = "RecordRegistry"


def get(chain: Chain, record_id: bytes | str, store: BlockStore | None = None) -> Record:
    """Return an anchored record, checking its event (or batch manifest) against its id.

    With a ``store``, a record anchored in a batch and not yet registered on its own is found
    through the batch manifests.
    """
    ref = RecordRef.parse(record_id) if isinstance(record_id, str) else RecordRef(record_id)
    contract = registry(chain)
    if ref.chain_id is not None and ref.chain_id != chain.chain_id:
        raise PreconditionFailed(f"the record is on chain {ref.chain_id}, not {chain.chain_id}")
    if ref.registry is not None and ref.registry != contract.address:
        raise PreconditionFailed(f"the record belongs to registry {ref.registry}")
    if not chain.call("reading the record", contract.functions.exists(ref.id)):
        if store is not None:
            batched = find_batched(chain, store, ref.id)
            if batched is not None:
                return batched
        raise RecordNotFound("0x" + ref.id.hex())
    _patient, _at, _category, superseded, _writer = chain.call(
        "reading the record", contract.functions.getRecord(ref.id)
    )
    found = events.logs(chain, _CONTRACT, "RecordAnchored", {"id": ref.id})
    if not found:
        raise IntegrityError(f"record 0x{ref.id.hex()} is on chain but its event was not served")
    record = _from_log(chain, contract.address, found[0], superseded=bool(superseded))
    check_pointer(chain, record)
    return record


def for_patient(chain: Chain, patient: str, store: BlockStore | None = None) -> list[Record]:
    """Return every record anchored for a patient, oldest first (with a store: batched too)."""
    address = registry(chain).address
    anchored = events.logs(
        chain, _CONTRACT, "RecordAnchored", {"patient": to_checksum_address(patient)}
    )
    ids = [log["id"] for log in anchored]
    replaced = events.logs(chain, _CONTRACT, "RecordSuperseded", {"previous": ids}) if ids else []
    superseded = {log["previous"] for log in replaced}
    found = [_from_log(chain, address, log, superseded=log["id"] in superseded) for log in anchored]
    if store is not None:
        known = {r.id for r in found}
        found.extend(r for r in batched_for(chain, store, patient) if r.id not in known)
        found.sort(key=lambda r: (r.block, r.anchored_at))
    return found


def writer_of(chain: Chain, record_id: bytes) -> int:
    """Who wrote a registered record: its institution's directory number, 0 for the patient.

    Raises ``RecordNotFound`` for a record that is not registered on its own (register a
    batched record first)."""
    _patient, _at, _category, _superseded, writer = chain.call(
        "reading the record", registry(chain).functions.lookup(record_id)
    )
    if int(_patient, 16) == 0:
        raise RecordNotFound("0x" + record_id.hex())
    return int(writer)


def read(chain: Chain, store: BlockStore, reader: Signer, record_id: bytes | str) -> bytes:
    """Fetch, verify and decrypt a record's body with a key wrapped for the reader."""
    record = get(chain, record_id, store)
    body = store.cat(record.cid)  # every block is checked against its CID
    return open_body(chain, record, body, reader.key)


def open_body(chain: Chain, record: Record, sealed: bytes, private_key: bytes) -> bytes:
    """Decrypt a sealed body with a key wrapped in its header; check it against its commitment."""
    return open_one(
        sealed, _aad(chain, record), record.commitment, private_key=private_key,
        what=f"record {record.hex_id}",
    )  # fmt: skip


def open_with(chain: Chain, record: Record, sealed: bytes, secret: BodySecret) -> bytes:
    """Decrypt a sealed body of ``record`` with its secret and check it against its commitment."""
    return open_one(
        sealed, _aad(chain, record), record.commitment, secret=secret,
        what=f"record {record.hex_id}",
    )  # fmt: skip


def _aad(chain: Chain, record: Record) -> bytes:
    return associated_data(
        Context(chain.chain_id, record.registry, record.issuer), record.patient,
        int(record.category), record.previous,
    )  # fmt: skip


def _from_log(chain: Chain, registry_address: str, log: Log, superseded: bool) -> Record:
    previous = log["previous"]
    return Record(
        id=log["id"],
        patient=log["patient"],
        issuer=log["issuer"],
        previous=None if previous == ZERO_ID else previous,
        cid=Cid.from_digest_v0(log["cidDigest"]),
        commitment=log["commitment"],
        category=category_of(log["category"]),
        anchored_at=log.time(chain),
        block=log.block,
        transaction_hash=log.transaction_hash,
        superseded=superseded,
        chain_id=chain.chain_id,
        registry=registry_address,
    )
