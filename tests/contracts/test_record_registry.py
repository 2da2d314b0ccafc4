"""RecordRegistry, single records: who may anchor for whom, the stored writer, pointer
validation, ids, versions and lookups. Batches are in ``test_record_batches.py``.

The rules (README "Who may do what"): a patient's records are written by the patient, or by a
verified hospital, clinic, laboratory or emergency service (or its practitioner) while the
patient has a live care relationship with that institution; insurers and research sponsors
never write. A record stores its writer (the institution's directory number, 0 for the
patient) and only the same writer anchors its next version.

Every test starts from the same world (module-scoped, rolled back by Ape after each test):
``patient`` and ``other_patient`` registered; ``hospital`` and ``clinic`` verified (a hospital
and a clinic); ``doctor`` a practitioner of the hospital; ``patient`` in the hospital's care
(until revoked); ``other_patient`` in nobody's care. ``stranger`` has no role. Further
institutions and practitioners come from :func:`fresh_account`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from hexbytes import HexBytes

from .support import (
    NO_RECORD,
    ZERO_ADDRESS,
    Category,
    Kind,
    assert_events,
    digest,
    reverts,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

    from .conftest import Anchored

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


def number_of(provider_registry: Any, institution: Any) -> int:
    """The institution's directory number, which its records carry as their writer."""
    return int(provider_registry.participant(institution).number)


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


def anchor_new(registry: Any, patient: Any, issuer: Any, previous: bytes = NO_RECORD) -> Any:
    """Sends ``anchor`` of a fresh record (``cid`` / ``commitment``) for ``patient``."""
    return registry.anchor(
        patient, digest("cid"), digest("commitment"), Category.LAB, previous, sender=issuer
    )


# ============================================================================ who may anchor


@pytest.mark.parametrize("writer", ["patient-self", "care-institution", "its-practitioner"])
def test_authorized_writer_anchors_record_with_id_from_compute_record_id(
    chain: Any,
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    writer: str,
) -> None:
    issuer = {"patient-self": patient, "care-institution": hospital}.get(writer, doctor)
    writer_number = 0 if writer == "patient-self" else number_of(provider_registry, hospital)
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
        "writer": writer_number,
    }
    assert record_registry.exists(expected_id)


CARE_KINDS = [Kind.HOSPITAL, Kind.CLINIC, Kind.LABORATORY, Kind.EMERGENCY_SERVICE]


@pytest.mark.parametrize("signer", ["institution", "practitioner"])
@pytest.mark.parametrize("kind", CARE_KINDS, ids=lambda k: k.name.lower())
def test_care_provider_of_every_kind_anchors_with_its_number_while_patient_is_in_its_care(
    record_registry: Any,
    provider_registry: Any,
    other_patient: AccountAPI,
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
    authorize_care: Callable[..., Any],
    fresh_account: Callable[[], AccountAPI],
    kind: Kind,
    signer: str,
) -> None:
    institution = verified_institution(kind, fresh_account())
    issuer = institution
    if signer == "practitioner":
        issuer = fresh_account()
        add_practitioner(institution, issuer)
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=issuer, patient=other_patient):
        anchor_new(record_registry, other_patient, issuer)  # not yet in its care

    authorize_care(other_patient, institution)
    tx = anchor_new(record_registry, other_patient, issuer)

    (log,) = record_registry.RecordAnchored.from_receipt(tx)
    number = number_of(provider_registry, institution)
    assert number != 0
    assert record_of(record_registry, log.id)["writer"] == number  # the employer's, for staff


# Each case: who tries to write for ``patient`` (``patient`` is in the hospital's care).
UNAUTHORIZED = [
    "stranger",
    "registrar",
    "other-patient",
    "insurer",
    "insurer-practitioner",
    "research-sponsor",
    "research-sponsor-practitioner",
    "pending-hospital",
    "institution-without-care",
    "practitioner-of-institution-without-care",
    "institution-after-patient-revoked-care",
    "institution-after-it-ended-care",
    "institution-after-care-expired",
    "practitioner-after-care-revoked",
    "suspended-institution",
    "practitioner-of-suspended-institution",
    "removed-practitioner",
    "practitioner-who-left",
    "invited-practitioner-not-yet-accepted",
]


