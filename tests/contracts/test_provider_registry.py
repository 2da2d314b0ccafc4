"""ProviderRegistry: roles, k-of-n verification, suspension and reinstatement, practitioners,
patients, encryption keys, threshold and registrar management."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from .support import (
    DEFAULT_ADMIN_ROLE,
    REGISTRAR_ROLE,
    THRESHOLD,
    ZERO_ADDRESS,
    Kind,
    Role,
    Status,
    assert_events,
    new_key,
    reverts,
    reverts_without_data,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

REASON = b"licence-lapsed".ljust(32, b"\0")


def participant(registry: Any, account: AccountAPI) -> dict[str, Any]:
    return dict(registry.participant(account).items())


def expected_participant(**fields: Any) -> dict[str, Any]:
    blank = {
        "role": Role.NONE,
        "kind": Kind.NONE,
        "status": Status.NONE,
        "approvals": 0,
        "round": 0,
        "employer": ZERO_ADDRESS,
        "active": False,
        "keyPrefix": 0,
    }
    unknown = set(fields) - set(blank)
    assert not unknown, f"no such Participant fields: {unknown}"
    return blank | fields


@pytest.fixture
def institution_in(
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
    approve: Callable[..., Any],
    suspend: Callable[..., Any],
) -> Callable[[Status], AccountAPI]:
    """``institution_in(status)``: the hospital account, brought to ``status``."""

    def bring(status: Status) -> AccountAPI:
        apply_institution(hospital, Kind.HOSPITAL)
        if status in (Status.VERIFIED, Status.SUSPENDED):
            approve(hospital)
        if status is Status.SUSPENDED:
            suspend(hospital)
        return hospital

    return bring


@pytest.fixture
def account_with_role(
    patient: AccountAPI,
    hospital: AccountAPI,
    doctor: AccountAPI,
    register_patient: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
) -> Callable[[str], AccountAPI]:
    """``account_with_role("patient" | "institution" | "practitioner")``."""

    def make(role: str) -> AccountAPI:
        if role == "patient":
            register_patient(patient)
            return patient
        verified_institution(Kind.HOSPITAL)
        if role == "institution":
            return hospital
        add_practitioner(hospital, doctor)
        return doctor

    return make


ROLES = ["patient", "institution", "practitioner"]

INVALID_KEYS = [
    pytest.param(b"", id="empty"),
    pytest.param(b"\x02" * 32, id="32-bytes"),
    pytest.param(b"\x02" * 34, id="34-bytes"),
    pytest.param(b"\x04" + b"\x11" * 32, id="prefix-04"),
    pytest.param(b"\x00" + b"\x11" * 32, id="prefix-00"),
    pytest.param(b"\x01" + b"\x11" * 32, id="prefix-01"),
    pytest.param(new_key(uncompressed=True), id="uncompressed-65-bytes"),
]


# ============================================================================ deployment


def test_deployment_grants_roles_sets_threshold_and_emits_threshold_change(
    chain: Any, provider_registry: Any, admin: AccountAPI, registrars: list[AccountAPI]
) -> None:
    assert provider_registry.DEFAULT_ADMIN_ROLE() == DEFAULT_ADMIN_ROLE
    assert provider_registry.REGISTRAR_ROLE() == REGISTRAR_ROLE
    assert provider_registry.hasRole(DEFAULT_ADMIN_ROLE, admin)
    assert provider_registry.getRoleMemberCount(DEFAULT_ADMIN_ROLE) == 1
    assert provider_registry.getRoleMembers(REGISTRAR_ROLE) == [r.address for r in registrars]
    assert [provider_registry.getRoleMember(REGISTRAR_ROLE, i) for i in range(3)] == [
        r.address for r in registrars
    ]
    assert provider_registry.getRoleAdmin(REGISTRAR_ROLE) == DEFAULT_ADMIN_ROLE
    assert provider_registry.approvalThreshold() == THRESHOLD
    receipt = chain.get_receipt(provider_registry.creation_metadata.txn_hash)
    changed = provider_registry.ApprovalThresholdChanged.from_receipt(receipt)
    assert [(e.previousThreshold, e.newThreshold) for e in changed] == [(0, THRESHOLD)]


@pytest.mark.parametrize(
    ("registrar_indexes", "threshold", "counted"),
    [
        pytest.param([0, 1, 2], 0, 3, id="zero-threshold"),
        pytest.param([0, 1, 2], 4, 3, id="threshold-above-registrars"),
        pytest.param([], 1, 0, id="no-registrars"),
        pytest.param([0, 0, 1], 3, 2, id="duplicate-registrars-count-once"),
    ],
)
def test_deployment_reverts_when_threshold_is_unreachable(
    project: Any,
    admin: AccountAPI,
    registrars: list[AccountAPI],
    registrar_indexes: list[int],
    threshold: int,
    counted: int,
) -> None:
    chosen = [registrars[i] for i in registrar_indexes]
    with reverts(
        project.ProviderRegistry.ProviderInvalidThreshold, threshold=threshold, registrars=counted
    ):
        admin.deploy(project.ProviderRegistry, admin, chosen, threshold)


def test_supports_access_control_interfaces(provider_registry: Any) -> None:
    assert provider_registry.supportsInterface(bytes.fromhex("01ffc9a7"))  # IERC165
    assert provider_registry.supportsInterface(bytes.fromhex("7965db0b"))  # IAccessControl
    assert provider_registry.supportsInterface(bytes.fromhex("5a05180f"))  # ...Enumerable
    assert not provider_registry.supportsInterface(bytes.fromhex("ffffffff"))


def test_unknown_account_has_blank_participant_no_key_and_no_institution(
    provider_registry: Any, stranger: AccountAPI
) -> None:
    assert participant(provider_registry, stranger) == expected_participant()
    assert provider_registry.encryptionKey(stranger) == b""
    assert provider_registry.verifiedInstitutionOf(stranger) == ZERO_ADDRESS


# ============================================================================ applyAsInstitution


@pytest.mark.parametrize(
    "kind", [k for k in Kind if k is not Kind.NONE], ids=lambda k: k.name.lower()
)
def test_apply_records_pending_institution_of_kind_and_emits_key_then_application(
    provider_registry: Any, hospital: AccountAPI, kind: Kind
) -> None:
    key = new_key()
    tx = provider_registry.applyAsInstitution(kind, "St. Mary's", key, sender=hospital)

    assert_events(
        tx,
        provider_registry.EncryptionKeyPublished(account=hospital, key=key),
        provider_registry.InstitutionApplied(institution=hospital, kind=kind, name="St. Mary's"),
    )
    assert participant(provider_registry, hospital) == expected_participant(
        role=Role.INSTITUTION, kind=kind, status=Status.PENDING, keyPrefix=key[0]
    )
    assert provider_registry.encryptionKey(hospital) == key
    assert provider_registry.verifiedInstitutionOf(hospital) == ZERO_ADDRESS


def test_apply_reverts_when_kind_is_none(provider_registry: Any, hospital: AccountAPI) -> None:
    with reverts(provider_registry.ProviderInvalidKind, kind=Kind.NONE):
        provider_registry.applyAsInstitution(Kind.NONE, "Nowhere", new_key(), sender=hospital)


def test_apply_reverts_without_data_when_kind_is_out_of_range(
    provider_registry: Any, hospital: AccountAPI
) -> None:
    with reverts_without_data():
        provider_registry.applyAsInstitution(len(Kind), "Nowhere", new_key(), sender=hospital)


@pytest.mark.parametrize("role", ROLES)
def test_apply_reverts_when_account_already_has_a_role(
    provider_registry: Any, account_with_role: Callable[[str], AccountAPI], role: str
) -> None:
    account = account_with_role(role)
    with reverts(provider_registry.ProviderAlreadyRegistered, account=account):
        provider_registry.applyAsInstitution(Kind.CLINIC, "Again", new_key(), sender=account)


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_apply_reverts_when_key_is_not_a_compressed_public_key(
    provider_registry: Any, hospital: AccountAPI, key: bytes
) -> None:
    with reverts(provider_registry.ProviderInvalidEncryptionKey, key=key):
        provider_registry.applyAsInstitution(Kind.HOSPITAL, "Bad key", key, sender=hospital)


# ============================================================================ approveInstitution


def test_approve_below_threshold_counts_approval_and_keeps_institution_pending(
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
) -> None:
    apply_institution(hospital)
    assert provider_registry.approveInstitution.call(hospital, sender=registrars[0]) is False

    tx = provider_registry.approveInstitution(hospital, sender=registrars[0])

    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=registrars[0], approvals=1, threshold=THRESHOLD
        ),
    )
    fields = participant(provider_registry, hospital)
    assert (fields["status"], fields["approvals"], fields["round"]) == (Status.PENDING, 1, 0)


def test_approve_at_threshold_verifies_institution_and_starts_new_round(
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
) -> None:
    apply_institution(hospital)
    provider_registry.approveInstitution(hospital, sender=registrars[0])
    assert provider_registry.approveInstitution.call(hospital, sender=registrars[2]) is True

    tx = provider_registry.approveInstitution(hospital, sender=registrars[2])

    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=registrars[2], approvals=2, threshold=THRESHOLD
        ),
        provider_registry.InstitutionVerified(institution=hospital),
    )
    fields = participant(provider_registry, hospital)
    assert (fields["status"], fields["approvals"], fields["round"]) == (Status.VERIFIED, 0, 1)
    assert provider_registry.verifiedInstitutionOf(hospital) == hospital.address


def test_approve_reverts_when_registrar_approves_twice(
    provider_registry: Any,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
) -> None:
    apply_institution(hospital)
    provider_registry.approveInstitution(hospital, sender=registrars[1])
    with reverts(
        provider_registry.ProviderAlreadyApproved, institution=hospital, registrar=registrars[1]
    ):
        provider_registry.approveInstitution(hospital, sender=registrars[1])


@pytest.mark.parametrize("caller", ["admin", "stranger", "applicant-itself"])
def test_approve_reverts_when_caller_is_not_registrar(
    provider_registry: Any,
    admin: AccountAPI,
    stranger: AccountAPI,
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
    caller: str,
) -> None:
    apply_institution(hospital)
    sender = {"admin": admin, "stranger": stranger, "applicant-itself": hospital}[caller]
    with reverts(
        provider_registry.AccessControlUnauthorizedAccount,
        account=sender,
        neededRole=REGISTRAR_ROLE,
    ):
        provider_registry.approveInstitution(hospital, sender=sender)


@pytest.mark.parametrize("role", ["none", "patient", "practitioner"])
def test_approve_reverts_when_account_is_not_an_institution(
    provider_registry: Any,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    account_with_role: Callable[[str], AccountAPI],
    role: str,
) -> None:
    account = stranger if role == "none" else account_with_role(role)
    with reverts(provider_registry.ProviderNotInstitution, account=account):
        provider_registry.approveInstitution(account, sender=registrars[0])


def test_approve_reverts_when_institution_is_already_verified(
    provider_registry: Any,
    registrars: list[AccountAPI],
    institution_in: Callable[[Status], AccountAPI],
) -> None:
    institution = institution_in(Status.VERIFIED)
    with reverts(
        provider_registry.ProviderInvalidStatus, institution=institution, status=Status.VERIFIED
    ):
        provider_registry.approveInstitution(institution, sender=registrars[2])


def test_approve_uses_threshold_current_at_each_approval(
    provider_registry: Any,
    admin: AccountAPI,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
) -> None:
    apply_institution(hospital)
    provider_registry.approveInstitution(hospital, sender=registrars[0])
    provider_registry.setApprovalThreshold(3, sender=admin)

    second = provider_registry.approveInstitution(hospital, sender=registrars[1])
    third = provider_registry.approveInstitution(hospital, sender=registrars[2])

    assert_events(
        second,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=registrars[1], approvals=2, threshold=3
        ),
    )
    assert_events(
        third,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=registrars[2], approvals=3, threshold=3
        ),
        provider_registry.InstitutionVerified(institution=hospital),
    )


def test_threshold_of_one_lets_a_single_registrar_verify(
    provider_registry: Any,
    admin: AccountAPI,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
) -> None:
    provider_registry.setApprovalThreshold(1, sender=admin)
    apply_institution(hospital)
    tx = provider_registry.approveInstitution(hospital, sender=registrars[1])
    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=registrars[1], approvals=1, threshold=1
        ),
        provider_registry.InstitutionVerified(institution=hospital),
    )


# ============================================================================ suspendInstitution


def test_suspend_stops_a_verified_institution_and_starts_new_round(
    provider_registry: Any,
    registrars: list[AccountAPI],
    patient: AccountAPI,
    register_patient: Callable[..., Any],
    institution_in: Callable[[Status], AccountAPI],
) -> None:
    register_patient(patient)
    institution = institution_in(Status.VERIFIED)

    tx = provider_registry.suspendInstitution(institution, REASON, sender=registrars[2])

    assert_events(
        tx,
        provider_registry.InstitutionSuspended(
            institution=institution, registrar=registrars[2], reason=REASON
        ),
    )
    fields = participant(provider_registry, institution)
    assert (fields["status"], fields["approvals"], fields["round"]) == (Status.SUSPENDED, 0, 2)
    assert provider_registry.verifiedInstitutionOf(institution) == ZERO_ADDRESS
    assert provider_registry.canAnchor(institution, patient) == (False, True)


def test_suspend_reverts_when_caller_is_not_registrar(
    provider_registry: Any, admin: AccountAPI, institution_in: Callable[[Status], AccountAPI]
) -> None:
    institution = institution_in(Status.VERIFIED)
    with reverts(
        provider_registry.AccessControlUnauthorizedAccount, account=admin, neededRole=REGISTRAR_ROLE
    ):
        provider_registry.suspendInstitution(institution, REASON, sender=admin)


@pytest.mark.parametrize("status", [Status.PENDING, Status.SUSPENDED], ids=lambda s: s.name.lower())
def test_suspend_reverts_when_institution_is_not_verified(
    provider_registry: Any,
    registrars: list[AccountAPI],
    institution_in: Callable[[Status], AccountAPI],
    status: Status,
) -> None:
    institution = institution_in(status)
    with reverts(provider_registry.ProviderInvalidStatus, institution=institution, status=status):
        provider_registry.suspendInstitution(institution, REASON, sender=registrars[1])


@pytest.mark.parametrize("role", ["none", "patient", "practitioner"])
def test_suspend_reverts_when_account_is_not_an_institution(
    provider_registry: Any,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    account_with_role: Callable[[str], AccountAPI],
    role: str,
) -> None:
    account = stranger if role == "none" else account_with_role(role)
    with reverts(provider_registry.ProviderNotInstitution, account=account):
        provider_registry.suspendInstitution(account, REASON, sender=registrars[0])


# ============================================================================ reinstatement


def test_reinstatement_needs_the_threshold_again(
    provider_registry: Any,
    registrars: list[AccountAPI],
    institution_in: Callable[[Status], AccountAPI],
) -> None:
    institution = institution_in(Status.SUSPENDED)

    first = provider_registry.approveInstitution(institution, sender=registrars[2])
    assert participant(provider_registry, institution)["status"] == Status.SUSPENDED
    second = provider_registry.approveInstitution(institution, sender=registrars[1])

    assert_events(
        first,
        provider_registry.InstitutionApproved(
            institution=institution, registrar=registrars[2], approvals=1, threshold=THRESHOLD
        ),
    )
    assert_events(
        second,
        provider_registry.InstitutionApproved(
            institution=institution, registrar=registrars[1], approvals=2, threshold=THRESHOLD
        ),
        provider_registry.InstitutionReinstated(institution=institution),
    )
    fields = participant(provider_registry, institution)
    assert (fields["status"], fields["approvals"], fields["round"]) == (Status.VERIFIED, 0, 3)
    assert provider_registry.verifiedInstitutionOf(institution) == institution.address


def test_reinstatement_does_not_count_approvals_from_the_verification_round(
    provider_registry: Any,
    registrars: list[AccountAPI],
    institution_in: Callable[[Status], AccountAPI],
) -> None:
    # registrars[0] and [1] verified the institution before it was suspended.
    institution = institution_in(Status.SUSPENDED)

    tx = provider_registry.approveInstitution(institution, sender=registrars[0])

    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=institution, registrar=registrars[0], approvals=1, threshold=THRESHOLD
        ),
    )
    assert participant(provider_registry, institution)["status"] == Status.SUSPENDED


def test_reinstatement_reverts_when_registrar_approves_twice_in_the_round(
    provider_registry: Any,
    registrars: list[AccountAPI],
    institution_in: Callable[[Status], AccountAPI],
) -> None:
    institution = institution_in(Status.SUSPENDED)
    provider_registry.approveInstitution(institution, sender=registrars[0])
    with reverts(
        provider_registry.ProviderAlreadyApproved,
        institution=institution,
        registrar=registrars[0],
    ):
        provider_registry.approveInstitution(institution, sender=registrars[0])


def test_partial_reinstatement_approvals_lapse_after_reinstatement_and_new_suspension(
    provider_registry: Any,
    registrars: list[AccountAPI],
    suspend: Callable[..., Any],
    institution_in: Callable[[Status], AccountAPI],
) -> None:
    institution = institution_in(Status.SUSPENDED)
    provider_registry.approveInstitution(institution, sender=registrars[0])
    provider_registry.approveInstitution(institution, sender=registrars[1])  # reinstated
    suspend(institution)

    tx = provider_registry.approveInstitution(institution, sender=registrars[0])

    assert_events(
        tx,
        provider_registry.InstitutionApproved(
            institution=institution, registrar=registrars[0], approvals=1, threshold=THRESHOLD
        ),
    )
    fields = participant(provider_registry, institution)
    assert (fields["status"], fields["round"]) == (Status.SUSPENDED, 4)


# ============================================================================ practitioners


def test_add_practitioner_registers_an_active_practitioner_without_key(
    provider_registry: Any,
    doctor: AccountAPI,
    patient: AccountAPI,
    register_patient: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
) -> None:
    register_patient(patient)
    hospital = verified_institution(Kind.HOSPITAL)

    tx = provider_registry.addPractitioner(doctor, sender=hospital)

    assert_events(
        tx, provider_registry.PractitionerAdded(institution=hospital, practitioner=doctor)
    )
    assert participant(provider_registry, doctor) == expected_participant(
        role=Role.PRACTITIONER, employer=hospital.address, active=True
    )
    assert provider_registry.encryptionKey(doctor) == b""
    assert provider_registry.verifiedInstitutionOf(doctor) == hospital.address
    assert provider_registry.canAnchor(doctor, patient) == (True, True)


@pytest.mark.parametrize("role", ["none", "patient", "practitioner"])
def test_add_practitioner_reverts_when_caller_is_not_an_institution(
    provider_registry: Any,
    stranger: AccountAPI,
    other_patient: AccountAPI,
    account_with_role: Callable[[str], AccountAPI],
    role: str,
) -> None:
    caller = stranger if role == "none" else account_with_role(role)
    with reverts(provider_registry.ProviderNotInstitution, account=caller):
        provider_registry.addPractitioner(other_patient, sender=caller)


@pytest.mark.parametrize("status", [Status.PENDING, Status.SUSPENDED], ids=lambda s: s.name.lower())
def test_add_practitioner_reverts_when_institution_is_not_verified(
    provider_registry: Any,
    doctor: AccountAPI,
    institution_in: Callable[[Status], AccountAPI],
    status: Status,
) -> None:
    institution = institution_in(status)
    with reverts(provider_registry.ProviderInvalidStatus, institution=institution, status=status):
        provider_registry.addPractitioner(doctor, sender=institution)


@pytest.mark.parametrize(
    "existing", ["patient", "institution-itself", "other-institution", "practitioner-of-other"]
)
def test_add_practitioner_reverts_when_account_already_has_a_role(
    provider_registry: Any,
    patient: AccountAPI,
    doctor: AccountAPI,
    register_patient: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
    existing: str,
) -> None:
    clinic = verified_institution(Kind.CLINIC)
    hospital = verified_institution(Kind.HOSPITAL)
    register_patient(patient)
    add_practitioner(clinic, doctor)
    account = {
        "patient": patient,
        "institution-itself": hospital,
        "other-institution": clinic,
        "practitioner-of-other": doctor,
    }[existing]
    with reverts(provider_registry.ProviderAlreadyRegistered, account=account):
        provider_registry.addPractitioner(account, sender=hospital)


def test_remove_practitioner_deactivates_and_keeps_employer(
    provider_registry: Any,
    doctor: AccountAPI,
    patient: AccountAPI,
    register_patient: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
) -> None:
    register_patient(patient)
    hospital = verified_institution(Kind.HOSPITAL)
    add_practitioner(hospital, doctor)

    tx = provider_registry.removePractitioner(doctor, sender=hospital)

    assert_events(
        tx, provider_registry.PractitionerRemoved(institution=hospital, practitioner=doctor)
    )
    assert participant(provider_registry, doctor) == expected_participant(
        role=Role.PRACTITIONER, employer=hospital.address, active=False
    )
    assert provider_registry.verifiedInstitutionOf(doctor) == ZERO_ADDRESS
    assert provider_registry.canAnchor(doctor, patient) == (False, True)


@pytest.mark.parametrize(
    "case", ["no-role", "patient", "practitioner-of-other-institution", "already-removed"]
)
def test_remove_practitioner_reverts_when_account_is_not_an_active_practitioner_of_caller(
    provider_registry: Any,
    doctor: AccountAPI,
    patient: AccountAPI,
    stranger: AccountAPI,
    register_patient: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
    case: str,
) -> None:
    hospital = verified_institution(Kind.HOSPITAL)
    account = stranger
    if case == "patient":
        register_patient(patient)
        account = patient
    elif case == "practitioner-of-other-institution":
        clinic = verified_institution(Kind.CLINIC)
        add_practitioner(clinic, doctor)
        account = doctor
    elif case == "already-removed":
        add_practitioner(hospital, doctor)
        provider_registry.removePractitioner(doctor, sender=hospital)
        account = doctor
    with reverts(provider_registry.ProviderNotPractitioner, institution=hospital, account=account):
        provider_registry.removePractitioner(account, sender=hospital)


def test_suspended_institution_can_still_remove_its_practitioner(
    provider_registry: Any,
    doctor: AccountAPI,
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
    suspend: Callable[..., Any],
) -> None:
    hospital = verified_institution(Kind.HOSPITAL)
    add_practitioner(hospital, doctor)
    suspend(hospital)

    tx = provider_registry.removePractitioner(doctor, sender=hospital)

    assert_events(
        tx, provider_registry.PractitionerRemoved(institution=hospital, practitioner=doctor)
    )


def test_removed_practitioner_cannot_be_added_again(
    provider_registry: Any,
    doctor: AccountAPI,
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
) -> None:
    # One role per account, for good: a practitioner who moves on needs a new account.
    hospital = verified_institution(Kind.HOSPITAL)
    clinic = verified_institution(Kind.CLINIC)
    add_practitioner(hospital, doctor)
    provider_registry.removePractitioner(doctor, sender=hospital)
    for institution in (hospital, clinic):
        with reverts(provider_registry.ProviderAlreadyRegistered, account=doctor):
            provider_registry.addPractitioner(doctor, sender=institution)


def test_practitioner_acts_again_when_suspended_employer_is_reinstated(
    provider_registry: Any,
    doctor: AccountAPI,
    approve: Callable[..., Any],
    suspend: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
) -> None:
    hospital = verified_institution(Kind.HOSPITAL)
    add_practitioner(hospital, doctor)
    suspend(hospital)
    assert provider_registry.verifiedInstitutionOf(doctor) == ZERO_ADDRESS
    approve(hospital)
    assert provider_registry.verifiedInstitutionOf(doctor) == hospital.address


# ============================================================================ patients and keys


def test_register_patient_records_role_and_key_and_emits_key_then_registration(
    provider_registry: Any, patient: AccountAPI
) -> None:
    key = new_key()
    tx = provider_registry.registerPatient(key, sender=patient)

    assert_events(
        tx,
        provider_registry.EncryptionKeyPublished(account=patient, key=key),
        provider_registry.PatientRegistered(patient=patient),
    )
    assert participant(provider_registry, patient) == expected_participant(
        role=Role.PATIENT, keyPrefix=key[0]
    )
    assert provider_registry.encryptionKey(patient) == key
    assert provider_registry.canAnchor(patient, patient) == (True, True)
    assert provider_registry.verifiedInstitutionOf(patient) == ZERO_ADDRESS


@pytest.mark.parametrize("role", ROLES)
def test_register_patient_reverts_when_account_already_has_a_role(
    provider_registry: Any, account_with_role: Callable[[str], AccountAPI], role: str
) -> None:
    account = account_with_role(role)
    with reverts(provider_registry.ProviderAlreadyRegistered, account=account):
        provider_registry.registerPatient(new_key(), sender=account)


OFF_CURVE_KEYS = [
    pytest.param(b"\x02" + (5).to_bytes(32, "big"), id="x-not-on-curve"),
    pytest.param(b"\x03" + b"\xff" * 32, id="x-not-below-field-prime"),
]


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="missing check: only the length and prefix of a key are checked, not the curve",
)
@pytest.mark.parametrize("key", OFF_CURVE_KEYS)
def test_register_patient_reverts_when_key_is_not_a_curve_point(
    provider_registry: Any, patient: AccountAPI, key: bytes
) -> None:
    with reverts(provider_registry.ProviderInvalidEncryptionKey, key=key):
        provider_registry.registerPatient(key, sender=patient)


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_register_patient_reverts_when_key_is_not_a_compressed_public_key(
    provider_registry: Any, patient: AccountAPI, key: bytes
) -> None:
    with reverts(provider_registry.ProviderInvalidEncryptionKey, key=key):
        provider_registry.registerPatient(key, sender=patient)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("prefix", [2, 3], ids=["even-y", "odd-y"])
def test_publish_key_rotates_key_and_changes_nothing_else(
    provider_registry: Any,
    account_with_role: Callable[[str], AccountAPI],
    role: str,
    prefix: int,
) -> None:
    account = account_with_role(role)
    before = participant(provider_registry, account)
    key = new_key(prefix)

    tx = provider_registry.publishEncryptionKey(key, sender=account)

    assert_events(tx, provider_registry.EncryptionKeyPublished(account=account, key=key))
    assert provider_registry.encryptionKey(account) == key
    assert participant(provider_registry, account) == before | {"keyPrefix": prefix}


def test_publish_key_reverts_when_account_has_no_role(
    provider_registry: Any, stranger: AccountAPI
) -> None:
    with reverts(provider_registry.ProviderNotRegistered, account=stranger):
        provider_registry.publishEncryptionKey(new_key(), sender=stranger)


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_publish_key_reverts_when_key_is_not_a_compressed_public_key(
    provider_registry: Any,
    patient: AccountAPI,
    register_patient: Callable[..., Any],
    key: bytes,
) -> None:
    register_patient(patient)
    with reverts(provider_registry.ProviderInvalidEncryptionKey, key=key):
        provider_registry.publishEncryptionKey(key, sender=patient)


# ============================================================================ canAnchor


WRITERS = [
    # (issuer, patient registered?, issuerMayWrite)
    pytest.param("patient-self", True, True, id="patient-for-self"),
    pytest.param("other-patient", True, False, id="patient-for-another-patient"),
    pytest.param("verified-institution", True, True, id="verified-institution"),
    pytest.param("pending-institution", True, False, id="pending-institution"),
    pytest.param("suspended-institution", True, False, id="suspended-institution"),
    pytest.param("active-practitioner", True, True, id="active-practitioner"),
    pytest.param("removed-practitioner", True, False, id="removed-practitioner"),
    pytest.param("practitioner-of-suspended", True, False, id="practitioner-of-suspended"),
    pytest.param("stranger", True, False, id="stranger"),
    pytest.param("verified-institution", False, True, id="verified-for-unregistered-patient"),
    pytest.param("patient-self", False, False, id="unregistered-self"),
]


@pytest.mark.parametrize(("writer", "registered", "may_write"), WRITERS)
def test_can_anchor_and_verified_institution_of_follow_roles_and_status(
    provider_registry: Any,
    hospital: AccountAPI,
    clinic: AccountAPI,
    patient: AccountAPI,
    other_patient: AccountAPI,
    doctor: AccountAPI,
    stranger: AccountAPI,
    register_patient: Callable[..., Any],
    apply_institution: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    add_practitioner: Callable[..., Any],
    suspend: Callable[..., Any],
    writer: str,
    registered: bool,
    may_write: bool,
) -> None:
    if registered:
        register_patient(patient)
    employer: AccountAPI | None = None
    if writer == "other-patient":
        register_patient(other_patient)
        issuer = other_patient
    elif writer.endswith("institution"):
        issuer = hospital
        if writer == "pending-institution":
            apply_institution(hospital)
        else:
            verified_institution(Kind.HOSPITAL)
            if writer == "suspended-institution":
                suspend(hospital)
            else:
                employer = hospital
    elif "practitioner" in writer:
        issuer = doctor
        verified_institution(Kind.CLINIC)
        add_practitioner(clinic, doctor)
        employer = clinic
        if writer == "removed-practitioner":
            provider_registry.removePractitioner(doctor, sender=clinic)
            employer = None
        elif writer == "practitioner-of-suspended":
            suspend(clinic)
            employer = None
    elif writer == "patient-self":
        issuer = patient
    else:
        issuer = stranger

    assert provider_registry.canAnchor(issuer, patient) == (may_write, registered)
    expected_institution = employer.address if employer is not None else ZERO_ADDRESS
    assert provider_registry.verifiedInstitutionOf(issuer) == expected_institution


# ============================================================================ threshold


def test_set_threshold_changes_threshold_and_emits_old_and_new(
    provider_registry: Any, admin: AccountAPI
) -> None:
    tx = provider_registry.setApprovalThreshold(3, sender=admin)
    assert_events(
        tx, provider_registry.ApprovalThresholdChanged(previousThreshold=2, newThreshold=3)
    )
    assert provider_registry.approvalThreshold() == 3


@pytest.mark.parametrize("caller", ["registrar", "stranger"])
def test_set_threshold_reverts_when_caller_is_not_admin(
    provider_registry: Any,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    caller: str,
) -> None:
    sender = registrars[0] if caller == "registrar" else stranger
    with reverts(
        provider_registry.AccessControlUnauthorizedAccount,
        account=sender,
        neededRole=DEFAULT_ADMIN_ROLE,
    ):
        provider_registry.setApprovalThreshold(1, sender=sender)


@pytest.mark.parametrize("threshold", [0, 4, 255], ids=["zero", "one-above", "max-uint8"])
def test_set_threshold_reverts_when_zero_or_above_registrar_count(
    provider_registry: Any, admin: AccountAPI, threshold: int
) -> None:
    with reverts(provider_registry.ProviderInvalidThreshold, threshold=threshold, registrars=3):
        provider_registry.setApprovalThreshold(threshold, sender=admin)


# ============================================================================ registrars


def test_admin_adds_registrar_who_may_approve_and_raises_threshold_to_four(
    provider_registry: Any,
    admin: AccountAPI,
    stranger: AccountAPI,
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
) -> None:
    tx = provider_registry.grantRole(REGISTRAR_ROLE, stranger, sender=admin)
    assert_events(
        tx, provider_registry.RoleGranted(role=REGISTRAR_ROLE, account=stranger, sender=admin)
    )
    provider_registry.setApprovalThreshold(4, sender=admin)
    apply_institution(hospital)
    approved = provider_registry.approveInstitution(hospital, sender=stranger)
    assert_events(
        approved,
        provider_registry.InstitutionApproved(
            institution=hospital, registrar=stranger, approvals=1, threshold=4
        ),
    )


def test_revoke_registrar_succeeds_while_count_stays_at_threshold(
    provider_registry: Any,
    admin: AccountAPI,
    registrars: list[AccountAPI],
    hospital: AccountAPI,
    apply_institution: Callable[..., Any],
) -> None:
    tx = provider_registry.revokeRole(REGISTRAR_ROLE, registrars[2], sender=admin)

    assert_events(
        tx,
        provider_registry.RoleRevoked(role=REGISTRAR_ROLE, account=registrars[2], sender=admin),
    )
    assert provider_registry.getRoleMemberCount(REGISTRAR_ROLE) == THRESHOLD
    apply_institution(hospital)
    with reverts(
        provider_registry.AccessControlUnauthorizedAccount,
        account=registrars[2],
        neededRole=REGISTRAR_ROLE,
    ):
        provider_registry.approveInstitution(hospital, sender=registrars[2])


def test_revoke_registrar_reverts_when_count_would_drop_below_threshold(
    provider_registry: Any, admin: AccountAPI, registrars: list[AccountAPI]
) -> None:
    provider_registry.setApprovalThreshold(3, sender=admin)
    with reverts(provider_registry.ProviderInvalidThreshold, threshold=3, registrars=2):
        provider_registry.revokeRole(REGISTRAR_ROLE, registrars[0], sender=admin)
    assert provider_registry.hasRole(REGISTRAR_ROLE, registrars[0])


def test_renounce_registrar_reverts_when_count_would_drop_below_threshold(
    provider_registry: Any, admin: AccountAPI, registrars: list[AccountAPI]
) -> None:
    provider_registry.setApprovalThreshold(3, sender=admin)
    with reverts(provider_registry.ProviderInvalidThreshold, threshold=3, registrars=2):
        provider_registry.renounceRole(REGISTRAR_ROLE, registrars[1], sender=registrars[1])


def test_renounce_registrar_succeeds_while_count_stays_at_threshold(
    provider_registry: Any, registrars: list[AccountAPI]
) -> None:
    tx = provider_registry.renounceRole(REGISTRAR_ROLE, registrars[1], sender=registrars[1])
    assert_events(
        tx,
        provider_registry.RoleRevoked(
            role=REGISTRAR_ROLE, account=registrars[1], sender=registrars[1]
        ),
    )
    assert not provider_registry.hasRole(REGISTRAR_ROLE, registrars[1])


def test_renounce_reverts_when_confirmation_is_not_the_caller(
    provider_registry: Any, registrars: list[AccountAPI]
) -> None:
    with reverts(provider_registry.AccessControlBadConfirmation):
        provider_registry.renounceRole(REGISTRAR_ROLE, registrars[0], sender=registrars[1])


@pytest.mark.parametrize("action", ["grant", "revoke"])
def test_registrar_management_reverts_when_caller_is_not_admin(
    provider_registry: Any,
    registrars: list[AccountAPI],
    stranger: AccountAPI,
    action: str,
) -> None:
    function = getattr(provider_registry, f"{action}Role")
    target = stranger if action == "grant" else registrars[2]
    with reverts(
        provider_registry.AccessControlUnauthorizedAccount,
        account=registrars[0],
        neededRole=DEFAULT_ADMIN_ROLE,
    ):
        function(REGISTRAR_ROLE, target, sender=registrars[0])


def test_unrelated_role_can_be_revoked_without_threshold_check(
    provider_registry: Any, admin: AccountAPI, registrars: list[AccountAPI]
) -> None:
    other_role = bytes.fromhex("ab" * 32)
    provider_registry.grantRole(other_role, registrars[0], sender=admin)
    provider_registry.setApprovalThreshold(3, sender=admin)
    tx = provider_registry.revokeRole(other_role, registrars[0], sender=admin)
    assert_events(
        tx, provider_registry.RoleRevoked(role=other_role, account=registrars[0], sender=admin)
    )
