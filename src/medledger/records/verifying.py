"""Verifying records end to end: one record, or every record of a patient.

Each record's pointer is checked against its id, its blocks against their CIDs and, with a
reader's key, its plaintext against its commitment. A record the patient erased has no body
by design: it is reported as erased (when, by whom), not as failed. A body that is missing
without an erasure on chain is a failure (lost or removed), as is a record this client sent
that the chain does not hold (:mod:`~medledger.records.unconfirmed`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medledger import providers
from medledger.errors import (
    DecryptionFailed,
    IntegrityError,
    NoKeyForReader,
    RecordNotFound,
    StoreError,
)
from medledger.records.reading import for_patient, get, open_body
from medledger.records.record import RecordRef, Verification, check_pointer
from medledger.records.unconfirmed import unconfirmed_writes

if TYPE_CHECKING:
    from medledger.accounts import Signer
    from medledger.chain import Chain
    from medledger.ipfs.blockstore import BlockStore
    from medledger.records.record import Erasures, Record


def verify(
    chain: Chain,
    store: BlockStore,
    record_id: bytes | str,
    reader: Signer | None,
    erasures: Erasures | None = None,
) -> Verification:
    """Check a record's pointer, its stored blocks and, with a reader key, its commitment.

    With ``erasures`` (``consent.erasures(chain)``), an erased record is reported as erased.
    """
    label = record_id if isinstance(record_id, str) else "0x" + record_id.hex()
    try:
        record = get(chain, record_id, store)
    except RecordNotFound as exc:
        ref = RecordRef.parse(record_id) if isinstance(record_id, str) else RecordRef(record_id)
        lost = unconfirmed_writes(chain, record_id=ref.id)
        return Verification(label, False, (), lost[0].problem if lost else str(exc))
    except (IntegrityError, StoreError) as exc:
        return Verification(label, False, (), str(exc))
    return _verify_record(chain, store, record, reader, erasures)


def verify_patient(
    chain: Chain,
    store: BlockStore,
    patient: str,
    reader: Signer | None,
    erasures: Erasures | None = None,
) -> list[Verification]:
    """Verify every record of a registered patient, oldest first (``PatientNotFound`` for
    an address that is not one), then report each write this client sent for them that the
    chain does not hold."""
    patient = providers.require_patient(chain, patient)
    found = for_patient(chain, patient, store)
    results = [_verify_record(chain, store, r, reader, erasures) for r in found]
    known = {r.id for r in found}
    results.extend(
        Verification("0x" + w.record_id.hex(), False, (), w.problem)
        for w in unconfirmed_writes(chain, patient=patient)
        if w.record_id not in known
    )
    return results


def _verify_record(
    chain: Chain,
    store: BlockStore,
    record: Record,
    reader: Signer | None,
    erasures: Erasures | None,
) -> Verification:
    checks: list[str] = []
    try:
        check_pointer(chain, record)
        checks.append("pointer matches id")
        erased = erasures(record) if erasures is not None else None
        if erased is not None:  # its keys are destroyed and its body unpinned, by design
            return Verification(record.hex_id, True, tuple(checks), erased=erased)
        body = store.cat(record.cid)
        checks.append("body matches CID")
        if reader is not None:
            try:
                open_body(chain, record, body, reader.key)
                checks.append("plaintext matches commitment")
            except (DecryptionFailed, NoKeyForReader):
                checks.append("commitment not checked (no key for this account)")
    except (IntegrityError, StoreError) as exc:
        return Verification(record.hex_id, False, tuple(checks), str(exc))
    return Verification(record.hex_id, True, tuple(checks))
