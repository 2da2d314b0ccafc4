"""RecordRegistry batches: anchoring by issuer and root, positional proofs, and registering a
batched record against the care relationship live at the batch's time.

The rules (README "Who may do what"): a batch belongs to its issuer (``batchId =
keccak256(abi.encode(issuer, root))``), so copying a root takes nothing; its tree is positional
(``IndexedMerkle``) and its declared count binds, so no more than ``count`` records can ever be
proven from it; a batched record registers only if its issuer's institution had a care
relationship with the patient when the batch was anchored (a patient's own batch: only the
patient's own records); a new version only by the previous version's writer.

Every test starts from the same world (module-scoped, rolled back by Ape after each test):
``patient`` and ``other_patient`` registered; ``hospital`` and ``clinic`` verified; ``doctor``
a practitioner of the hospital; ``patient`` in the hospital's care (until revoked);
``other_patient`` in nobody's care. ``stranger`` has no role.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from eth_abi import encode as abi_encode
from eth_utils import keccak
from hexbytes import HexBytes

from .support import (
    NO_RECORD,
    Category,
    Kind,
    assert_events,
    digest,
    indexed_tree,
    record_id,
    reverts,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

    from .conftest import Anchored, AnchoredBatch, BatchEntry

HOUR = 3_600
DAY = 24 * HOUR


@pytest.fixture(scope="module", autouse=True)
def world(
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    register_patient: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
    authorize_care: Callable[..., Any],
) -> None:
    register_patient(patient)
    register_patient(other_patient)
    verified_institution(Kind.HOSPITAL)
    verified_institution(Kind.CLINIC)
    add_practitioner(hospital, doctor)
    authorize_care(patient, hospital)


@pytest.fixture
def fresh_account(accounts: Any, admin: AccountAPI) -> Callable[[], AccountAPI]:
    """``fresh_account()``: a new funded account with no role."""

    def fresh() -> AccountAPI:
        account = accounts.generate_test_account()
        admin.transfer(account, 10**20)
        return account

    return fresh


def batch_id_of(issuer: Any, root: bytes) -> HexBytes:
    """``keccak256(abi.encode(issuer, root))``, computed here rather than asked of the contract."""
    address = getattr(issuer, "address", issuer)
    return HexBytes(keccak(abi_encode(["address", "bytes32"], [address, bytes(root)])))


def number_of(provider_registry: Any, institution: Any) -> int:
    return int(provider_registry.participant(institution).number)


def batch_of(registry: Any, batch_id: bytes) -> dict[str, Any]:
    return dict(registry.getBatch(batch_id).items())


def record_of(registry: Any, record_id: bytes) -> dict[str, Any]:
    return dict(registry.getRecord(record_id).items())


def register(registry: Any, batch: AnchoredBatch, entry: BatchEntry, sender: Any) -> Any:
    return registry.registerFromBatch(*entry.args(batch), sender=sender)


def anchored_event(registry: Any, batch: AnchoredBatch, entry: BatchEntry) -> Any:
    return registry.RecordAnchored(
        id=entry.id,
        patient=entry.patient,
        issuer=batch.issuer,
        previous=entry.previous,
        cidDigest=entry.cid_digest,
        commitment=entry.commitment,
        category=entry.category,
    )


def registers(registry: Any, batch: AnchoredBatch, entry: BatchEntry, sender: Any) -> None:
    """Registers ``entry`` and checks the exact events and the stored record."""
    tx = register(registry, batch, entry, sender)
    assert_events(
        tx,
        anchored_event(registry, batch, entry),
        registry.RecordProven(id=entry.id, batchId=batch.id),
    )
    stored = batch_of(registry, batch.id)
    assert record_of(registry, entry.id) == {
        "patient": entry.patient,
        "anchoredAt": stored["anchoredAt"],
        "category": entry.category,
        "superseded": False,
        "writer": stored["writer"],
    }


# ============================================================================ anchoring


@pytest.mark.parametrize("writer", ["care-institution", "its-practitioner", "patient-self"])
def test_anchor_batch_stores_batch_under_issuer_and_root_and_emits_batch_anchored(
    chain: Any,
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    writer: str,
) -> None:
    issuer = {"care-institution": hospital, "its-practitioner": doctor}.get(writer, patient)
    number = 0 if writer == "patient-self" else number_of(provider_registry, hospital)
    root, manifest = digest("root"), digest("manifest")
    expected_id = batch_id_of(issuer, root)
    assert HexBytes(record_registry.anchorBatch.call(root, manifest, 7, sender=issuer)) == (
        expected_id
    )

    tx = record_registry.anchorBatch(root, manifest, 7, sender=issuer)

    assert_events(
        tx,
        record_registry.BatchAnchored(
            batchId=expected_id, issuer=issuer, root=root, manifestDigest=manifest, count=7
        ),
    )
    assert batch_of(record_registry, expected_id) == {
        "anchoredAt": chain.blocks[tx.block_number].timestamp,
        "count": 7,
        "writer": number,
    }
    with reverts(record_registry.RecordBatchNotFound, batchId=root):
        record_registry.getBatch(root)  # a batch id is never the bare root


def test_batch_id_of_is_keccak_of_abi_encoded_issuer_and_root(
    record_registry: Any, hospital: AccountAPI, clinic: AccountAPI
) -> None:
    for issuer in (hospital, clinic):
        for root in (digest("a"), digest("b"), NO_RECORD):
            assert HexBytes(record_registry.batchIdOf(issuer, root)) == batch_id_of(issuer, root)
    assert batch_id_of(hospital, digest("a")) != batch_id_of(clinic, digest("a"))


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


BATCH_REFUSED = [
    "stranger",
    "registrar",
    "pending-hospital",
    "suspended-institution",
    "practitioner-of-suspended-institution",
    "removed-practitioner",
    "invited-practitioner-not-yet-accepted",
    "insurer",
    "insurer-practitioner",
    "research-sponsor",
    "research-sponsor-practitioner",
]


@pytest.mark.parametrize("case", BATCH_REFUSED)
def test_anchor_batch_reverts_when_caller_may_not_write_records(
    record_registry: Any,
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    apply_institution: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
    suspend: Callable[..., Any],
    fresh_account: Callable[[], AccountAPI],
    case: str,
) -> None:
    caller: AccountAPI = doctor
    if case in ("stranger", "registrar"):
        caller = stranger if case == "stranger" else registrars[0]
    elif case == "pending-hospital":
        caller = fresh_account()
        apply_institution(caller, Kind.HOSPITAL)
    elif case in ("suspended-institution", "practitioner-of-suspended-institution"):
        suspend(hospital)
        caller = hospital if case == "suspended-institution" else doctor
    elif case == "removed-practitioner":
        provider_registry.removePractitioner(doctor, sender=hospital)
    elif case == "invited-practitioner-not-yet-accepted":
        caller = fresh_account()
        provider_registry.addPractitioner(caller, sender=hospital)
    else:
        kind = Kind.INSURER if case.startswith("insurer") else Kind.RESEARCH_SPONSOR
        caller = verified_institution(kind, fresh_account())
        if case.endswith("-practitioner"):
            staff = fresh_account()
            add_practitioner(caller, staff)
            caller = staff
    with reverts(record_registry.RecordBatchIssuerNotAuthorized, issuer=caller):
        record_registry.anchorBatch(digest("root"), digest("manifest"), 1, sender=caller)


@pytest.mark.parametrize("thief", ["verified-institution", "registered-patient"])
def test_two_issuers_anchor_the_same_root_and_only_the_real_issuers_records_prove(
    chain: Any,
    record_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    authorize_care: Callable[..., Any],
    anchor_batch: Callable[..., AnchoredBatch],
    isolated: Callable[[], Any],
    thief: str,
) -> None:
    authorize_care(other_patient, hospital)
    with isolated():  # the hospital's batch, built but not sent: its root is in the mempool
        planned = anchor_batch(hospital, [patient, other_patient])
    copier = clinic if thief == "verified-institution" else other_patient
    copied = record_registry.anchorBatch(planned.root, digest("copy"), 2, sender=copier)

    tx = record_registry.anchorBatch(planned.root, planned.manifest_digest, 2, sender=hospital)

    assert_events(
        tx,
        record_registry.BatchAnchored(
            batchId=planned.id,
            issuer=hospital,
            root=planned.root,
            manifestDigest=planned.manifest_digest,
            count=2,
        ),
    )
    assert planned.id == batch_id_of(hospital, planned.root)
    (theirs,) = record_registry.BatchAnchored.from_receipt(copied)
    assert HexBytes(theirs.batchId) == batch_id_of(copier, planned.root) != planned.id
    for entry in planned.entries:
        # Under the copier's name, the hospital's leaves are other ids: nothing proves.
        as_copier = record_id(
            chain.chain_id,
            record_registry.address,
            entry.patient,
            copier.address,
            entry.cid_digest,
            entry.commitment,
            entry.category,
            entry.previous,
        )
        with reverts(record_registry.RecordNotInBatch, batchId=theirs.batchId, id=as_copier):
            record_registry.verifyBatchRecord(
                copier, planned.root, entry.fields, entry.index, entry.proof
            )
        registers(record_registry, planned, entry, hospital)


def test_anchor_batch_reverts_when_the_same_issuer_anchors_the_same_root_twice(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    batch = anchor_batch(hospital, [patient])
    with reverts(
        record_registry.RecordBatchAlreadyAnchored, batchId=batch_id_of(hospital, batch.root)
    ):
        record_registry.anchorBatch(batch.root, digest("another manifest"), 1, sender=hospital)
    # The institution's practitioner is another issuer: the same root is its own batch.
    record_registry.anchorBatch(batch.root, digest("another manifest"), 1, sender=doctor)


def test_care_institution_without_care_relationships_anchors_a_batch(
    chain: Any, record_registry: Any, provider_registry: Any, clinic: AccountAPI
) -> None:
    # Who may write for whom is checked per record, when it registers.
    root, manifest = digest("root"), digest("manifest")
    tx = record_registry.anchorBatch(root, manifest, 3, sender=clinic)
    batch_id = batch_id_of(clinic, root)
    assert_events(
        tx,
        record_registry.BatchAnchored(
            batchId=batch_id, issuer=clinic, root=root, manifestDigest=manifest, count=3
        ),
    )
    assert batch_of(record_registry, batch_id) == {
        "anchoredAt": chain.blocks[tx.block_number].timestamp,
        "count": 3,
        "writer": number_of(provider_registry, clinic),
    }


# ============================================================================ proofs


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
        found = record_registry.verifyBatchRecord(*entry.args(batch))
        assert HexBytes(found) == HexBytes(expected) == entry.id
        assert not record_registry.exists(entry.id)  # proven, not registered


@pytest.mark.parametrize("unknown", ["root", "issuer"])
def test_verify_batch_record_reverts_when_batch_is_unknown(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
    unknown: str,
) -> None:
    batch = anchor_batch(hospital, [patient])
    (entry,) = batch.entries
    issuer, root = (hospital, digest("no such root")) if unknown == "root" else (doctor, batch.root)
    args = (issuer, root, entry.fields, entry.index, entry.proof)
    with reverts(record_registry.RecordBatchNotFound, batchId=batch_id_of(issuer, root)):
        record_registry.verifyBatchRecord(*args)
    with reverts(record_registry.RecordBatchNotFound, batchId=batch_id_of(issuer, root)):
        record_registry.registerFromBatch(*args, sender=hospital)


TAMPERS = [
    "category",
    "patient",
    "another-records-proof",
    "index-of-another-record",
    "index-equal-to-count",
    "index-plus-tree-width",
    "max-index",
    "proof-one-short",
    "proof-one-long",
    "empty-proof",
]


@pytest.mark.parametrize("tamper", TAMPERS)
def test_verify_and_register_revert_when_record_is_not_at_its_position(
    chain: Any,
    record_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
    tamper: str,
) -> None:
    # Three records: a tree of depth 2 whose fourth position holds the zero word.
    batch = anchor_batch(hospital, [patient, patient, patient])
    entry, other, _ = batch.entries
    holder, category, index, proof = entry.patient, entry.category, entry.index, entry.proof
    if tamper == "category":
        category = Category.IMAGING
    elif tamper == "patient":
        holder = other_patient.address
    elif tamper == "another-records-proof":
        proof = other.proof
    elif tamper == "index-of-another-record":
        index = other.index
    elif tamper == "index-equal-to-count":
        index = 3
    elif tamper == "index-plus-tree-width":
        index = entry.index + 4  # the same path bits, above the tree
    elif tamper == "max-index":
        index = 2**256 - 1
    elif tamper == "proof-one-short":
        proof = proof[:-1]
    elif tamper == "proof-one-long":
        proof = [*proof, digest("extra")]
    else:
        proof = []
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
    args = (hospital, batch.root, fields, index, proof)
    with reverts(record_registry.RecordNotInBatch, batchId=batch.id, id=claimed):
        record_registry.verifyBatchRecord(*args)
    with reverts(record_registry.RecordNotInBatch, batchId=batch.id, id=claimed):
        record_registry.registerFromBatch(*args, sender=patient)
    assert not record_registry.exists(claimed)


@pytest.mark.parametrize(
    ("leaves", "declared", "registered"),
    [
        pytest.param(8, 5, 5, id="8-leaves-declared-5"),
        pytest.param(4, 3, 3, id="4-leaves-declared-3"),
        pytest.param(4, 1, 0, id="4-leaves-declared-1"),
        pytest.param(4, 2, 0, id="4-leaves-declared-2"),
        pytest.param(3, 5, 0, id="3-leaves-declared-5"),
    ],
)
def test_batch_registers_no_more_records_than_it_declared(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
    leaves: int,
    declared: int,
    registered: int,
) -> None:
    # ``anchor_batch`` builds a tree of ``leaves`` records but declares ``declared``: the
    # positions past the count never prove, and a count of another tree depth proves nothing.
    batch = anchor_batch(hospital, [patient] * leaves, count=declared)
    assert batch_of(record_registry, batch.id)["count"] == declared
    for entry in batch.entries:
        if entry.index < registered:
            registers(record_registry, batch, entry, hospital)
        else:
            with reverts(record_registry.RecordNotInBatch, batchId=batch.id, id=entry.id):
                register(record_registry, batch, entry, hospital)
    assert sum(record_registry.exists(e.id) for e in batch.entries) == registered <= declared


def test_declared_count_above_the_tree_proves_only_its_records(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    # Three records declared as four: the fourth position holds the zero word, which no record
    # id hashes to.
    batch = anchor_batch(hospital, [patient] * 3, count=4)
    for entry in batch.entries:
        registers(record_registry, batch, entry, hospital)
    root, proofs = indexed_tree([e.id for e in batch.entries])
    assert root == batch.root and proofs[2] == batch.entries[2].proof


# ============================================================================ registration


def test_register_from_batch_registers_record_with_batch_time_issuer_and_writer(
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    stranger: AccountAPI,
    authorize_care: Callable[..., Any],
    advance_time: Callable[[int], int],
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    authorize_care(other_patient, hospital)
    batch = anchor_batch(hospital, [patient, other_patient])
    batch_time = batch_of(record_registry, batch.id)["anchoredAt"]
    advance_time(HOUR)
    entry = batch.entries[1]

    # Anyone may register: the proof is the authority.
    tx = register(record_registry, batch, entry, stranger)

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
        "writer": number_of(provider_registry, hospital),
    }


def test_practitioners_batch_records_carry_its_employers_number(
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    batch = anchor_batch(doctor, [patient, patient])
    assert batch_of(record_registry, batch.id)["writer"] == number_of(provider_registry, hospital)
    for entry in batch.entries:
        registers(record_registry, batch, entry, doctor)


def test_register_from_batch_supersedes_the_previous_version(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    create_record: Callable[..., Anchored],
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    # The hospital wrote v1; its practitioner's batch writes v2 (same writer: the hospital).
    v1 = create_record(hospital, patient)
    batch = anchor_batch(doctor, [patient], previous=[v1.id])
    (entry,) = batch.entries

    tx = register(record_registry, batch, entry, patient)

    assert_events(
        tx,
        record_registry.RecordSuperseded(previous=v1.id, next=entry.id),
        anchored_event(record_registry, batch, entry),
        record_registry.RecordProven(id=entry.id, batchId=batch.id),
    )
    assert record_of(record_registry, v1.id)["superseded"] is True


@pytest.mark.parametrize("issuer", ["another-institution", "patient"])
def test_register_from_batch_reverts_when_previous_has_another_writer(
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    authorize_care: Callable[..., Any],
    create_record: Callable[..., Anchored],
    anchor_batch: Callable[..., AnchoredBatch],
    issuer: str,
) -> None:
    authorize_care(patient, clinic)
    v1 = create_record(hospital, patient)
    writer = clinic if issuer == "another-institution" else patient
    batch = anchor_batch(writer, [patient], previous=[v1.id])
    (entry,) = batch.entries
    with reverts(
        record_registry.RecordNotPreviousWriter,
        previous=v1.id,
        writer=number_of(provider_registry, clinic) if writer == clinic else 0,
        previousWriter=number_of(provider_registry, hospital),
    ):
        register(record_registry, batch, entry, patient)
    assert record_of(record_registry, v1.id)["superseded"] is False
    create_record(hospital, patient, previous=v1.id)  # the real writer's update still goes in


def test_register_from_batch_reverts_when_already_registered(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    batch = anchor_batch(hospital, [patient])
    (entry,) = batch.entries
    register(record_registry, batch, entry, patient)
    with reverts(record_registry.RecordAlreadyAnchored, id=entry.id):
        register(record_registry, batch, entry, patient)


@pytest.mark.parametrize(
    ("cid", "commitment", "category"),
    [
        pytest.param(NO_RECORD, digest("commitment"), Category.LAB, id="zero-cid-digest"),
        pytest.param(digest("cid"), NO_RECORD, Category.LAB, id="zero-commitment"),
        pytest.param(digest("cid"), digest("commitment"), 0, id="zero-category"),
    ],
)
def test_register_from_batch_reverts_on_zero_fields_before_checking_the_proof(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    cid: bytes,
    commitment: bytes,
    category: int,
) -> None:
    args = (hospital, digest("no such root"), (patient, cid, commitment, category, NO_RECORD), 0)
    if category == 0:
        with reverts(record_registry.RecordInvalidCategory, category=0):
            record_registry.registerFromBatch(*args, [], sender=patient)
    else:
        with reverts(record_registry.RecordInvalidPointer, cidDigest=cid, commitment=commitment):
            record_registry.registerFromBatch(*args, [], sender=patient)


@pytest.mark.parametrize("issuer", ["institution", "practitioner"])
def test_register_from_batch_reverts_when_issuer_had_no_care_at_batch_time_even_if_it_has_now(
    record_registry: Any,
    provider_registry: Any,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    authorize_care: Callable[..., Any],
    advance_time: Callable[[int], int],
    anchor_batch: Callable[..., AnchoredBatch],
    issuer: str,
) -> None:
    writer = hospital if issuer == "institution" else doctor
    batch = anchor_batch(writer, [other_patient])  # other_patient is in nobody's care
    (entry,) = batch.entries
    advance_time(HOUR)
    authorize_care(other_patient, hospital)
    assert provider_registry.mayWriteFor(writer, other_patient)[0] is True

    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=writer, patient=other_patient):
        register(record_registry, batch, entry, other_patient)


def test_register_from_batch_checks_care_of_each_records_patient(
    record_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    batch = anchor_batch(hospital, [patient, other_patient])
    cared, uncared = batch.entries
    registers(record_registry, batch, cared, hospital)
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=hospital, patient=other_patient):
        register(record_registry, batch, uncared, hospital)


def test_register_from_batch_reverts_when_care_was_with_another_institution(
    record_registry: Any,
    patient: AccountAPI,
    clinic: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    # The patient was in the hospital's care when the clinic anchored its batch.
    batch = anchor_batch(clinic, [patient])
    (entry,) = batch.entries
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=clinic, patient=patient):
        register(record_registry, batch, entry, clinic)


LOST_SINCE = [
    "care-revoked-by-patient",
    "care-ended-by-institution",
    "care-expired",
    "institution-suspended",
    "practitioner-removed",
]


@pytest.mark.parametrize("lost", LOST_SINCE)
def test_register_from_batch_registers_when_issuer_had_care_at_batch_time_and_lost_it_since(
    chain: Any,
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    authorize_care: Callable[..., Any],
    suspend: Callable[..., Any],
    advance_time: Callable[[int], int],
    anchor_batch: Callable[..., AnchoredBatch],
    lost: str,
) -> None:
    institution = clinic if lost == "care-expired" else hospital
    if lost == "care-expired":
        authorize_care(patient, clinic, chain.blocks.head.timestamp + HOUR)
    issuer = doctor if lost == "practitioner-removed" else institution
    batch = anchor_batch(issuer, [patient])
    (entry,) = batch.entries
    # A later second: relationships are whole seconds (``since <= t < until``), so an end in the
    # batch's own second (Anvil may mine both blocks in one) would already exclude the batch.
    advance_time(60)
    if lost == "care-revoked-by-patient":
        provider_registry.revokeCare(patient, hospital, sender=patient)
    elif lost == "care-ended-by-institution":
        provider_registry.revokeCare(patient, hospital, sender=hospital)
    elif lost == "care-expired":
        advance_time(HOUR + 1)
    elif lost == "institution-suspended":
        suspend(hospital)
    else:
        provider_registry.removePractitioner(doctor, sender=doctor)
    advance_time(HOUR)
    assert provider_registry.mayWriteFor(issuer, patient)[0] is False

    # What was written while allowed stays valid.
    registers(record_registry, batch, entry, stranger)


def test_register_from_batch_registers_after_care_was_ended_and_reopened(
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    authorize_care: Callable[..., Any],
    advance_time: Callable[[int], int],
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    # The batch was anchored during the first relationship: the rule is the care relationship
    # live when the batch was anchored, whatever happened after.
    batch = anchor_batch(hospital, [patient])
    (entry,) = batch.entries
    advance_time(HOUR)
    provider_registry.revokeCare(patient, hospital, sender=patient)
    advance_time(HOUR)
    authorize_care(patient, hospital)

    registers(record_registry, batch, entry, patient)


def test_register_from_batch_reverts_for_a_batch_anchored_between_two_care_periods(
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    authorize_care: Callable[..., Any],
    advance_time: Callable[[int], int],
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    # Earlier periods are kept on record, but the gap between two periods is not care.
    advance_time(HOUR)
    provider_registry.revokeCare(patient, hospital, sender=patient)
    advance_time(HOUR)
    batch = anchor_batch(hospital, [patient])
    (entry,) = batch.entries
    advance_time(HOUR)
    authorize_care(patient, hospital)
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=hospital, patient=patient):
        record_registry.registerFromBatch(*entry.args(batch), sender=patient)


def test_register_from_batch_reverts_when_the_new_version_predates_its_previous(
    chain: Any,
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    advance_time: Callable[[int], int],
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    # A record id can be computed before it is anchored, so a batch could name as previous a
    # version anchored after the batch; registering it would run the version times backwards.
    cid, commitment = digest("later-cid"), digest("later-commitment")
    later = record_id(
        chain.chain_id, record_registry.address, patient.address, hospital.address, cid,
        commitment, int(Category.LAB), NO_RECORD,
    )  # fmt: skip
    batch = anchor_batch(hospital, [patient], previous=[later])
    (entry,) = batch.entries
    advance_time(HOUR)
    record_registry.anchor(patient, cid, commitment, int(Category.LAB), NO_RECORD, sender=hospital)
    with reverts(record_registry.RecordPreviousNotEarlier, previous=later):
        record_registry.registerFromBatch(*entry.args(batch), sender=patient)


def test_register_from_batch_reverts_when_patient_is_not_registered(
    record_registry: Any,
    hospital: AccountAPI,
    stranger: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    # Anchoring a batch checks nothing about its records: they are only checked when proven.
    batch = anchor_batch(hospital, [stranger])
    (entry,) = batch.entries
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=hospital, patient=stranger):
        register(record_registry, batch, entry, hospital)


def test_patients_own_batch_registers_only_the_patients_own_records(
    record_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    anchor_batch: Callable[..., AnchoredBatch],
) -> None:
    batch = anchor_batch(patient, [patient, other_patient])
    assert batch_of(record_registry, batch.id)["writer"] == 0
    own, theirs = batch.entries
    registers(record_registry, batch, own, other_patient)
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=patient, patient=other_patient):
        register(record_registry, batch, theirs, patient)


def test_get_batch_reverts_when_batch_is_unknown(record_registry: Any) -> None:
    unknown = digest("no such batch")
    with reverts(record_registry.RecordBatchNotFound, batchId=unknown):
        record_registry.getBatch(unknown)
