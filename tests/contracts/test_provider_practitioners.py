"""ProviderRegistry practitioners: a verified institution invites an account
(``addPractitioner``), the account becomes its practitioner only when it accepts
(``acceptPractitioner``), and the institution or the practitioner ends it
(``removePractitioner``, which also withdraws an invitation). A removed practitioner has no
role: it may register as a patient or work for another institution.

Every test starts from the same world (module-scoped, rolled back by Ape after each test):
``hospital`` a verified hospital (number 1) and ``clinic`` a verified clinic (number 2);
``doctor``, ``patient`` and ``stranger`` have no role.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .support import (
    ZERO_ADDRESS,
    Kind,
    Role,
    Status,
    assert_events,
    key_proof,
    new_key,
    reverts,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI


def participant(registry: Any, account: Any) -> dict[str, Any]:
    return dict(registry.participant(account).items())


BLANK = {
    "role": Role.NONE,
    "kind": Kind.NONE,
    "status": Status.NONE,
    "keyPrefix": 0,
    "round": 0,
    "employer": ZERO_ADDRESS,
    "number": 0,
}


@pytest.fixture(scope="module", autouse=True)
def institutions(
    hospital: AccountAPI, clinic: AccountAPI, verified_institution: Callable[..., AccountAPI]
) -> None:
    verified_institution(Kind.HOSPITAL)
    verified_institution(Kind.CLINIC)


def assert_practitioner_of(registry: Any, account: AccountAPI, employer: AccountAPI) -> None:
    assert participant(registry, account) == BLANK | {
        "role": Role.PRACTITIONER,
        "employer": employer.address,
    }
    assert registry.verifiedInstitutionOf(account) == employer.address
    assert registry.writerOf(account) == (True, registry.participant(employer).number)


def assert_no_role(registry: Any, account: AccountAPI) -> None:
    assert participant(registry, account) == BLANK
    assert registry.verifiedInstitutionOf(account) == ZERO_ADDRESS
    assert registry.writerOf(account) == (False, 0)


# ============================================================================ invitation


def test_add_practitioner_invites_and_gives_no_role_until_accepted(
    provider_registry: Any, hospital: AccountAPI, doctor: AccountAPI
) -> None:
    tx = provider_registry.addPractitioner(doctor, sender=hospital)

    assert_events(
        tx, provider_registry.PractitionerInvited(institution=hospital, practitioner=doctor)
    )
    assert provider_registry.isInvited(hospital, doctor)
    assert_no_role(provider_registry, doctor)


def test_accept_makes_the_practitioner_of_the_inviting_institution(
    provider_registry: Any, hospital: AccountAPI, clinic: AccountAPI, doctor: AccountAPI
) -> None:
    provider_registry.addPractitioner(doctor, sender=clinic)

    tx = provider_registry.acceptPractitioner(clinic, sender=doctor)

    assert_events(tx, provider_registry.PractitionerAdded(institution=clinic, practitioner=doctor))
    assert not provider_registry.isInvited(clinic, doctor)
    assert_practitioner_of(provider_registry, doctor, clinic)
    assert provider_registry.writerOf(doctor) == (True, 2)
    assert provider_registry.encryptionKey(doctor) == b""


def test_practitioner_publishes_its_own_key(
    provider_registry: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    add_practitioner: Callable[..., Any],
) -> None:
    add_practitioner(hospital, doctor)
    key = new_key()
    tx = provider_registry.publishEncryptionKey(
        key, key_proof(provider_registry, doctor, key), sender=doctor
    )
    assert_events(tx, provider_registry.EncryptionKeyPublished(account=doctor, key=key))
    assert participant(provider_registry, doctor)["keyPrefix"] == key[0]


def test_several_institutions_may_invite_the_same_account_which_accepts_one(
    provider_registry: Any, hospital: AccountAPI, clinic: AccountAPI, doctor: AccountAPI
) -> None:
    provider_registry.addPractitioner(doctor, sender=hospital)
    provider_registry.addPractitioner(doctor, sender=clinic)

    provider_registry.acceptPractitioner(clinic, sender=doctor)

    assert_practitioner_of(provider_registry, doctor, clinic)
    with reverts(provider_registry.ProviderAlreadyRegistered, account=doctor):
        provider_registry.acceptPractitioner(hospital, sender=doctor)


@pytest.mark.parametrize("role", ["none", "patient", "practitioner"])
def test_add_practitioner_reverts_when_caller_is_not_an_institution(
    provider_registry: Any,
    hospital: AccountAPI,
    patient: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    register_patient: Callable[..., Any],
    add_practitioner: Callable[..., Any],
    role: str,
) -> None:
    caller = stranger
    if role == "patient":
        register_patient(patient)
        caller = patient
    elif role == "practitioner":
        add_practitioner(hospital, doctor)
        caller = doctor
    target = stranger if caller is not stranger else patient
    with reverts(provider_registry.ProviderNotInstitution, account=caller):
        provider_registry.addPractitioner(target, sender=caller)


@pytest.mark.parametrize("status", [Status.PENDING, Status.SUSPENDED], ids=lambda s: s.name.lower())
def test_add_practitioner_reverts_when_institution_is_not_verified(
    provider_registry: Any,
    doctor: AccountAPI,
    stranger: AccountAPI,
    apply_institution: Callable[..., Any],
    approve: Callable[..., Any],
    suspend: Callable[..., Any],
    status: Status,
) -> None:
    apply_institution(stranger, Kind.LABORATORY)
    if status is Status.SUSPENDED:
        approve(stranger)
        suspend(stranger)
    with reverts(provider_registry.ProviderInvalidStatus, institution=stranger, status=status):
        provider_registry.addPractitioner(doctor, sender=stranger)


@pytest.mark.parametrize("target", ["zero", "institution-itself"])
def test_add_practitioner_reverts_when_account_is_zero_or_the_institution(
    provider_registry: Any, hospital: AccountAPI, target: str
) -> None:
    account = ZERO_ADDRESS if target == "zero" else hospital.address
    with reverts(provider_registry.ProviderInvalidPractitioner, account=account):
        provider_registry.addPractitioner(account, sender=hospital)


@pytest.mark.parametrize(
    "existing", ["patient", "other-institution", "practitioner-of-other", "own-practitioner"]
)
def test_add_practitioner_reverts_when_account_already_has_a_role(
    provider_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    doctor: AccountAPI,
    register_patient: Callable[..., Any],
    add_practitioner: Callable[..., Any],
    existing: str,
) -> None:
    register_patient(patient)
    add_practitioner(clinic if existing == "practitioner-of-other" else hospital, doctor)
    account = {
        "patient": patient,
        "other-institution": clinic,
        "practitioner-of-other": doctor,
        "own-practitioner": doctor,
    }[existing]
    with reverts(provider_registry.ProviderAlreadyRegistered, account=account):
        provider_registry.addPractitioner(account, sender=hospital)


# ============================================================================ acceptance


@pytest.mark.parametrize(
    "case",
    ["never-invited", "invited-by-another", "withdrawn", "already-accepted", "not-an-institution"],
)
def test_accept_reverts_when_the_institution_did_not_invite_the_caller(
    provider_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    case: str,
) -> None:
    institution = hospital
    if case == "invited-by-another":
        provider_registry.addPractitioner(doctor, sender=clinic)
    elif case == "withdrawn":
        provider_registry.addPractitioner(doctor, sender=hospital)
        provider_registry.removePractitioner(doctor, sender=hospital)
    elif case == "already-accepted":
        provider_registry.addPractitioner(doctor, sender=hospital)
        provider_registry.acceptPractitioner(hospital, sender=doctor)
    elif case == "not-an-institution":
        institution = stranger
    with reverts(provider_registry.ProviderNotInvited, institution=institution, account=doctor):
        provider_registry.acceptPractitioner(institution, sender=doctor)


def test_accept_reverts_when_the_inviting_institution_got_suspended(
    provider_registry: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    approve: Callable[..., Any],
    suspend: Callable[..., Any],
) -> None:
    provider_registry.addPractitioner(doctor, sender=hospital)
    suspend(hospital)

    with reverts(
        provider_registry.ProviderInvalidStatus, institution=hospital, status=Status.SUSPENDED
    ):
        provider_registry.acceptPractitioner(hospital, sender=doctor)
    assert_no_role(provider_registry, doctor)

    # The invitation stands: once reinstated, the institution's invitation may be accepted.
    approve(hospital)
    provider_registry.acceptPractitioner(hospital, sender=doctor)
    assert_practitioner_of(provider_registry, doctor, hospital)


def test_accept_reverts_when_the_invited_account_registered_as_a_patient(
    provider_registry: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    register_patient: Callable[..., Any],
) -> None:
    provider_registry.addPractitioner(doctor, sender=hospital)
    register_patient(doctor)
    with reverts(provider_registry.ProviderAlreadyRegistered, account=doctor):
        provider_registry.acceptPractitioner(hospital, sender=doctor)
    assert participant(provider_registry, doctor)["role"] == Role.PATIENT


# ============================================================================ removal


@pytest.mark.parametrize("by", ["employer", "practitioner"])
def test_remove_practitioner_leaves_the_account_with_no_role(
    provider_registry: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    add_practitioner: Callable[..., Any],
    by: str,
) -> None:
    add_practitioner(hospital, doctor)
    sender = hospital if by == "employer" else doctor

    tx = provider_registry.removePractitioner(doctor, sender=sender)

    assert_events(
        tx,
        provider_registry.PractitionerRemoved(institution=hospital, practitioner=doctor, by=sender),
    )
    assert participant(provider_registry, doctor) == BLANK
    assert provider_registry.verifiedInstitutionOf(doctor) == ZERO_ADDRESS
    assert provider_registry.writerOf(doctor) == (False, 0)
    assert not provider_registry.isInvited(hospital, doctor)


def test_remove_practitioner_forgets_the_published_key(
    provider_registry: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    add_practitioner: Callable[..., Any],
) -> None:
    # No role, no key: nobody wraps record keys for a former practitioner's old key.
    add_practitioner(hospital, doctor)
    key = new_key()
    provider_registry.publishEncryptionKey(
        key, key_proof(provider_registry, doctor, key), sender=doctor
    )
    provider_registry.removePractitioner(doctor, sender=hospital)
    assert participant(provider_registry, doctor) == BLANK
    assert bytes(provider_registry.encryptionKey(doctor)) == b""


def test_registrar_cannot_approve_an_institution_that_invited_it(
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    suspend: Callable[..., Any],
) -> None:
    # A registrar holding the suspended hospital's invitation would approve its own future
    # employer's reinstatement, then accept.
    registrar = registrars[1]
    provider_registry.addPractitioner(registrar, sender=hospital)
    suspend(hospital)
    with reverts(
        provider_registry.ProviderSelfApproval, registrar=registrar, institution=hospital
    ):
        provider_registry.approveInstitution(hospital, sender=registrar)


def test_remove_practitioner_withdraws_an_invitation(
    provider_registry: Any, hospital: AccountAPI, doctor: AccountAPI
) -> None:
    provider_registry.addPractitioner(doctor, sender=hospital)

    tx = provider_registry.removePractitioner(doctor, sender=hospital)

    assert_events(
        tx,
        provider_registry.PractitionerRemoved(
            institution=hospital, practitioner=doctor, by=hospital
        ),
    )
    assert not provider_registry.isInvited(hospital, doctor)
    assert_no_role(provider_registry, doctor)


def test_withdrawing_a_stale_invitation_leaves_the_practitioner_with_its_employer(
    provider_registry: Any, hospital: AccountAPI, clinic: AccountAPI, doctor: AccountAPI
) -> None:
    provider_registry.addPractitioner(doctor, sender=hospital)
    provider_registry.addPractitioner(doctor, sender=clinic)
    provider_registry.acceptPractitioner(clinic, sender=doctor)

    tx = provider_registry.removePractitioner(doctor, sender=hospital)

    assert_events(
        tx,
        provider_registry.PractitionerRemoved(
            institution=hospital, practitioner=doctor, by=hospital
        ),
    )
    assert not provider_registry.isInvited(hospital, doctor)
    assert_practitioner_of(provider_registry, doctor, clinic)


@pytest.mark.parametrize(
    "case",
    [
        "stranger-removes-practitioner",
        "other-institution-removes-practitioner",
        "colleague-removes-practitioner",
        "institution-removes-a-patient",
        "institution-removes-an-account-with-no-role",
        "institution-removes-practitioner-of-another",
        "institution-removes-already-removed",
        "invited-account-removes-itself",
        "patient-removes-itself",
    ],
)
def test_remove_practitioner_reverts_when_caller_is_neither_employer_nor_practitioner(
    provider_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    register_patient: Callable[..., Any],
    add_practitioner: Callable[..., Any],
    case: str,
) -> None:
    register_patient(patient)
    caller, account = hospital, doctor
    if case == "stranger-removes-practitioner":
        add_practitioner(hospital, doctor)
        caller = stranger
    elif case == "other-institution-removes-practitioner":
        add_practitioner(hospital, doctor)
        caller = clinic
    elif case == "colleague-removes-practitioner":
        add_practitioner(hospital, doctor)
        add_practitioner(hospital, stranger)
        caller = stranger
    elif case == "institution-removes-a-patient":
        account = patient
    elif case == "institution-removes-an-account-with-no-role":
        account = stranger
    elif case == "institution-removes-practitioner-of-another":
        add_practitioner(clinic, doctor)
    elif case == "institution-removes-already-removed":
        add_practitioner(hospital, doctor)
        provider_registry.removePractitioner(doctor, sender=hospital)
    elif case == "invited-account-removes-itself":
        provider_registry.addPractitioner(doctor, sender=hospital)
        caller = doctor
    else:
        caller = account = patient
    with reverts(provider_registry.ProviderNotPractitioner, institution=caller, account=account):
        provider_registry.removePractitioner(account, sender=caller)


def test_suspended_institution_can_still_remove_its_practitioner(
    provider_registry: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    add_practitioner: Callable[..., Any],
    suspend: Callable[..., Any],
) -> None:
    add_practitioner(hospital, doctor)
    suspend(hospital)

    tx = provider_registry.removePractitioner(doctor, sender=hospital)

    assert_events(
        tx,
        provider_registry.PractitionerRemoved(
            institution=hospital, practitioner=doctor, by=hospital
        ),
    )
    assert participant(provider_registry, doctor) == BLANK


def test_practitioner_of_a_suspended_institution_can_leave(
    provider_registry: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    add_practitioner: Callable[..., Any],
    suspend: Callable[..., Any],
) -> None:
    add_practitioner(hospital, doctor)
    suspend(hospital)
    tx = provider_registry.removePractitioner(doctor, sender=doctor)
    assert_events(
        tx,
        provider_registry.PractitionerRemoved(institution=hospital, practitioner=doctor, by=doctor),
    )
    assert participant(provider_registry, doctor) == BLANK


# ============================================================================ after removal


@pytest.mark.parametrize("by", ["employer", "practitioner"])
def test_removed_practitioner_may_register_as_a_patient(
    provider_registry: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    add_practitioner: Callable[..., Any],
    by: str,
) -> None:
    add_practitioner(hospital, doctor)
    provider_registry.removePractitioner(doctor, sender=hospital if by == "employer" else doctor)
    key = new_key()

    tx = provider_registry.registerPatient(
        key, key_proof(provider_registry, doctor, key), sender=doctor
    )

    assert_events(
        tx,
        provider_registry.EncryptionKeyPublished(account=doctor, key=key),
        provider_registry.PatientRegistered(patient=doctor),
    )
    assert participant(provider_registry, doctor) == BLANK | {
        "role": Role.PATIENT,
        "keyPrefix": key[0],
    }
    assert provider_registry.writerOf(doctor) == (True, 0)
    assert provider_registry.verifiedInstitutionOf(doctor) == ZERO_ADDRESS


@pytest.mark.parametrize("by", ["employer", "practitioner"])
def test_removed_practitioner_may_join_another_institution(
    provider_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    doctor: AccountAPI,
    add_practitioner: Callable[..., Any],
    by: str,
) -> None:
    add_practitioner(hospital, doctor)
    provider_registry.removePractitioner(doctor, sender=hospital if by == "employer" else doctor)

    add_practitioner(clinic, doctor)

    assert_practitioner_of(provider_registry, doctor, clinic)
    with reverts(provider_registry.ProviderNotPractitioner, institution=hospital, account=doctor):
        provider_registry.removePractitioner(doctor, sender=hospital)


def test_removed_practitioner_may_be_invited_back(
    provider_registry: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    add_practitioner: Callable[..., Any],
) -> None:
    add_practitioner(hospital, doctor)
    provider_registry.removePractitioner(doctor, sender=doctor)
    add_practitioner(hospital, doctor)
    assert_practitioner_of(provider_registry, doctor, hospital)


def test_practitioner_acts_again_when_suspended_employer_is_reinstated(
    provider_registry: Any,
    hospital: AccountAPI,
    doctor: AccountAPI,
    approve: Callable[..., Any],
    suspend: Callable[..., Any],
    add_practitioner: Callable[..., Any],
) -> None:
    add_practitioner(hospital, doctor)
    suspend(hospital)
    assert provider_registry.verifiedInstitutionOf(doctor) == ZERO_ADDRESS
    assert provider_registry.writerOf(doctor) == (False, 0)
    approve(hospital)
    assert_practitioner_of(provider_registry, doctor, hospital)
