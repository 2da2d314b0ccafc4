"""IdentityRegistry: who may attest a patient's identity and revoke it, and when an attestation
holds (``isAttested``, ``requireAttested``). Exploits first: an unverified party, a
non-care institution or a patient attesting; another institution revoking; a suspended
institution's attestation (void, and still void after reinstatement); an expired one.

The claim side (a policy that requires an attested patient) is tested through the package in
``tests/package/test_identity.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from eth_utils import keccak

from .support import Kind, assert_events, reverts

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

DAY = 24 * 3600
COMMITMENT = keccak(b"salt" + keccak(b"passport X1234567"))
NO_COMMITMENT = b"\0" * 32


@pytest.fixture(scope="module")
def identity(project: Any, admin: AccountAPI, provider_registry: Any) -> Any:
    return project.IdentityRegistry.at(provider_registry.IDENTITY())


@pytest.fixture
def attested_patient(register_patient: Callable[..., Any], patient: AccountAPI) -> AccountAPI:
    register_patient(patient)
    return patient


@pytest.fixture
def hospital_in(verified_institution: Callable[..., AccountAPI]) -> AccountAPI:
    return verified_institution(Kind.HOSPITAL)


def number_of(provider_registry: Any, institution: Any) -> int:
    return int(provider_registry.participant(institution).number)


# ---------------------------------------------------------------------------- exploits


def test_attest_reverts_when_caller_is_unverified(
    identity: Any, attested_patient: AccountAPI, stranger: AccountAPI, now: Callable[[], int]
) -> None:
    with reverts(identity.IdentityNotCareInstitution, caller=stranger):
        identity.attest(attested_patient, now() + DAY, NO_COMMITMENT, sender=stranger)


@pytest.mark.parametrize("kind", [Kind.INSURER, Kind.RESEARCH_SPONSOR], ids=lambda k: k.name)
def test_attest_reverts_when_caller_is_not_a_care_institution(
    identity: Any,
    attested_patient: AccountAPI,
    verified_institution: Callable[..., AccountAPI],
    stranger: AccountAPI,
    now: Callable[[], int],
    kind: Kind,
) -> None:
    institution = verified_institution(kind, stranger)
    with reverts(identity.IdentityNotCareInstitution, caller=institution):
        identity.attest(attested_patient, now() + DAY, NO_COMMITMENT, sender=institution)


def test_attest_reverts_when_the_patient_attests_themselves(
    identity: Any, attested_patient: AccountAPI, now: Callable[[], int]
) -> None:
    with reverts(identity.IdentityNotCareInstitution, caller=attested_patient):
        identity.attest(attested_patient, now() + DAY, NO_COMMITMENT, sender=attested_patient)


def test_a_suspended_institution_cannot_attest_and_its_attestations_are_void_for_good(
    identity: Any,
    provider_registry: Any,
    attested_patient: AccountAPI,
    hospital_in: AccountAPI,
    suspend: Callable[..., Any],
    approve: Callable[..., Any],
    now: Callable[[], int],
) -> None:
    identity.attest(attested_patient, now() + DAY, NO_COMMITMENT, sender=hospital_in)
    number = number_of(provider_registry, hospital_in)
    assert identity.isAttested(attested_patient, number)
    suspend(hospital_in)
    assert not identity.isAttested(attested_patient, number)
    with reverts(identity.IdentityNotAttestedBy, patient=attested_patient, number=number):
        identity.requireAttested(attested_patient, number)
    with reverts(identity.IdentityNotCareInstitution, caller=hospital_in):
        identity.attest(attested_patient, now() + DAY, NO_COMMITMENT, sender=hospital_in)
    approve(hospital_in)  # reinstated: a new round, the old attestation stays void
    assert not identity.isAttested(attested_patient, number)


def test_revoke_reverts_for_another_institution(
    identity: Any,
    provider_registry: Any,
    attested_patient: AccountAPI,
    hospital_in: AccountAPI,
    verified_institution: Callable[..., AccountAPI],
    now: Callable[[], int],
) -> None:
    identity.attest(attested_patient, now() + DAY, NO_COMMITMENT, sender=hospital_in)
    clinic = verified_institution(Kind.CLINIC)
    with reverts(identity.IdentityNotAttested, patient=attested_patient, institution=clinic):
        identity.revoke(attested_patient, sender=clinic)
    assert identity.isAttested(attested_patient, number_of(provider_registry, hospital_in))


def test_an_expired_attestation_does_not_hold(
    identity: Any,
    provider_registry: Any,
    attested_patient: AccountAPI,
    hospital_in: AccountAPI,
    now: Callable[[], int],
    advance_time: Callable[[int], int],
) -> None:
    expires = now() + DAY
    identity.attest(attested_patient, expires, NO_COMMITMENT, sender=hospital_in)
    number = number_of(provider_registry, hospital_in)
    advance_time(expires - now() - 1)
    assert identity.isAttested(attested_patient, number)
    advance_time(1)
    assert not identity.isAttested(attested_patient, number)


@pytest.mark.parametrize("offset", [0, -1, 5 * 365 * DAY + 1], ids=["now", "past", "too-far"])
def test_attest_reverts_on_an_expiry_not_ahead_or_too_far(
    identity: Any,
    attested_patient: AccountAPI,
    hospital_in: AccountAPI,
    chain: Any,
    now: Callable[[], int],
    offset: int,
) -> None:
    at = now() + 100
    chain.pending_timestamp = at  # the attempt's block.timestamp, exactly
    with reverts(identity.IdentityInvalidExpiry, expiresAt=at + offset, latest=at + 5 * 365 * DAY):
        identity.attest(attested_patient, at + offset, NO_COMMITMENT, sender=hospital_in)


def test_attest_reverts_for_an_unregistered_address(
    identity: Any, hospital_in: AccountAPI, stranger: AccountAPI, now: Callable[[], int]
) -> None:
    with reverts(identity.IdentityPatientNotRegistered, patient=stranger):
        identity.attest(stranger, now() + DAY, NO_COMMITMENT, sender=hospital_in)


# ---------------------------------------------------------------------------- lifecycle


def test_a_practitioner_attests_for_its_institution_and_the_institution_revokes(
    identity: Any,
    provider_registry: Any,
    attested_patient: AccountAPI,
    hospital_in: AccountAPI,
    doctor: AccountAPI,
    add_practitioner: Callable[..., Any],
    now: Callable[[], int],
) -> None:
    add_practitioner(hospital_in, doctor)
    expires = now() + 30 * DAY
    number = number_of(provider_registry, hospital_in)
    tx = identity.attest(attested_patient, expires, COMMITMENT, sender=doctor)
    assert_events(
        tx,
        identity.IdentityAttested(
            patient=attested_patient, institution=hospital_in, attester=doctor, number=number,
            expiresAt=expires, commitment=COMMITMENT,
        ),
    )  # fmt: skip
    stored = identity.attestation(attested_patient, number)
    assert (stored.institution, stored.expiresAt, stored.revoked) == (hospital_in, expires, False)
    assert identity.isAttested(attested_patient, number)
    tx = identity.revoke(attested_patient, sender=hospital_in)
    assert_events(
        tx,
        identity.IdentityRevoked(
            patient=attested_patient, institution=hospital_in, revoker=hospital_in
        ),
    )
    assert not identity.isAttested(attested_patient, number)
    with reverts(identity.IdentityNotAttested, patient=attested_patient, institution=hospital_in):
        identity.revoke(attested_patient, sender=doctor)
    identity.attest(attested_patient, expires, NO_COMMITMENT, sender=doctor)  # attested anew
    assert identity.isAttested(attested_patient, number)


# ---------------------------------------------------------------------------- pseudonyms


def test_attest_pseudonym_reverts_for_an_account_with_a_role_or_a_patients_controller(
    identity: Any,
    provider_registry: Any,
    project: Any,
    attested_patient: AccountAPI,
    hospital_in: AccountAPI,
    funded_account: Callable[[], AccountAPI],
    advance_time: Callable[[int], int],
    now: Callable[[], int],
) -> None:
    """A pseudonym has no role and controls no patient: a registered patient, an institution
    and the key a patient was recovered to are refused (each is known by its role)."""
    for account in (attested_patient, hospital_in):
        with reverts(identity.IdentityNotPseudonym, account=account):
            identity.attestPseudonym(account, now() + DAY, NO_COMMITMENT, sender=hospital_in)
    recovery = project.PatientRecovery.at(provider_registry.RECOVERY())
    guardian, new_key = funded_account(), funded_account()
    recovery.setGuardians(attested_patient, [guardian], 1, 3600, sender=attested_patient)
    recovery.approveRecovery(attested_patient, new_key, sender=guardian)
    advance_time(3601)
    recovery.completeRecovery(attested_patient, new_key, sender=guardian)
    with reverts(identity.IdentityNotPseudonym, account=new_key):
        identity.attestPseudonym(new_key, now() + DAY, NO_COMMITMENT, sender=hospital_in)


def test_a_pseudonym_is_attested_revoked_and_checked_like_a_patient(
    identity: Any,
    provider_registry: Any,
    hospital_in: AccountAPI,
    stranger: AccountAPI,
    now: Callable[[], int],
) -> None:
    pseudonym = "0x" + keccak(b"study account").hex()[-40:]
    number = number_of(provider_registry, hospital_in)
    with reverts(identity.IdentityNotCareInstitution, caller=stranger):
        identity.attestPseudonym(pseudonym, now() + DAY, COMMITMENT, sender=stranger)
    identity.attestPseudonym(pseudonym, now() + DAY, COMMITMENT, sender=hospital_in)
    assert identity.isAttested(pseudonym, number)
    assert provider_registry.isAttested(pseudonym, number)
    identity.revoke(pseudonym, sender=hospital_in)
    assert not identity.isAttested(pseudonym, number)


def test_only_the_identity_registry_stores_attestations(
    provider_registry: Any, hospital_in: AccountAPI, attested_patient: AccountAPI,
    now: Callable[[], int],
) -> None:  # fmt: skip
    """A verified institution writing its own attestation straight into the registry (with no
    checks, or for another institution's number) is refused."""
    number = number_of(provider_registry, hospital_in)
    forged = (hospital_in.address, 1, now() + DAY, False)
    with reverts(provider_registry.ProviderNotIdentityRegistry, caller=hospital_in):
        provider_registry.storeAttestation(attested_patient, number, forged, sender=hospital_in)
    assert not provider_registry.isAttested(attested_patient, number)
