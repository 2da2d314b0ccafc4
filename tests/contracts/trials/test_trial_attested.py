"""A study that requires attested participants: each participant enrols only if the site that
enrols them attested their pseudonymous study account (``IdentityRegistry.attestPseudonym``).
The study account stays unrelated to the person's patient address on chain; the attestation
carries only a commitment to that link.

Exploits first: an unattested participant, one attested by another institution, one whose
attestation was revoked, and the rule switched on after people enrolled under the old one.

World: the trials module world (see ``conftest.py``): the hospital and the clinic are verified
care institutions and the study's sites; the participants are fresh keys with no role.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from eth_account import Account
from eth_utils import keccak

from ..support import assert_events, digest, reverts
from .helpers import HOUR, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

LINK = digest("salted link: patient address + link proof")


@pytest.fixture(scope="module")
def not_attested(project: Any) -> Any:
    """The refusal, raised by the ProviderRegistry (which keeps the attestations) through the
    TrialRegistry: the error class from the IdentityRegistry's type, which declares it."""
    return project.IdentityRegistry.IdentityNotAttestedBy


@pytest.fixture
def participant(request: pytest.FixtureRequest) -> Any:
    """A fresh pseudonymous study key (no ETH, no role), one per test."""
    return Account.from_key(keccak(text=f"attested-participant-{request.node.name}"))


@pytest.fixture(scope="module")
def identity(project: Any, provider_registry: Any) -> Any:
    return project.IdentityRegistry.at(provider_registry.IDENTITY())


@pytest.fixture
def study(register_study: Callable[..., Any], trial_registry: Any, sponsor: AccountAPI) -> Any:
    """A study of the sponsor's at the hospital and the clinic that requires attestation."""
    study = register_study()
    receipt = trial_registry.requireAttestedParticipants(study.id, sender=sponsor)
    assert_events(receipt, trial_registry.ParticipantAttestationRequired(studyId=study.id))
    assert trial_registry.getStudy(study.id).attestedParticipants
    return study


@pytest.fixture
def attest(identity: Any, now: Callable[[], int]) -> Callable[..., Any]:
    """``attest(participant, site)``: the site attests the study account for a day."""

    def attest_pseudonym(participant: Any, site: AccountAPI) -> Any:
        return identity.attestPseudonym(participant.address, now() + 24 * HOUR, LINK, sender=site)

    return attest_pseudonym


def number_of(provider_registry: Any, institution: Any) -> int:
    return int(provider_registry.participant(institution).number)


# ---------------------------------------------------------------------------- exploits


def test_an_unattested_participant_is_refused(
    study: Any, participant: Any, not_attested: Any, enrol: Callable[..., Any],
    hospital: AccountAPI, provider_registry: Any,
) -> None:  # fmt: skip
    number = number_of(provider_registry, hospital)
    with reverts(not_attested, patient=participant.address, number=number):
        enrol(study.id, participant)


def test_a_participant_attested_by_another_institution_is_refused(
    study: Any, participant: Any, not_attested: Any, enrol: Callable[..., Any], identity: Any,
    attest: Callable[..., Any], hospital: AccountAPI, clinic: AccountAPI, provider_registry: Any,
) -> None:  # fmt: skip
    attest(participant, clinic)  # the clinic knows them; the hospital enrols them
    number = number_of(provider_registry, hospital)
    with reverts(not_attested, patient=participant.address, number=number):
        enrol(study.id, participant)
    enrol(study.id, participant, site=clinic)  # the clinic, which attested them, may


def test_a_revoked_attestation_is_refused(
    study: Any, participant: Any, not_attested: Any, enrol: Callable[..., Any], identity: Any,
    attest: Callable[..., Any], hospital: AccountAPI, provider_registry: Any,
) -> None:  # fmt: skip
    attest(participant, hospital)
    identity.revoke(participant.address, sender=hospital)
    with reverts(
        not_attested, patient=participant.address, number=number_of(provider_registry, hospital)
    ):
        enrol(study.id, participant)


def test_the_rule_cannot_be_switched_on_after_the_first_enrolment(
    register_study: Callable[..., Any], trial_registry: Any, participant: Any,
    enrol: Callable[..., Any], sponsor: AccountAPI,
) -> None:  # fmt: skip
    study = register_study()
    enrol(study.id, participant)
    with reverts(trial_registry.TrialAlreadyEnrolling, studyId=study.id):
        trial_registry.requireAttestedParticipants(study.id, sender=sponsor)
    assert not trial_registry.getStudy(study.id).attestedParticipants


def test_a_suspended_site_cannot_attest_and_its_attestations_no_longer_admit(
    study: Any, participant: Any, not_attested: Any, enrol: Callable[..., Any], identity: Any,
    attest: Callable[..., Any], hospital: AccountAPI, suspend: Callable[..., Any],
    approve: Callable[..., Any], provider_registry: Any,
) -> None:  # fmt: skip
    attest(participant, hospital)
    suspend(hospital)
    approve(hospital)  # reinstated: a new round, the attestation it made before stays void
    with reverts(
        not_attested, patient=participant.address, number=number_of(provider_registry, hospital)
    ):
        enrol(study.id, participant)
    attest(participant, hospital)  # attested anew in the new round
    enrol(study.id, participant)


# ---------------------------------------------------------------------------- lifecycle


def test_the_site_attests_the_study_account_and_the_participant_enrols_then_re_consents(
    study: Any, participant: Any, enrol: Callable[..., Any], identity: Any,
    hospital: AccountAPI, trial_registry: Any, sponsor: AccountAPI, provider_registry: Any,
    now: Callable[[], int],
) -> None:  # fmt: skip
    expires = now() + 30 * 24 * HOUR
    receipt = identity.attestPseudonym(participant.address, expires, LINK, sender=hospital)
    assert_events(
        receipt,
        identity.IdentityAttested(
            patient=participant.address, institution=hospital, attester=hospital,
            number=number_of(provider_registry, hospital), expiresAt=expires, commitment=LINK,
        ),
    )  # fmt: skip
    enrol(study.id, participant)
    assert trial_registry.getStudy(study.id).participants == 1
    # A re-consent is not checked again: the attestation may lapse once the person enrolled.
    identity.revoke(participant.address, sender=hospital)
    trial_registry.amendProtocol(
        study.id, Protocol.of("attested-v2").args, True, "dose", sender=sponsor
    )
    enrol(study.id, participant)
    assert trial_registry.getParticipation(study.id, participant.address).consentedVersion == 2


def test_without_the_rule_nobody_needs_an_attestation(
    register_study: Callable[..., Any], trial_registry: Any, participant: Any,
    enrol: Callable[..., Any],
) -> None:  # fmt: skip
    study = register_study()
    assert not trial_registry.getStudy(study.id).attestedParticipants
    enrol(study.id, participant)
    assert trial_registry.getStudy(study.id).participants == 1