@pytest.mark.parametrize("case", UNAUTHORIZED)
def test_anchor_reverts_when_issuer_may_not_write_for_patient(
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
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
    authorize_care: Callable[..., Any],
    suspend: Callable[..., Any],
    advance_time: Callable[[int], int],
    fresh_account: Callable[[], AccountAPI],
    chain: Any,
    case: str,
) -> None:
    issuer: AccountAPI = doctor
    if case in ("stranger", "registrar", "other-patient"):
        issuer = {"stranger": stranger, "registrar": registrars[0]}.get(case, other_patient)
    elif case.startswith(("insurer", "research-sponsor")):
        kind = Kind.INSURER if case.startswith("insurer") else Kind.RESEARCH_SPONSOR
        issuer = verified_institution(kind, fresh_account())
        if case.endswith("-practitioner"):
            staff = fresh_account()
            add_practitioner(issuer, staff)
            issuer = staff
    elif case == "pending-hospital":
        issuer = fresh_account()
        apply_institution(issuer, Kind.HOSPITAL)
    elif case == "institution-without-care":
        issuer = clinic  # verified, but the patient is in the hospital's care, not the clinic's
    elif case == "practitioner-of-institution-without-care":
        issuer = fresh_account()
        add_practitioner(clinic, issuer)
    elif case in ("institution-after-patient-revoked-care", "practitioner-after-care-revoked"):
        anchor_new(record_registry, patient, hospital)  # could write before
        provider_registry.revokeCare(patient, hospital, sender=patient)
        issuer = hospital if case.startswith("institution") else doctor
    elif case == "institution-after-it-ended-care":
        provider_registry.revokeCare(patient, hospital, sender=hospital)
        issuer = hospital
    elif case == "institution-after-care-expired":
        authorize_care(patient, clinic, chain.blocks.head.timestamp + HOUR)
        anchor_new(record_registry, patient, clinic)  # could write before
        advance_time(HOUR + 1)
        issuer = clinic
    elif case in ("suspended-institution", "practitioner-of-suspended-institution"):
        suspend(hospital)
        issuer = hospital if case == "suspended-institution" else doctor
    elif case == "removed-practitioner":
        provider_registry.removePractitioner(doctor, sender=hospital)
    elif case == "practitioner-who-left":
        provider_registry.removePractitioner(doctor, sender=doctor)
    elif case == "invited-practitioner-not-yet-accepted":
        issuer = fresh_account()
        provider_registry.addPractitioner(issuer, sender=hospital)

    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=issuer, patient=patient):
        record_registry.anchor(
            patient,
            digest("new cid"),
            digest("new commitment"),
            Category.LAB,
            NO_RECORD,
            sender=issuer,
        )


def test_unregistered_account_cannot_anchor_its_own_record(
    record_registry: Any, stranger: AccountAPI
) -> None:
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=stranger, patient=stranger):
        anchor_new(record_registry, stranger, stranger)


@pytest.mark.parametrize(
    "subject", ["no-role", "institution", "practitioner"], ids=lambda s: f"patient-is-{s}"
)
def test_anchor_reverts_when_patient_is_not_registered(
    record_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    subject: str,
) -> None:
    # Only a registered patient can open a care relationship, so nobody may write for others.
    not_a_patient = {"no-role": stranger, "institution": clinic}.get(subject, doctor)
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=hospital, patient=not_a_patient):
        anchor_new(record_registry, not_a_patient, hospital)


def test_care_relationship_with_one_patient_does_not_cover_another(
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
) -> None:
    assert provider_registry.mayWriteFor(hospital, patient) == (
        True,
        number_of(provider_registry, hospital),
    )
    for issuer in (hospital, doctor):
        with reverts(
            record_registry.RecordIssuerNotAuthorized, issuer=issuer, patient=other_patient
        ):
            anchor_new(record_registry, other_patient, issuer)


