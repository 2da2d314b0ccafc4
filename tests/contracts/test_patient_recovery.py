"""PatientRecovery and the controller checks it drives: guardians (k of n, with a delay) move
control of a patient to a new address; the controlling key cancels within the delay; the
controlling key or k guardians freeze a stolen key at once; and once control has moved the old
key is refused everywhere the patient acts (ProviderRegistry, ConsentManager, RecordRegistry),
while the new one is allowed.

Every test starts from the same world (module-scoped, rolled back by Ape after each test):

* ``patient`` registered, with ``guardians`` (three funded accounts with no role) named 2 of 3
  and a delay of one day; ``other_patient`` registered, with no guardians;
* ``hospital`` a verified hospital with a live care relationship with the patient, which wrote
  the patient's record ``lab``; ``clinic`` a verified clinic;
* ``new_key`` a funded account with no role: the address control moves to;
* ``consent_manager`` deployed on the session's registries; the hospital holds an ``all`` grant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from eth_account import Account
from hexbytes import HexBytes

from .support import (
    MAX_UINT40,
    ZERO_ADDRESS,
    Category,
    Kind,
    assert_events,
    key_proof,
    new_key,
    reverts,
)
from .test_consent_manager import (
    ALL_KEY,
    ENVELOPE,
    ZERO32,
    Purpose,
    ScopeKind,
    typed_grant,
    typed_revocation,
)
from .test_provider_care import typed_care

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

HOUR = 3600
DAY = 24 * HOUR
DELAY = DAY


# ============================================================================ fixtures


@pytest.fixture(scope="module")
def recovery(project: Any, provider_registry: Any) -> Any:
    """The PatientRecovery contract the registry deployed."""
    return project.PatientRecovery.at(provider_registry.RECOVERY())


@pytest.fixture(scope="module")
def consent_manager(project: Any, provider_registry: Any, record_registry: Any, admin: Any) -> Any:
    return project.ConsentManager.deploy(provider_registry, record_registry, sender=admin)


@pytest.fixture(scope="module")
def guardians(funded_account: Callable[[], AccountAPI]) -> list[AccountAPI]:
    return [funded_account() for _ in range(3)]


@pytest.fixture(scope="module")
def new_key_account(funded_account: Callable[[], AccountAPI]) -> AccountAPI:
    return funded_account()


@pytest.fixture(scope="module")
def lab(world: Any) -> Any:
    return world


@pytest.fixture(scope="module", autouse=True)
def world(
    provider_registry: Any,
    recovery: Any,
    consent_manager: Any,
    patient: AccountAPI,
    other_patient: AccountAPI,
    hospital: AccountAPI,
    guardians: list[AccountAPI],
    new_key_account: AccountAPI,
    register_patient: Callable[..., Any],
    verified_institution: Callable[..., AccountAPI],
    create_record: Callable[..., Any],
    now: Callable[[], int],
) -> Any:
    register_patient(patient)
    register_patient(other_patient)
    verified_institution(Kind.HOSPITAL)
    verified_institution(Kind.CLINIC)
    record = create_record(hospital, patient, category=Category.LAB)
    recovery.setGuardians(patient, guardians, 2, DELAY, sender=patient)
    consent_manager.grant(
        patient,
        hospital,
        ScopeKind.ALL,
        ZERO32,
        Purpose.TREATMENT,
        now() + 30 * DAY,
        ENVELOPE,
        sender=patient,
    )
    return record


@pytest.fixture
def started(
    recovery: Any, patient: AccountAPI, guardians: list[AccountAPI], new_key_account: AccountAPI
) -> int:
    """Two guardians approved the move to ``new_key_account``; returns when it may complete."""
    recovery.approveRecovery(patient, new_key_account, sender=guardians[0])
    recovery.approveRecovery(patient, new_key_account, sender=guardians[1])
    return int(recovery.recoveryOf(patient, new_key_account).readyAt)


@pytest.fixture
def recovered(
    recovery: Any,
    patient: AccountAPI,
    new_key_account: AccountAPI,
    started: int,
    advance_time: Callable[[int], int],
    guardians: list[AccountAPI],
) -> AccountAPI:
    """The recovery completed: ``new_key_account`` controls the patient."""
    advance_time(DELAY + 1)
    recovery.completeRecovery(patient, new_key_account, sender=guardians[2])
    return new_key_account


# ============================================================================ guardians


def test_first_guardians_apply_at_once_and_are_listed(
    recovery: Any, patient: AccountAPI, guardians: list[AccountAPI]
) -> None:
    listed, rules = recovery.guardiansOf(patient)
    assert list(listed) == [g.address for g in guardians]
    threshold, delay, _round, freeze_votes, change_at = rules
    assert (threshold, delay, freeze_votes, change_at) == (2, DELAY, 0, 0)


@pytest.mark.parametrize(
    ("count", "threshold", "delay"),
    [(3, 0, DAY), (3, 4, DAY), (9, 2, DAY), (3, 2, HOUR - 1), (3, 2, 366 * DAY), (0, 1, DAY)],
    ids=[
        "zero-threshold",
        "threshold-above-count",
        "nine-guardians",
        "delay-too-short",
        "delay-too-long",
        "threshold-without-guardians",
    ],
)
def test_set_guardians_reverts_on_bad_rules(
    recovery: Any,
    other_patient: AccountAPI,
    funded_account: Callable[[], AccountAPI],
    count: int,
    threshold: int,
    delay: int,
) -> None:
    chosen = [funded_account() for _ in range(count)]
    with reverts(
        recovery.RecoveryInvalidGuardians, guardians=count, threshold=threshold, delay=delay
    ):
        recovery.setGuardians(other_patient, chosen, threshold, delay, sender=other_patient)


def test_set_guardians_reverts_on_duplicate_or_self(
    recovery: Any, other_patient: AccountAPI, guardians: list[AccountAPI]
) -> None:
    with reverts(recovery.RecoveryInvalidGuardians, guardians=2, threshold=1, delay=DAY):
        recovery.setGuardians(
            other_patient, [guardians[0], guardians[0]], 1, DAY, sender=other_patient
        )
    with reverts(recovery.RecoveryInvalidGuardians, guardians=2, threshold=1, delay=DAY):
        recovery.setGuardians(
            other_patient, [guardians[0], other_patient], 1, DAY, sender=other_patient
        )


def test_set_guardians_reverts_when_caller_is_not_the_controller(
    recovery: Any, patient: AccountAPI, guardians: list[AccountAPI], stranger: AccountAPI
) -> None:
    with reverts(recovery.RecoveryNotController, caller=stranger, patient=patient):
        recovery.setGuardians(patient, [stranger], 1, DAY, sender=stranger)


def test_thief_changing_guardians_waits_the_delay_and_a_recovery_drops_the_change(
    recovery: Any,
    patient: AccountAPI,
    guardians: list[AccountAPI],
    new_key_account: AccountAPI,
    funded_account: Callable[[], AccountAPI],
    advance_time: Callable[[int], int],
) -> None:
    """The thief holds the patient's key and names its own guardians: they apply only after the
    current delay, meanwhile the real guardians freeze and recover, which drops the change."""
    thief_guardian = funded_account()
    recovery.setGuardians(patient, [thief_guardian], 1, HOUR, sender=patient)
    with reverts(recovery.RecoveryNotGuardian, caller=thief_guardian, patient=patient):
        recovery.approveRecovery(patient, thief_guardian, sender=thief_guardian)
    _, rules = recovery.guardiansOf(patient)
    with reverts(recovery.RecoveryNoGuardianChange, patient=patient, changeAt=rules[4]):
        recovery.applyGuardians(patient, sender=thief_guardian)
    recovery.freeze(patient, sender=guardians[0])
    recovery.freeze(patient, sender=guardians[1])
    advance_time(DELAY + 1)
    with reverts(recovery.RecoveryFrozen, patient=patient):
        recovery.applyGuardians(patient, sender=thief_guardian)
    recovery.approveRecovery(patient, new_key_account, sender=guardians[0])
    recovery.approveRecovery(patient, new_key_account, sender=guardians[1])
    advance_time(DELAY + 1)
    recovery.completeRecovery(patient, new_key_account, sender=guardians[1])
    with reverts(recovery.RecoveryNoGuardianChange, patient=patient, changeAt=0):
        recovery.applyGuardians(patient, sender=thief_guardian)
    listed, _ = recovery.guardiansOf(patient)
    assert list(listed) == [g.address for g in guardians]


def test_guardian_change_applies_after_the_delay_and_voids_earlier_approvals(
    recovery: Any,
    patient: AccountAPI,
    guardians: list[AccountAPI],
    new_key_account: AccountAPI,
    funded_account: Callable[[], AccountAPI],
    advance_time: Callable[[int], int],
) -> None:
    recovery.approveRecovery(patient, new_key_account, sender=guardians[0])
    replacement = funded_account()
    recovery.setGuardians(patient, [guardians[1], replacement], 2, DELAY, sender=patient)
    advance_time(DELAY + 1)
    recovery.applyGuardians(patient, sender=replacement)
    recovery.approveRecovery(patient, new_key_account, sender=guardians[1])
    assert recovery.recoveryOf(patient, new_key_account).readyAt == 0  # the old approval is void
    with reverts(recovery.RecoveryNotGuardian, caller=guardians[0], patient=patient):
        recovery.approveRecovery(patient, new_key_account, sender=guardians[0])


# ============================================================================ recovery


def test_a_single_guardian_cannot_start_a_recovery(
    recovery: Any,
    patient: AccountAPI,
    guardians: list[AccountAPI],
    new_key_account: AccountAPI,
    advance_time: Callable[[int], int],
) -> None:
    recovery.approveRecovery(patient, new_key_account, sender=guardians[0])
    advance_time(DELAY + 1)
    with reverts(
        recovery.RecoveryNotReady, patient=patient, newController=new_key_account, readyAt=0
    ):
        recovery.completeRecovery(patient, new_key_account, sender=guardians[0])
    with reverts(recovery.RecoveryAlreadyApproved, patient=patient, guardian=guardians[0]):
        recovery.approveRecovery(patient, new_key_account, sender=guardians[0])


def test_a_non_guardian_cannot_approve(
    recovery: Any, patient: AccountAPI, stranger: AccountAPI, new_key_account: AccountAPI
) -> None:
    with reverts(recovery.RecoveryNotGuardian, caller=stranger, patient=patient):
        recovery.approveRecovery(patient, new_key_account, sender=stranger)


@pytest.mark.parametrize("target", ["hospital", "other_patient", "zero"])
def test_recovery_reverts_to_an_account_that_has_a_role(
    request: Any,
    recovery: Any,
    provider_registry: Any,
    patient: AccountAPI,
    guardians: list[AccountAPI],
    target: str,
) -> None:
    account = ZERO_ADDRESS if target == "zero" else request.getfixturevalue(target).address
    with reverts(recovery.ProviderInvalidController, account=account):
        recovery.approveRecovery(patient, account, sender=guardians[0])


def test_completing_before_the_delay_reverts(
    recovery: Any,
    patient: AccountAPI,
    guardians: list[AccountAPI],
    new_key_account: AccountAPI,
    started: int,
) -> None:
    with reverts(
        recovery.RecoveryNotReady, patient=patient, newController=new_key_account, readyAt=started
    ):
        recovery.completeRecovery(patient, new_key_account, sender=guardians[0])


def test_completing_moves_control_and_emits_patient_recovered(
    recovery: Any,
    provider_registry: Any,
    patient: AccountAPI,
    guardians: list[AccountAPI],
    new_key_account: AccountAPI,
    started: int,
    advance_time: Callable[[int], int],
) -> None:
    advance_time(DELAY + 1)
    receipt = recovery.completeRecovery(patient, new_key_account, sender=guardians[2])
    assert_events(
        receipt,
        provider_registry.PatientRecovered(
            patient=patient, previousController=patient, newController=new_key_account
        ),
    )
    assert provider_registry.controllerOf(patient) == new_key_account.address
    assert provider_registry.patientOf(new_key_account) == patient.address
    assert provider_registry.patientOf(patient) == ZERO_ADDRESS
    assert provider_registry.encryptionKey(patient) == b""


def test_a_completed_recovery_cannot_be_replayed(
    recovery: Any, patient: AccountAPI, guardians: list[AccountAPI], recovered: AccountAPI
) -> None:
    readyAt = recovery.recoveryOf(patient, recovered).readyAt
    with reverts(
        recovery.RecoveryNotReady, patient=patient, newController=recovered, readyAt=readyAt
    ):
        recovery.completeRecovery(patient, recovered, sender=guardians[0])


def test_old_key_cancels_within_the_delay(
    recovery: Any,
    provider_registry: Any,
    patient: AccountAPI,
    guardians: list[AccountAPI],
    new_key_account: AccountAPI,
    started: int,
    advance_time: Callable[[int], int],
) -> None:
    receipt = recovery.cancelRecovery(patient, sender=patient)
    assert_events(receipt, recovery.RecoveryCancelled(patient=patient, by=patient))
    advance_time(DELAY + 1)
    with reverts(
        recovery.RecoveryNotReady, patient=patient, newController=new_key_account, readyAt=started
    ):
        recovery.completeRecovery(patient, new_key_account, sender=guardians[0])
    assert provider_registry.controllerOf(patient) == patient.address


def test_guardians_and_strangers_cannot_cancel(
    recovery: Any, patient: AccountAPI, guardians: list[AccountAPI], started: int
) -> None:
    with reverts(recovery.RecoveryNotController, caller=guardians[0], patient=patient):
        recovery.cancelRecovery(patient, sender=guardians[0])


def test_old_key_cannot_cancel_after_completion(
    recovery: Any, patient: AccountAPI, recovered: AccountAPI
) -> None:
    with reverts(recovery.RecoveryNotController, caller=patient, patient=patient):
        recovery.cancelRecovery(patient, sender=patient)


# ============================================================================ freeze


def test_controller_freezes_at_once_and_nobody_acts_for_the_patient(
    recovery: Any,
    provider_registry: Any,
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    lab: Any,
) -> None:
    receipt = recovery.freeze(patient, sender=patient)
    assert_events(receipt, provider_registry.PatientFrozen(patient=patient, by=patient))
    assert provider_registry.isFrozen(patient)
    assert provider_registry.controllerOf(patient) == ZERO_ADDRESS
    assert not provider_registry.actsFor(patient, patient)
    assert not consent_manager.hasAccess(patient, lab.id)
    assert consent_manager.hasAccess(hospital, lab.id)  # grants stand
    with reverts(consent_manager.ConsentNotPatientOrDelegate, caller=patient, patient=patient):
        consent_manager.revoke(patient, hospital, ScopeKind.ALL, ZERO32, sender=patient)
    with reverts(recovery.RecoveryNotController, caller=patient, patient=patient):
        recovery.cancelRecovery(patient, sender=patient)


def test_guardians_freeze_at_the_threshold_and_the_thief_cannot_cancel(
    recovery: Any,
    provider_registry: Any,
    patient: AccountAPI,
    guardians: list[AccountAPI],
    new_key_account: AccountAPI,
    advance_time: Callable[[int], int],
) -> None:
    recovery.freeze(patient, sender=guardians[0])
    assert not provider_registry.isFrozen(patient)  # one vote of two
    recovery.cancelRecovery(patient, sender=patient)  # the thief's cancel keeps the freeze votes
    receipt = recovery.freeze(patient, sender=guardians[2])
    assert_events(
        receipt,
        recovery.FreezeApproved(patient=patient, guardian=guardians[2], approvals=2),
        provider_registry.PatientFrozen(patient=patient, by=guardians[2]),
    )
    recovery.approveRecovery(patient, new_key_account, sender=guardians[0])
    recovery.approveRecovery(patient, new_key_account, sender=guardians[2])
    with reverts(recovery.RecoveryNotController, caller=patient, patient=patient):
        recovery.cancelRecovery(patient, sender=patient)
    advance_time(DELAY + 1)
    recovery.completeRecovery(patient, new_key_account, sender=guardians[0])
    assert not provider_registry.isFrozen(patient)
    assert provider_registry.controllerOf(patient) == new_key_account.address


def test_freeze_by_a_stranger_reverts(
    recovery: Any, patient: AccountAPI, stranger: AccountAPI
) -> None:
    with reverts(recovery.RecoveryNotGuardian, caller=stranger, patient=patient):
        recovery.freeze(patient, sender=stranger)


@pytest.mark.parametrize("method", ["moveControl", "freezeControl"])
def test_only_the_recovery_contract_moves_or_freezes_control(
    provider_registry: Any, patient: AccountAPI, stranger: AccountAPI, method: str
) -> None:
    with reverts(provider_registry.ProviderNotRecovery, caller=stranger):
        getattr(provider_registry, method)(patient, stranger, sender=stranger)


# ============================================================ old key refused, new one allowed


def _grant_request(consent_manager: Any, patient: Any, grantee: Any, now: int) -> dict[str, Any]:
    return {
        "patient": patient.address,
        "grantee": grantee.address,
        "scopeKind": int(ScopeKind.ALL),
        "scope": ZERO32,
        "purpose": int(Purpose.TREATMENT),
        "expiresAt": now + DAY,
        "envelopeDigest": ENVELOPE,
        "nonce": consent_manager.nonces(patient),
        "deadline": now + HOUR,
    }


def _revocation_request(
    consent_manager: Any, patient: Any, grantee: Any, now: int
) -> dict[str, Any]:
    return {
        "patient": patient.address,
        "grantee": grantee.address,
        "scopeKind": int(ScopeKind.ALL),
        "scope": ZERO32,
        "nonce": consent_manager.nonces(patient),
        "deadline": now + HOUR,
    }


def _care_request(
    provider_registry: Any, patient: Any, institution: Any, now: int
) -> dict[str, Any]:
    return {
        "patient": patient.address,
        "institution": institution.address,
        "until": MAX_UINT40,
        "nonce": provider_registry.nonces(patient),
        "deadline": now + HOUR,
    }


def _signed(signable: Any, account: Any) -> HexBytes:
    return HexBytes(Account.sign_message(signable, account.private_key).signature)


ACTIONS = [
    "grant",
    "revoke",
    "signed-grant",
    "signed-revocation",
    "erase",
    "cancel-consent-signatures",
    "authorize-care",
    "signed-care",
    "revoke-care",
    "cancel-care-signatures",
    "set-delegate",
    "publish-key",
    "anchor-own-record",
    "anchor-own-batch",
]


def _act(action: str, who: Any, w: dict[str, Any]) -> Any:
    """Performs ``action`` as the patient, sent (or signed) by ``who``."""
    registry, consent, records, chain = w["registry"], w["consent"], w["records"], w["chain"]
    patient, hospital, clinic, now = w["patient"], w["hospital"], w["clinic"], w["now"]()
    if action == "grant":
        return consent.grant(
            patient,
            clinic,
            ScopeKind.ALL,
            ZERO32,
            Purpose.TREATMENT,
            now + DAY,
            ENVELOPE,
            sender=who,
        )
    if action == "revoke":
        return consent.revoke(patient, hospital, ScopeKind.ALL, ZERO32, sender=who)
    if action == "signed-grant":
        request = _grant_request(consent, patient, clinic, now)
        signature = _signed(typed_grant(chain.chain_id, consent.address, request), who)
        return consent.grantWithSignature(request, signature, sender=hospital)
    if action == "signed-revocation":
        request = _revocation_request(consent, patient, hospital, now)
        signature = _signed(typed_revocation(chain.chain_id, consent.address, request), who)
        return consent.revokeWithSignature(request, signature, sender=hospital)
    if action == "erase":
        return consent.eraseRecord(w["lab"].id, sender=who)
    if action == "cancel-consent-signatures":
        return consent.cancelSignatures(patient, sender=who)
    if action == "authorize-care":
        return registry.authorizeCare(patient, clinic, MAX_UINT40, sender=who)
    if action == "signed-care":
        request = _care_request(registry, patient, clinic, now)
        signature = _signed(typed_care(chain.chain_id, registry.address, request), who)
        return registry.authorizeCareWithSignature(request, signature, sender=clinic)
    if action == "revoke-care":
        return registry.revokeCare(patient, hospital, sender=who)
    if action == "cancel-care-signatures":
        return registry.cancelSignatures(patient, sender=who)
    if action == "set-delegate":
        return registry.setDelegate(clinic, True, sender=who)
    if action == "publish-key":
        key = new_key()
        return registry.publishEncryptionKey(key, key_proof(registry, patient, key), sender=who)
    if action == "anchor-own-record":
        return records.anchor(
            patient,
            HexBytes(b"\x01" * 32),
            HexBytes(b"\x02" * 32),
            Category.LAB,
            ZERO32,
            sender=who,
        )
    if action == "anchor-own-batch":
        return records.anchorBatch(HexBytes(b"\x03" * 32), HexBytes(b"\x04" * 32), 1, sender=who)
    raise AssertionError(action)


def _refusal(action: str, who: Any, w: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    registry, consent, records, patient = w["registry"], w["consent"], w["records"], w["patient"]
    signer_error = {"signer": who.address, "patient": patient.address}
    return {
        "grant": (consent.ConsentNotPatientOrDelegate, {"caller": who, "patient": patient}),
        "revoke": (consent.ConsentNotPatientOrDelegate, {"caller": who, "patient": patient}),
        "signed-grant": (consent.ConsentInvalidSignature, signer_error),
        "signed-revocation": (consent.ConsentInvalidSignature, signer_error),
        "erase": (consent.ConsentNotPatientOrDelegate, {"caller": who, "patient": patient}),
        "cancel-consent-signatures": (
            consent.ConsentNotPatientOrDelegate,
            {"caller": who, "patient": patient},
        ),
        "authorize-care": (
            registry.ProviderNotPatientOrDelegate,
            {"caller": who, "patient": patient},
        ),
        "signed-care": (registry.ProviderInvalidSignature, signer_error),
        "revoke-care": (
            registry.ProviderNotCareParty,
            {"caller": who, "patient": patient, "institution": w["hospital"]},
        ),
        "cancel-care-signatures": (
            registry.ProviderNotPatientOrDelegate,
            {"caller": who, "patient": patient},
        ),
        "set-delegate": (registry.ProviderNotPatient, {"account": who}),
        "publish-key": (registry.ProviderNotController, {"caller": who, "patient": who}),
        "anchor-own-record": (
            records.RecordIssuerNotAuthorized,
            {"issuer": who, "patient": patient},
        ),
        "anchor-own-batch": (records.RecordBatchIssuerNotAuthorized, {"issuer": who}),
    }[action]


@pytest.fixture
def acting(
    chain: Any,
    provider_registry: Any,
    consent_manager: Any,
    record_registry: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    lab: Any,
    now: Callable[[], int],
) -> dict[str, Any]:
    return {
        "chain": chain,
        "registry": provider_registry,
        "consent": consent_manager,
        "records": record_registry,
        "patient": patient,
        "hospital": hospital,
        "clinic": clinic,
        "lab": lab,
        "now": now,
    }


@pytest.mark.parametrize("action", ACTIONS)
def test_old_key_is_refused_after_recovery(
    action: str, acting: dict[str, Any], recovered: AccountAPI
) -> None:
    old = acting["patient"]
    error, inputs = _refusal(action, old, acting)
    with reverts(error, **inputs):
        _act(action, old, acting)


@pytest.mark.parametrize("action", ACTIONS)
def test_new_key_acts_as_the_patient_after_recovery(
    action: str, acting: dict[str, Any], recovered: AccountAPI
) -> None:
    assert _act(action, recovered, acting).status == 1


@pytest.mark.parametrize("action", ACTIONS)
def test_frozen_key_is_refused(action: str, acting: dict[str, Any], recovery: Any) -> None:
    old = acting["patient"]
    recovery.freeze(old, sender=old)
    error, inputs = _refusal(action, old, acting)
    if action == "publish-key":
        inputs = {"caller": old, "patient": old}
    with reverts(error, **inputs):
        _act(action, old, acting)


def test_reads_follow_the_controller(
    consent_manager: Any, patient: AccountAPI, hospital: AccountAPI, lab: Any, recovered: AccountAPI
) -> None:
    assert consent_manager.hasAccess(recovered, lab.id)
    assert not consent_manager.hasAccess(patient, lab.id)
    assert consent_manager.hasAccess(hospital, lab.id)  # the grant carried over
    assert consent_manager.getGrant(patient, hospital, ALL_KEY).grantedAt != 0


def test_a_delegate_named_by_the_old_key_no_longer_counts(
    recovery: Any,
    provider_registry: Any,
    consent_manager: Any,
    patient: AccountAPI,
    hospital: AccountAPI,
    clinic: AccountAPI,
    guardians: list[AccountAPI],
    new_key_account: AccountAPI,
    started: int,
    advance_time: Callable[[int], int],
    now: Callable[[], int],
) -> None:
    provider_registry.setDelegate(clinic, True, sender=patient)  # the thief names an accomplice
    advance_time(DELAY + 1)
    recovery.completeRecovery(patient, new_key_account, sender=guardians[0])
    assert not provider_registry.isDelegate(patient, clinic)
    with reverts(consent_manager.ConsentNotPatientOrDelegate, caller=clinic, patient=patient):
        consent_manager.grant(
            patient,
            clinic,
            ScopeKind.ALL,
            ZERO32,
            Purpose.TREATMENT,
            now() + DAY,
            ENVELOPE,
            sender=clinic,
        )


def test_the_new_controller_cannot_take_another_role(
    provider_registry: Any, recovered: AccountAPI
) -> None:
    key = new_key()
    with reverts(provider_registry.ProviderAlreadyRegistered, account=recovered):
        provider_registry.registerPatient(
            key, key_proof(provider_registry, recovered, key), sender=recovered
        )


def test_a_second_recovery_replaces_the_first_controller(
    recovery: Any,
    provider_registry: Any,
    patient: AccountAPI,
    guardians: list[AccountAPI],
    recovered: AccountAPI,
    funded_account: Callable[[], AccountAPI],
    advance_time: Callable[[int], int],
) -> None:
    third = funded_account()
    recovery.approveRecovery(patient, third, sender=guardians[1])
    recovery.approveRecovery(patient, third, sender=guardians[2])
    advance_time(DELAY + 1)
    receipt = recovery.completeRecovery(patient, third, sender=guardians[1])
    assert_events(
        receipt,
        provider_registry.PatientRecovered(
            patient=patient, previousController=recovered, newController=third
        ),
    )
    assert provider_registry.patientOf(recovered) == ZERO_ADDRESS
    assert not provider_registry.actsFor(recovered, patient)
