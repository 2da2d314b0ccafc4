"""Client of the RecordRegistry: anchoring records one by one or in Merkle batches, reading and
opening them, verifying them end to end, and walking their versions.

A record is a sealed FHIR body in IPFS (:mod:`medledger.sealed`) whose pointer and commitment
are anchored on chain under an id that commits to all of its fields
(:mod:`~medledger.records.ids`), so whatever node or store served them, a record read back is
checked against its id, its blocks against their CIDs and its plaintext against its
commitment.

Modules: :mod:`~medledger.records.record` (Record, RecordRef, the pointer check),
:mod:`~medledger.records.ids` (record ids, sealing context),
:mod:`~medledger.records.anchoring`,
:mod:`~medledger.records.reading`, :mod:`~medledger.records.verifying` (end to end, erased
records reported as such), :mod:`~medledger.records.versions` (a record's versions),
:mod:`~medledger.records.unconfirmed` (writes sent that the chain does not hold),
:mod:`~medledger.records.batches` (anchoring a batch, registering a batched record) and
:mod:`~medledger.records.batch_index` (records known from batch manifests),
:mod:`~medledger.records.origins` (where each record sat in its input: its Bundle entry's
``fullUrl`` and ``Type/id``, kept privately in the home so exports can resolve references).

Records never consults consent: who else receives a new record's key is the ``readers``
callback its caller passes (``consent.readers_for(chain)``), and which records were erased
the ``erasures`` lookup (``consent.erasures(chain)``).
"""

from medledger.categories import Category
from medledger.records import origins
from medledger.records.anchoring import (
    ANCHOR_SIGNATURE,
    Anchored,
    Draft,
    ExtraReaders,
    already_anchored,
    anchor,
)
from medledger.records.batch_index import (
    BatchProof,
    batch_of,
    batch_proof,
    batched_for,
    find_batched,
)
from medledger.records.batches import (
    Batch,
    Entry,
    anchor_batch,
    batch_id,
    ensure_all_registered,
    ensure_registered,
)
from medledger.records.ids import Context, associated_data, derive_id
from medledger.records.reading import for_patient, get, open_body, open_with, read, writer_of
from medledger.records.record import (
    Erasure,
    Erasures,
    Record,
    RecordRef,
    Verification,
    check_pointer,
)
from medledger.records.unconfirmed import UnconfirmedWrite, unconfirmed_writes
from medledger.records.verifying import verify, verify_patient
from medledger.records.versions import history

__all__ = [
    "ANCHOR_SIGNATURE",
    "Anchored",
    "Batch",
    "BatchProof",
    "Category",
    "Context",
    "Draft",
    "Entry",
    "Erasure",
    "Erasures",
    "ExtraReaders",
    "Record",
    "RecordRef",
    "UnconfirmedWrite",
    "Verification",
    "already_anchored",
    "anchor",
    "anchor_batch",
    "associated_data",
    "batch_id",
    "batch_of",
    "batch_proof",
    "batched_for",
    "check_pointer",
    "derive_id",
    "ensure_all_registered",
    "ensure_registered",
    "find_batched",
    "for_patient",
    "get",
    "history",
    "open_body",
    "open_with",
    "origins",
    "read",
    "unconfirmed_writes",
    "verify",
    "verify_patient",
    "writer_of",
]