@pytest.mark.parametrize("ending", ["revoked-by-patient", "revoked-by-institution", "expired"])
def test_institution_writes_again_once_patient_renews_ended_care(
    chain: Any,
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    clinic: AccountAPI,
    authorize_care: Callable[..., Any],
    advance_time: Callable[[int], int],
    create_record: Callable[..., Anchored],
    ending: str,
) -> None:
    authorize_care(patient, clinic, chain.blocks.head.timestamp + DAY)
    before = create_record(clinic, patient, care=False)
    if ending == "expired":
        advance_time(DAY + 1)
    else:
        provider_registry.revokeCare(
            patient, clinic, sender=patient if ending == "revoked-by-patient" else clinic
        )
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=clinic, patient=patient):
        anchor_new(record_registry, patient, clinic)

    authorize_care(patient, clinic)
    after = create_record(clinic, patient, care=False)

    assert record_of(record_registry, after.id)["writer"] == number_of(provider_registry, clinic)
    assert record_of(record_registry, before.id)["superseded"] is False


def test_reinstated_institution_anchors_again_under_its_care_relationship(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    approve: Callable[..., Any],
    suspend: Callable[..., Any],
    create_record: Callable[..., Anchored],
) -> None:
    suspend(hospital)
    approve(hospital)
    record = create_record(hospital, patient, care=False)
    assert_events(record.receipt, anchored_event(record_registry, record))


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
        anchor_new(record_registry, patient, hospital, previous=earlier.id)
    # Records it wrote before stay anchored and unchanged.
    assert record_of(record_registry, earlier.id)["superseded"] is False


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


def test_update_chain_by_institution_and_its_practitioner_supersedes_each_version(
    chain: Any,
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    advance_time: Callable[[int], int],
    create_record: Callable[..., Anchored],
) -> None:
    # The writer is the institution: its practitioner updates what the institution wrote,
    # and the institution updates what its practitioner wrote.
    v1 = create_record(hospital, patient, category=Category.CONDITION)
    advance_time(DAY)
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
            "writer": number_of(provider_registry, hospital),
        }
    assert block_time(chain, v2) - block_time(chain, v1) >= DAY
    assert v2.id == HexBytes(
        record_registry.computeRecordId(
            patient, doctor, v2.cid_digest, v2.commitment, Category.CONDITION, v1.id
        )
    )


def test_patient_updates_own_record(
    record_registry: Any, patient: AccountAPI, create_record: Callable[..., Anchored]
) -> None:
    original = create_record(patient)
    update = create_record(patient, previous=original.id)
    assert_events(
        update.receipt,
        record_registry.RecordSuperseded(previous=original.id, next=update.id),
        anchored_event(record_registry, update),
    )
    assert record_of(record_registry, original.id)["superseded"] is True
    assert record_of(record_registry, update.id)["writer"] == 0


# Each case: (who wrote the previous version, who tries to write the next one).
HIJACKS = {
    "another-institution": ("hospital", "clinic"),
    "practitioner-of-another-institution": ("hospital", "clinic-practitioner"),
    "patient-over-institution": ("hospital", "patient"),
    "patient-over-practitioner": ("doctor", "patient"),
    "institution-over-patient": ("patient", "hospital"),
    "practitioner-over-patient": ("patient", "doctor"),
}


@pytest.mark.parametrize("case", list(HIJACKS))
def test_update_reverts_when_written_by_another_writer(
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    add_practitioner: Callable[..., Any],
    authorize_care: Callable[..., Any],
    create_record: Callable[..., Anchored],
    fresh_account: Callable[[], AccountAPI],
    case: str,
) -> None:
    staff = fresh_account()
    add_practitioner(clinic, staff)
    authorize_care(patient, clinic)  # the clinic may write for the patient, just not this chain
    cast = {"hospital": hospital, "clinic": clinic, "clinic-practitioner": staff}
    cast |= {"doctor": doctor, "patient": patient}
    numbers = {"hospital": number_of(provider_registry, hospital), "patient": 0}
    numbers |= {"doctor": numbers["hospital"], "clinic": number_of(provider_registry, clinic)}
    numbers["clinic-practitioner"] = numbers["clinic"]
    first, second = HIJACKS[case]
    original = create_record(cast[first], patient)

    with reverts(
        record_registry.RecordNotPreviousWriter,
        previous=original.id,
        writer=numbers[second],
        previousWriter=numbers[first],
    ):
        anchor_new(record_registry, patient, cast[second], previous=original.id)

    assert record_of(record_registry, original.id)["superseded"] is False


