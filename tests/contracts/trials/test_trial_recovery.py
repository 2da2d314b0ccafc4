"""TrialRegistry after a participant's recovery: a participant whose study account is also a
registered patient acts through its controller (``ProviderRegistry.controllerOf``), so once
guardians moved control to a new key, the old key's signed consent and withdrawal are refused
and the new key's are accepted; the old key no longer reads the participant's data.

World: the trials module world (see ``conftest.py``), plus the participant's key registered as
a patient with two guardians (2 of 2, one hour), recovered to ``new_key`` by each test that asks
for ``recovered``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ..support import reverts

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

HOUR = 3600


@pytest.fixture
def recovered(
    project: Any,
    provider_registry: Any,
    participant: Any,
    wallet: Callable[[Any], AccountAPI],
    register_patient: Callable[..., Any],
    funded_account: Callable[[], AccountAPI],
    advance_time: Callable[[int], int],
) -> AccountAPI:
    """The participant's key registered as a patient, then recovered by two guardians to a new
    key (returned)."""
    own = wallet(participant)
    register_patient(own)
    recovery = project.PatientRecovery.at(provider_registry.RECOVERY())
    guardians = [funded_account(), funded_account()]
    recovery.setGuardians(own, guardians, 2, HOUR, sender=own)
    new_key = funded_account()
    for guardian in guardians:
        recovery.approveRecovery(own, new_key, sender=guardian)
    advance_time(HOUR + 1)
    recovery.completeRecovery(own, new_key, sender=guardians[0])
    return new_key


def test_old_key_consent_is_refused_and_the_new_key_consents(
    trial_registry: Any,
    register_study: Callable[..., Any],
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[[Any, dict[str, Any]], Any],
    participant: Any,
    hospital: AccountAPI,
    recovered: AccountAPI,
) -> None:
    study = register_study()
    request = consent_request(study.id, participant)
    with reverts(
        trial_registry.TrialInvalidSignature,
        signer=participant.address,
        participant=participant.address,
    ):
        trial_registry.consent(request, sign_consent(participant, request), sender=hospital)
    receipt = trial_registry.consent(request, sign_consent(recovered, request), sender=hospital)
    assert receipt.status == 1
    assert trial_registry.canRead(study.id, participant.address, recovered)
    assert not trial_registry.canRead(study.id, participant.address, participant.address)


def test_old_key_cannot_withdraw_and_the_new_key_can(
    trial_registry: Any,
    register_study: Callable[..., Any],
    consent_request: Callable[..., dict[str, Any]],
    sign_consent: Callable[[Any, dict[str, Any]], Any],
    participant: Any,
    wallet: Callable[[Any], AccountAPI],
    hospital: AccountAPI,
    recovered: AccountAPI,
) -> None:
    study = register_study()
    request = consent_request(study.id, participant)
    trial_registry.consent(request, sign_consent(recovered, request), sender=hospital)
    old = wallet(participant)
    with reverts(
        trial_registry.TrialNotParticipantOrDelegate, caller=old, participant=participant.address
    ):
        trial_registry.withdraw(study.id, participant.address, sender=old)
    assert trial_registry.withdraw(study.id, participant.address, sender=recovered).status == 1
