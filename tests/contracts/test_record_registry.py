"""RecordRegistry: who may anchor, pointer validation, ids, versions and lookups.

Every test starts from the same world (module-scoped, rolled back by Ape after each test):
``patient`` and ``other_patient`` registered, ``hospital`` verified, ``doctor`` an active
practitioner of the hospital. ``clinic`` and ``stranger`` have no role.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from ape.exceptions import ContractLogicError
from hexbytes import HexBytes

from .support import (
    NO_RECORD,
    ZERO_ADDRESS,
    Category,
    Kind,
    assert_events,
    digest,
    record_id,
    reverts,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

    from .conftest import Anchored, AnchoredBatch


@pytest.fixture(scope="module", autouse=True)
def world(
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    register_patient: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
) -> None:
    register_patient(patient)
    register_patient(other_patient)
    verified_institution(Kind.HOSPITAL)
    add_practitioner(hospital, doctor)


def record_of(registry: Any, record_id: bytes) -> dict[str, Any]:
    return dict(registry.getRecord(record_id).items())


def anchored_event(registry: Any, record: Anchored) -> Any:
    return registry.RecordAnchored(
        id=record.id,
        patient=record.patient,
        issuer=record.issuer,
        previous=record.previous,
        cidDigest=record.cid_digest,
        commitment=record.commitment,
        category=record.category,
    )


def block_time(chain: Any, record: Anchored) -> int:
    return chain.blocks[record.receipt.block_number].timestamp


# ============================================================================ who may anchor


@pytest.mark.parametrize("writer", ["patient-self", "verified-institution", "active-practitioner"])
def test_authorized_writer_anchors_record_with_id_from_compute_record_id(
    chain: Any,
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    writer: str,
) -> None:
    issuer = {"patient-self": patient, "verified-institution": hospital}.get(writer, doctor)
    cid, commitment = digest("cid"), digest("commitment")
    args = (patient, cid, commitment, Category.LAB, NO_RECORD)
    expected_id = HexBytes(
        record_registry.computeRecordId(patient, issuer, cid, commitment, Category.LAB, NO_RECORD)
    )
    assert HexBytes(record_registry.anchor.call(*args, sender=issuer)) == expected_id
    assert not record_registry.exists(expected_id)

    tx = record_registry.anchor(*args, sender=issuer)

    assert_events(
        tx,
        record_registry.RecordAnchored(
            id=expected_id,
            patient=patient,
            issuer=issuer,
            previous=NO_RECORD,
            cidDigest=cid,
            commitment=commitment,
            category=Category.LAB,
        ),
    )
    assert record_of(record_registry, expected_id) == {
        "patient": patient.address,
        "anchoredAt": chain.blocks[tx.block_number].timestamp,
        "category": Category.LAB,
        "superseded": False,
    }
    assert record_registry.exists(expected_id)


def test_reinstated_institution_anchors_again(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    approve: Callable[..., Any],
    suspend: Callable[..., Any],
    create_record: Callable[..., Anchored],
) -> None:
    suspend(hospital)
    approve(hospital)
    record = create_record(hospital, patient)
    assert_events(record.receipt, anchored_event(record_registry, record))


@pytest.mark.parametrize("kind", [Kind.LABORATORY, Kind.INSURER], ids=lambda k: k.name.lower())
def test_any_verified_institution_kind_may_anchor(
    record_registry: Any,
    patient: AccountAPI,
    clinic: AccountAPI,
    verified_institution: Callable[..., AccountAPI],
    create_record: Callable[..., Anchored],
    kind: Kind,
) -> None:
    # As specified, writers are not restricted by institution kind: an insurer or a research
    # sponsor, once verified, may write records for any registered patient.
    verified_institution(kind, clinic)
    record = create_record(clinic, patient)
    assert record_registry.exists(record.id)


UNAUTHORIZED = [
    "stranger",
    "registrar",
    "other-patient",
    "pending-institution",
    "suspended-institution",
    "practitioner-of-suspended-institution",
    "removed-practitioner",
]


@pytest.mark.parametrize("case", UNAUTHORIZED)
def test_anchor_reverts_when_issuer_may_not_write(
    record_registry: Any,
    provider_registry: Any,
    registrars: list[AccountAPI],
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    apply_institution: Callable[..., Any],
    suspend: Callable[..., Any],
    case: str,
) -> None:
    if case == "pending-institution":
        apply_institution(clinic, Kind.CLINIC)
    if case in ("suspended-institution", "practitioner-of-suspended-institution"):
        suspend(hospital)
    if case == "removed-practitioner":
        provider_registry.removePractitioner(doctor, sender=hospital)
    issuer = {
        "stranger": stranger,
        "registrar": registrars[0],
        "other-patient": other_patient,
        "pending-institution": clinic,
        "suspended-institution": hospital,
    }.get(case, doctor)

    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=issuer, patient=patient):
        record_registry.anchor(
            patient, digest("cid"), digest("commitment"), Category.LAB, NO_RECORD, sender=issuer
        )


@pytest.mark.parametrize(
    "subject", ["no-role", "institution", "practitioner"], ids=lambda s: f"patient-is-{s}"
)
def test_anchor_reverts_when_patient_is_not_registered(
    record_registry: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    subject: str,
) -> None:
    not_a_patient = {"no-role": stranger, "institution": hospital}.get(subject, doctor)
    with reverts(record_registry.RecordPatientNotRegistered, patient=not_a_patient):
        record_registry.anchor(
            not_a_patient,
            digest("cid"),
            digest("commitment"),
            Category.LAB,
            NO_RECORD,
            sender=hospital,
        )


def test_anchor_reports_unregistered_patient_before_unauthorized_issuer(
    record_registry: Any, stranger: AccountAPI
) -> None:
    with reverts(record_registry.RecordPatientNotRegistered, patient=stranger):
        record_registry.anchor(
            stranger, digest("cid"), digest("commitment"), Category.LAB, NO_RECORD, sender=stranger
        )


# ============================================================================ validation


@pytest.mark.parametrize(
    ("cid", "commitment"),
    [
        pytest.param(NO_RECORD, digest("commitment"), id="zero-cid-digest"),
        pytest.param(digest("cid"), NO_RECORD, id="zero-commitment"),
        pytest.param(NO_RECORD, NO_RECORD, id="both-zero"),
    ],
)
def test_anchor_reverts_when_pointer_or_commitment_is_zero(
    record_registry: Any, patient: AccountAPI, hospital: AccountAPI, cid: bytes, commitment: bytes
) -> None:
    with reverts(record_registry.RecordInvalidPointer, cidDigest=cid, commitment=commitment):
        record_registry.anchor(patient, cid, commitment, Category.LAB, NO_RECORD, sender=hospital)


def test_anchor_reverts_when_category_is_zero(
    record_registry: Any, patient: AccountAPI, hospital: AccountAPI
) -> None:
    with reverts(record_registry.RecordInvalidCategory, category=0):
        record_registry.anchor(
            patient, digest("cid"), digest("commitment"), 0, NO_RECORD, sender=hospital
        )


def test_anchor_validates_input_before_asking_who_may_write(
    record_registry: Any, stranger: AccountAPI
) -> None:
    with reverts(record_registry.RecordInvalidPointer, cidDigest=NO_RECORD, commitment=NO_RECORD):
        record_registry.anchor(stranger, NO_RECORD, NO_RECORD, 0, NO_RECORD, sender=stranger)
    with reverts(record_registry.RecordInvalidCategory, category=0):
        record_registry.anchor(
            stranger, digest("cid"), digest("commitment"), 0, NO_RECORD, sender=stranger
        )


@pytest.mark.parametrize("category", [1, 16, 255], ids=["first-code", "last-named-code", "max"])
def test_anchor_accepts_any_non_zero_category(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    create_record: Callable[..., Anchored],
    category: int,
) -> None:
    record = create_record(hospital, patient, category=category)
    assert record_of(record_registry, record.id)["category"] == category


# ============================================================================ ids and duplicates


def test_anchor_reverts_when_record_already_anchored(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    create_record: Callable[..., Anchored],
) -> None:
    record = create_record(hospital, patient)
    with reverts(record_registry.RecordAlreadyAnchored, id=record.id):
        record_registry.anchor(
            patient,
            record.cid_digest,
            record.commitment,
            record.category,
            NO_RECORD,
            sender=hospital,
        )


@pytest.mark.parametrize("change", ["issuer", "category", "commitment", "patient"])
def test_same_pointer_gets_a_new_id_when_any_other_input_differs(
    record_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    create_record: Callable[..., Anchored],
    change: str,
) -> None:
    first = create_record(hospital, patient, cid_digest=digest("cid"))
    second = create_record(
        doctor if change == "issuer" else hospital,
        other_patient if change == "patient" else patient,
        cid_digest=digest("cid"),
        commitment=first.commitment if change != "commitment" else digest("other commitment"),
        category=Category.IMAGING if change == "category" else first.category,
    )
    assert second.id != first.id
    assert record_registry.exists(first.id) and record_registry.exists(second.id)


def test_get_record_reverts_when_id_is_unknown(
    record_registry: Any, patient: AccountAPI, hospital: AccountAPI
) -> None:
    never_anchored = record_registry.computeRecordId(
        patient, hospital, digest("cid"), digest("commitment"), Category.LAB, NO_RECORD
    )
    for unknown in (never_anchored, NO_RECORD):
        assert not record_registry.exists(unknown)
        with reverts(record_registry.RecordNotFound, id=unknown):
            record_registry.getRecord(unknown)


def test_providers_returns_the_provider_registry(
    record_registry: Any, provider_registry: Any
) -> None:
    assert record_registry.providers() == provider_registry.address


# ============================================================================ versions


def test_update_chain_supersedes_each_previous_version_and_keeps_its_data(
    chain: Any,
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    advance_time: Callable[[int], int],
    create_record: Callable[..., Anchored],
) -> None:
    v1 = create_record(hospital, patient, category=Category.CONDITION)
    advance_time(86_400)
    v2 = create_record(doctor, patient, category=Category.CONDITION, previous=v1.id)
    v3 = create_record(hospital, patient, category=Category.CONDITION, previous=v2.id)

    for older, newer in ((v1, v2), (v2, v3)):
        assert_events(
            newer.receipt,
            record_registry.RecordSuperseded(previous=older.id, next=newer.id),
            anchored_event(record_registry, newer),
        )
    for version, superseded in ((v1, True), (v2, True), (v3, False)):
        assert record_of(record_registry, version.id) == {
            "patient": patient.address,
            "anchoredAt": block_time(chain, version),
            "category": Category.CONDITION,
            "superseded": superseded,
        }
    assert block_time(chain, v2) - block_time(chain, v1) >= 86_400
    assert v2.id == HexBytes(
        record_registry.computeRecordId(
            patient, doctor, v2.cid_digest, v2.commitment, Category.CONDITION, v1.id
        )
    )


def test_patient_may_update_a_record_an_institution_wrote(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    create_record: Callable[..., Anchored],
) -> None:
    # As specified, any writer authorised for the patient may supersede any of the patient's
    # records, whoever wrote them; a record has one successor, so the first update wins.
    original = create_record(hospital, patient)
    update = create_record(patient, patient, previous=original.id)
    assert record_of(record_registry, original.id)["superseded"] is True
    assert_events(
        update.receipt,
        record_registry.RecordSuperseded(previous=original.id, next=update.id),
        anchored_event(record_registry, update),
    )


def test_update_reverts_when_previous_is_already_superseded(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    create_record: Callable[..., Anchored],
) -> None:
    v1 = create_record(hospital, patient)
    create_record(hospital, patient, previous=v1.id)
    with reverts(record_registry.RecordAlreadySuperseded, previous=v1.id):
        record_registry.anchor(
            patient, digest("fork"), digest("fork commitment"), v1.category, v1.id, sender=hospital
        )


def test_retried_update_reverts_as_already_anchored(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    create_record: Callable[..., Anchored],
) -> None:
    v1 = create_record(hospital, patient)
    v2 = create_record(hospital, patient, previous=v1.id)
    with reverts(record_registry.RecordAlreadyAnchored, id=v2.id):
        record_registry.anchor(
            patient, v2.cid_digest, v2.commitment, v2.category, v1.id, sender=hospital
        )


def test_update_reverts_when_previous_belongs_to_another_patient(
    record_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    create_record: Callable[..., Anchored],
) -> None:
    theirs = create_record(hospital, other_patient)
    with reverts(
        record_registry.RecordPatientMismatch,
        previous=theirs.id,
        expected=other_patient,
        actual=patient,
    ):
        record_registry.anchor(
            patient, digest("cid"), digest("commitment"), Category.LAB, theirs.id, sender=hospital
        )
    assert record_of(record_registry, theirs.id)["superseded"] is False


def test_update_reverts_when_previous_is_unknown(
    record_registry: Any, patient: AccountAPI, hospital: AccountAPI
) -> None:
    unknown = digest("never anchored")
    with reverts(record_registry.RecordNotFound, id=unknown):
        record_registry.anchor(
            patient, digest("cid"), digest("commitment"), Category.LAB, unknown, sender=hospital
        )


# ============================================================================ status changes


def test_suspended_institution_cannot_anchor_until_reinstated(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    suspend: Callable[..., Any],
    create_record: Callable[..., Anchored],
) -> None:
    earlier = create_record(hospital, patient)
    suspend(hospital)
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=hospital, patient=patient):
        record_registry.anchor(
            patient, digest("cid"), digest("commitment"), Category.LAB, earlier.id, sender=hospital
        )
    # Records it wrote before stay anchored and unchanged.
    assert record_of(record_registry, earlier.id)["superseded"] is False


def test_practitioner_of_suspended_institution_cannot_anchor(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    suspend: Callable[..., Any],
) -> None:
    suspend(hospital)
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=doctor, patient=patient):
        record_registry.anchor(
            patient, digest("cid"), digest("commitment"), Category.LAB, NO_RECORD, sender=doctor
        )


def test_removed_practitioner_cannot_anchor(
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    create_record: Callable[..., Anchored],
) -> None:
    create_record(doctor, patient)  # could write before
    provider_registry.removePractitioner(doctor, sender=hospital)
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=doctor, patient=patient):
        record_registry.anchor(
            patient, digest("cid"), digest("commitment"), Category.LAB, NO_RECORD, sender=doctor
        )


# ============================================================================ lookup


def test_lookup_returns_the_record_or_all_zero_without_reverting(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    create_record: Callable[..., Anchored],
) -> None:
    record = create_record(hospital, patient)
    assert dict(record_registry.lookup(record.id).items()) == record_of(record_registry, record.id)
    assert dict(record_registry.lookup(digest("never anchored")).items()) == {
        "patient": ZERO_ADDRESS,
        "anchoredAt": 0,
        "category": 0,
        "superseded": False,
    }


# ============================================================================ batches


def batch_of(registry: Any, batch_id: bytes) -> dict[str, Any]:
    return dict(registry.getBatch(batch_id).items())


@pytest.mark.parametrize(
    ("writer", "institutional"),
    [
        pytest.param("verified-institution", True, id="verified-institution"),
        pytest.param("active-practitioner", True, id="active-practitioner"),
        pytest.param("patient-self", False, id="patient-own-records"),
    ],
)
def test_anchor_batch_stores_batch_and_emits_batch_anchored(
    chain: Any,
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    writer: str,
    institutional: bool,
) -> None:
    issuer = {"verified-institution": hospital, "active-practitioner": doctor}.get(writer, patient)
    root, manifest = digest("root"), digest("manifest")
    assert HexBytes(record_registry.anchorBatch.call(root, manifest, 7, sender=issuer)) == root

    tx = record_registry.anchorBatch(root, manifest, 7, sender=issuer)

    assert_events(
        tx,
        record_registry.BatchAnchored(
            batchId=root, issuer=issuer, manifestDigest=manifest, count=7
        ),
    )
    assert batch_of(record_registry, root) == {
        "issuer": issuer.address,
        "anchoredAt": chain.blocks[tx.block_number].timestamp,
        "count": 7,
        "institutional": institutional,
    }


@pytest.mark.parametrize(
    ("root", "manifest", "count"),
    [
        pytest.param(NO_RECORD, digest("manifest"), 1, id="zero-root"),
        pytest.param(digest("root"), NO_RECORD, 1, id="zero-manifest"),
        pytest.param(digest("root"), digest("manifest"), 0, id="zero-count"),
    ],
)
def test_anchor_batch_reverts_when_root_manifest_or_count_is_zero(
    record_registry: Any, hospital: AccountAPI, root: bytes, manifest: bytes, count: int
) -> None:
    with reverts(
        record_registry.RecordBatchInvalid, root=root, manifestDigest=manifest, count=count
    ):
        record_registry.anchorBatch(root, manifest, count, sender=hospital)


@pytest.mark.parametrize(
    "case",
    ["stranger", "pending-institution", "suspended-institution", "removed-practitioner"],
)
def test_anchor_batch_reverts_when_caller_may_not_write(
    record_registry: Any,
    provider_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    apply_institution: Callable[..., Any],
    suspend: Callable[..., Any],
    case: str,
) -> None:
    caller = {"stranger": stranger, "pending-institution": clinic}.get(case, hospital)
    if case == "pending-institution":
        apply_institution(clinic, Kind.CLINIC)
    elif case == "suspended-institution":
        suspend(hospital)
    elif case == "removed-practitioner":
        provider_registry.removePractitioner(doctor, sender=hospital)
        caller = doctor
    with reverts(record_registry.RecordBatchIssuerNotAuthorized, issuer=caller):
        record_registry.anchorBatch(digest("root"), digest("manifest"), 1, sender=caller)


def test_anchor_batch_reverts_when_root_already_anchored(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    batch = anchor_batch(hospital, [patient])
    with reverts(record_registry.RecordBatchAlreadyAnchored, batchId=batch.id):
        record_registry.anchorBatch(batch.root, digest("another manifest"), 1, sender=hospital)


@pytest.mark.xfail(
    strict=True,
    raises=ContractLogicError,
    reason="contract bug: the batch id is the bare root, so anyone can take it first",
)
def test_anchor_batch_is_not_blocked_when_someone_else_anchors_the_same_root_first(
    record_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
    isolated: Callable[[], Any],
) -> None:
    # The hospital's batch, built but not sent: its root is public once in the mempool.
    with isolated():
        planned = anchor_batch(hospital, [patient, other_patient])
    # Any registered patient (registration is open to all) copies the root first ...
    record_registry.anchorBatch(planned.root, digest("copied"), 2, sender=other_patient)
    # ... and the hospital should still be able to anchor its batch and prove its records.
    record_registry.anchorBatch(planned.root, planned.manifest_digest, 2, sender=hospital)


def test_verify_batch_record_returns_each_record_id(
    record_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    doctor: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    batch = anchor_batch(doctor, [patient, other_patient, patient])
    for entry in batch.entries:
        expected = record_registry.computeRecordId(
            entry.patient, doctor, entry.cid_digest, entry.commitment, entry.category, NO_RECORD
        )
        found = record_registry.verifyBatchRecord(batch.id, *entry.fields, entry.proof)
        assert HexBytes(found) == HexBytes(expected) == entry.id
        assert not record_registry.exists(entry.id)  # proven, not registered


def test_verify_batch_record_reverts_when_batch_is_unknown(
    record_registry: Any, patient: AccountAPI
) -> None:
    unknown = digest("no such batch")
    fields = (patient, digest("cid"), digest("commitment"), Category.LAB, NO_RECORD)
    with reverts(record_registry.RecordBatchNotFound, batchId=unknown):
        record_registry.verifyBatchRecord(unknown, *fields, [])


@pytest.mark.parametrize("tamper", ["category", "patient", "proof"])
def test_verify_batch_record_reverts_when_record_is_not_in_batch(
    chain: Any,
    record_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
    tamper: str,
) -> None:
    batch = anchor_batch(hospital, [patient, patient])
    entry, other = batch.entries
    holder, category, proof = entry.patient, entry.category, entry.proof
    if tamper == "category":
        category = Category.IMAGING
    elif tamper == "patient":
        holder = other_patient.address
    else:
        proof = other.proof
    claimed = record_id(
        chain.chain_id,
        record_registry.address,
        holder,
        hospital.address,
        entry.cid_digest,
        entry.commitment,
        category,
        NO_RECORD,
    )
    fields = (holder, entry.cid_digest, entry.commitment, category, NO_RECORD)
    with reverts(record_registry.RecordNotInBatch, batchId=batch.id, id=claimed):
        record_registry.verifyBatchRecord(batch.id, *fields, proof)


def test_register_from_batch_registers_record_with_batch_time_and_issuer(
    record_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    stranger: AccountAPI,
    advance_time: Callable[[int], int],
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    batch = anchor_batch(hospital, [patient, other_patient])
    batch_time = batch_of(record_registry, batch.id)["anchoredAt"]
    advance_time(3_600)
    entry = batch.entries[1]

    # Anyone may register: the proof is the authority.
    tx = record_registry.registerFromBatch(batch.id, *entry.fields, entry.proof, sender=stranger)

    assert_events(
        tx,
        record_registry.RecordAnchored(
            id=entry.id,
            patient=other_patient,
            issuer=hospital,
            previous=NO_RECORD,
            cidDigest=entry.cid_digest,
            commitment=entry.commitment,
            category=entry.category,
        ),
        record_registry.RecordProven(id=entry.id, batchId=batch.id),
    )
    assert record_of(record_registry, entry.id) == {
        "patient": other_patient.address,
        "anchoredAt": batch_time,
        "category": entry.category,
        "superseded": False,
    }


def test_register_from_batch_supersedes_the_previous_version(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    create_record: Callable[..., Anchored],
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    v1 = create_record(hospital, patient)
    batch = anchor_batch(hospital, [patient], previous=[v1.id])
    (entry,) = batch.entries

    tx = record_registry.registerFromBatch(batch.id, *entry.fields, entry.proof, sender=patient)

    superseded, anchored, proven = tx.events
    assert [superseded, proven] == [
        record_registry.RecordSuperseded(previous=v1.id, next=entry.id),
        record_registry.RecordProven(id=entry.id, batchId=batch.id),
    ]
    assert anchored.event_name == "RecordAnchored" and HexBytes(anchored.previous) == v1.id
    assert record_of(record_registry, v1.id)["superseded"] is True


def test_register_from_batch_reverts_when_already_registered(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    batch = anchor_batch(hospital, [patient])
    (entry,) = batch.entries
    record_registry.registerFromBatch(batch.id, *entry.fields, entry.proof, sender=patient)
    with reverts(record_registry.RecordAlreadyAnchored, id=entry.id):
        record_registry.registerFromBatch(batch.id, *entry.fields, entry.proof, sender=patient)


@pytest.mark.parametrize(
    ("cid", "commitment", "category"),
    [
        pytest.param(NO_RECORD, digest("commitment"), Category.LAB, id="zero-cid-digest"),
        pytest.param(digest("cid"), NO_RECORD, Category.LAB, id="zero-commitment"),
        pytest.param(digest("cid"), digest("commitment"), 0, id="zero-category"),
    ],
)
def test_register_from_batch_reverts_on_zero_fields_before_checking_the_proof(
    record_registry: Any, patient: AccountAPI, cid: bytes, commitment: bytes, category: int
) -> None:
    unknown = digest("no such batch")
    fields = (patient, cid, commitment, category, NO_RECORD)
    if category == 0:
        with reverts(record_registry.RecordInvalidCategory, category=0):
            record_registry.registerFromBatch(unknown, *fields, [], sender=patient)
    else:
        with reverts(record_registry.RecordInvalidPointer, cidDigest=cid, commitment=commitment):
            record_registry.registerFromBatch(unknown, *fields, [], sender=patient)


def test_register_from_batch_reverts_when_batch_is_unknown_or_proof_fails(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    batch = anchor_batch(hospital, [patient, patient])
    first, second = batch.entries
    unknown = digest("no such batch")
    with reverts(record_registry.RecordBatchNotFound, batchId=unknown):
        record_registry.registerFromBatch(unknown, *first.fields, first.proof, sender=patient)
    with reverts(record_registry.RecordNotInBatch, batchId=batch.id, id=first.id):
        record_registry.registerFromBatch(batch.id, *first.fields, second.proof, sender=patient)


def test_register_from_batch_reverts_when_patient_is_not_registered(
    record_registry: Any,
    hospital: AccountAPI,
    stranger: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    # Anchoring a batch checks nothing about its records: they are only checked when proven.
    batch = anchor_batch(hospital, [stranger])
    (entry,) = batch.entries
    with reverts(record_registry.RecordPatientNotRegistered, patient=stranger):
        record_registry.registerFromBatch(batch.id, *entry.fields, entry.proof, sender=hospital)


def test_register_from_patient_batch_reverts_for_another_patients_record(
    record_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    batch = anchor_batch(patient, [patient, other_patient])
    own, theirs = batch.entries
    record_registry.registerFromBatch(batch.id, *own.fields, own.proof, sender=patient)
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=patient, patient=other_patient):
        record_registry.registerFromBatch(batch.id, *theirs.fields, theirs.proof, sender=patient)


def test_register_from_batch_of_since_suspended_institution_still_registers(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    suspend: Callable[..., Any],
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    # As with singly anchored records, what was written while verified stays valid.
    batch = anchor_batch(hospital, [patient])
    suspend(hospital)
    (entry,) = batch.entries
    record_registry.registerFromBatch(batch.id, *entry.fields, entry.proof, sender=patient)
    assert record_registry.exists(entry.id)


def test_get_batch_reverts_when_batch_is_unknown(record_registry: Any) -> None:
    unknown = digest("no such batch")
    with reverts(record_registry.RecordBatchNotFound, batchId=unknown):
        record_registry.getBatch(unknown)