@pytest.mark.parametrize("hijacker", ["clinic", "patient"])
def test_real_writer_still_updates_its_record_after_a_refused_hijack(
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    authorize_care: Callable[..., Any],
    create_record: Callable[..., Anchored],
    hijacker: str,
) -> None:
    authorize_care(patient, clinic)
    thief = clinic if hijacker == "clinic" else patient
    lab = create_record(hospital, patient)
    with reverts(
        record_registry.RecordNotPreviousWriter,
        previous=lab.id,
        writer=number_of(provider_registry, thief) if thief == clinic else 0,
        previousWriter=number_of(provider_registry, hospital),
    ):
        anchor_new(record_registry, patient, thief, previous=lab.id)

    correction = create_record(hospital, patient, previous=lab.id)

    assert_events(
        correction.receipt,
        record_registry.RecordSuperseded(previous=lab.id, next=correction.id),
        anchored_event(record_registry, correction),
    )
    assert record_of(record_registry, lab.id)["superseded"] is True


def test_practitioner_who_moved_writes_as_new_employer_and_cannot_update_old_records(
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    add_practitioner: Callable[..., Any],
    authorize_care: Callable[..., Any],
    create_record: Callable[..., Anchored],
) -> None:
    at_hospital = create_record(doctor, patient)
    provider_registry.removePractitioner(doctor, sender=doctor)
    add_practitioner(clinic, doctor)
    authorize_care(patient, clinic)
    hospital_number = number_of(provider_registry, hospital)
    clinic_number = number_of(provider_registry, clinic)

    at_clinic = create_record(doctor, patient, care=False)

    assert record_of(record_registry, at_hospital.id)["writer"] == hospital_number
    assert record_of(record_registry, at_clinic.id)["writer"] == clinic_number
    with reverts(
        record_registry.RecordNotPreviousWriter,
        previous=at_hospital.id,
        writer=clinic_number,
        previousWriter=hospital_number,
    ):
        anchor_new(record_registry, patient, doctor, previous=at_hospital.id)
    create_record(hospital, patient, previous=at_hospital.id)  # its writer still may


def test_institution_whose_care_ended_cannot_update_its_own_record(
    record_registry: Any,
    provider_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    create_record: Callable[..., Anchored],
) -> None:
    lab = create_record(hospital, patient)
    provider_registry.revokeCare(patient, hospital, sender=patient)
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=hospital, patient=patient):
        anchor_new(record_registry, patient, hospital, previous=lab.id)
    assert record_of(record_registry, lab.id)["superseded"] is False


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
    theirs = create_record(hospital, other_patient)  # opens the other patient's care
    with reverts(
        record_registry.RecordPatientMismatch,
        previous=theirs.id,
        expected=other_patient,
        actual=patient,
    ):
        anchor_new(record_registry, patient, hospital, previous=theirs.id)
    assert record_of(record_registry, theirs.id)["superseded"] is False


def test_update_reverts_when_previous_is_unknown(
    record_registry: Any, patient: AccountAPI, hospital: AccountAPI
) -> None:
    unknown = digest("never anchored")
    with reverts(record_registry.RecordNotFound, id=unknown):
        anchor_new(record_registry, patient, hospital, previous=unknown)


# ============================================================================ status changes


def test_practitioner_of_suspended_institution_cannot_anchor(
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    suspend: Callable[..., Any],
) -> None:
    suspend(hospital)
    with reverts(record_registry.RecordIssuerNotAuthorized, issuer=doctor, patient=patient):
        anchor_new(record_registry, patient, doctor)


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
        anchor_new(record_registry, patient, doctor)


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
        "writer": 0,
    }
