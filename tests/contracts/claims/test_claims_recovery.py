"""ClaimsManager after a patient's recovery: the patient acts through its controller
(``ProviderRegistry.controllerOf``), so once guardians moved control to a new key the old key
can neither submit a claim nor act on one (dispute), while the new key can; a claim the new key
submits is stored under the patient's id, as before. Payments to the patient follow the
controller too: an automatic payment goes to the controller (credited to the patient's id while
frozen), a controller withdraws the patient's credit, and a replaced or frozen key withdraws
nothing of it (a stolen key, recovered by guardians, must not collect the patient's payouts).

World: the claims module world (``conftest.py``); ``recovered`` names two guardians for the
patient (2 of 2, one hour) and recovers it to a new key. Evidence is anchored and consented
before the recovery (the payment consent is the patient's, granted with its key then).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from ..support import reverts
from .model import USD

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

HOUR = 3600
ZERO = "0x" + "0" * 40


@pytest.fixture
def policy(issue_policy: Callable[..., Any], fund: Callable[..., Any]) -> Any:
    issued = issue_policy()
    fund(issued.id, 10_000 * USD)
    return issued


@pytest.fixture
def name_guardians(
    project: Any,
    provider_registry: Any,
    patient: AccountAPI,
    funded_account: Callable[[], AccountAPI],
) -> Callable[[], list[AccountAPI]]:
    """``name_guardians()``: the patient names two guardians (2 of 2, one hour); returned."""

    def run() -> list[AccountAPI]:
        recovery = project.PatientRecovery.at(provider_registry.RECOVERY())
        guardians = [funded_account(), funded_account()]
        recovery.setGuardians(patient, guardians, 2, HOUR, sender=patient)
        return guardians

    return run


@pytest.fixture
def recover(
    project: Any,
    provider_registry: Any,
    patient: AccountAPI,
    funded_account: Callable[[], AccountAPI],
    advance_time: Callable[[int], int],
    name_guardians: Callable[[], list[AccountAPI]],
) -> Callable[..., AccountAPI]:
    """``recover(guardians=None)``: two guardians (named now unless given) move control of the
    patient to a new key (returned)."""

    def run(guardians: list[AccountAPI] | None = None) -> AccountAPI:
        recovery = project.PatientRecovery.at(provider_registry.RECOVERY())
        guardians = guardians or name_guardians()
        new_key = funded_account()
        for guardian in guardians:
            recovery.approveRecovery(patient, new_key, sender=guardian)
        advance_time(HOUR + 1)
        recovery.completeRecovery(patient, new_key, sender=guardians[0])
        return new_key

    return run


def test_old_key_cannot_submit_and_the_new_key_submits_for_the_patient(
    claims_manager: Any,
    policy: Any,
    patient: AccountAPI,
    claim_evidence: Callable[..., Any],
    submit_claim: Callable[..., Any],
    claim_of: Callable[[int], dict[str, Any]],
    recover: Callable[[], AccountAPI],
) -> None:
    first, second = claim_evidence(1), claim_evidence(1)
    new_key = recover()
    with reverts(claims_manager.ClaimNotProviderOrPatient, caller=patient, policyId=policy.id):
        submit_claim(policy.id, 300 * USD, sender=patient, records=first, pay_patient=True)
    claim = submit_claim(policy.id, 300 * USD, sender=new_key, records=second, pay_patient=True)
    assert claim_of(claim.id)["submitter"] == patient.address


def test_old_key_cannot_dispute_the_patients_claim_and_the_new_key_can(
    claims_manager: Any,
    policy: Any,
    patient: AccountAPI,
    insurer: AccountAPI,
    submit_claim: Callable[..., Any],
    recover: Callable[[], AccountAPI],
) -> None:
    claim = submit_claim(policy.id, 300 * USD, sender=patient, pay_patient=True)
    claims_manager.denyClaim(claim.id, 1, sender=insurer)
    new_key = recover()
    with reverts(claims_manager.ClaimNotSubmitterOrPatient, caller=patient, claimId=claim.id):
        claims_manager.disputeClaim(claim.id, 1, sender=patient)
    assert claims_manager.disputeClaim(claim.id, 1, sender=new_key).status == 1


def test_an_automatic_payment_to_the_patient_goes_to_the_new_key_not_the_stolen_one(
    claims_manager: Any,
    token: Any,
    policy: Any,
    patient: AccountAPI,
    claim_evidence: Callable[..., Any],
    submit_claim: Callable[..., Any],
    recover: Callable[[], AccountAPI],
) -> None:
    evidence = claim_evidence(1)
    new_key = recover()
    old_before, new_before = token.balanceOf(patient), token.balanceOf(new_key)
    # The clinic's claim is settled at once.
    claim = submit_claim(policy.id, 300 * USD, records=evidence, pay_patient=True)
    (approved,) = claims_manager.ClaimApproved.from_receipt(claim.receipt)
    assert approved.automatic and approved.amount > 0
    assert approved.payee == new_key.address
    assert token.balanceOf(new_key) - new_before == approved.amount
    assert token.balanceOf(patient) == old_before
    assert claims_manager.creditOf(patient) == 0


def test_a_credited_payment_is_withdrawn_by_the_new_key_and_never_by_the_old_one(
    claims_manager: Any,
    token: Any,
    policy: Any,
    patient: AccountAPI,
    insurer: AccountAPI,
    submit_claim: Callable[..., Any],
    recover: Callable[[], AccountAPI],
) -> None:
    claim = submit_claim(policy.id, 300 * USD, sender=patient, pay_patient=True)  # reviewed
    claims_manager.approveClaim(claim.id, 150 * USD, sender=insurer)
    assert claims_manager.creditOf(patient) == 150 * USD
    new_key = recover()
    with reverts(claims_manager.ClaimNothingToWithdraw, account=patient):
        claims_manager.withdrawPayment(sender=patient)
    before = token.balanceOf(new_key)
    tx = claims_manager.withdrawPayment(sender=new_key)
    (event,) = claims_manager.PaymentWithdrawn.from_receipt(tx)
    assert (event.payee, event.amount, event.holder) == (
        new_key.address,
        150 * USD,
        patient.address,
    )
    assert token.balanceOf(new_key) - before == 150 * USD
    assert claims_manager.creditOf(patient) == 0


def test_while_frozen_a_payment_is_credited_to_the_patient_and_only_the_next_key_withdraws_it(
    project: Any,
    provider_registry: Any,
    claims_manager: Any,
    token: Any,
    policy: Any,
    patient: AccountAPI,
    claim_evidence: Callable[..., Any],
    submit_claim: Callable[..., Any],
    name_guardians: Callable[[], list[AccountAPI]],
    recover: Callable[..., AccountAPI],
) -> None:
    evidence = claim_evidence(1)
    guardians = name_guardians()
    recovery = project.PatientRecovery.at(provider_registry.RECOVERY())
    recovery.freeze(patient, sender=patient)  # the key was stolen: frozen first
    assert provider_registry.controllerOf(patient) == ZERO
    before = token.balanceOf(patient)
    claim = submit_claim(policy.id, 300 * USD, records=evidence, pay_patient=True)
    (approved,) = claims_manager.ClaimApproved.from_receipt(claim.receipt)
    assert approved.payee == patient.address
    assert claims_manager.creditOf(patient) == approved.amount > 0
    assert token.balanceOf(patient) == before
    with reverts(claims_manager.ClaimNothingToWithdraw, account=patient):
        claims_manager.withdrawPayment(sender=patient)
    new_key = recover(guardians)
    with reverts(claims_manager.ClaimNothingToWithdraw, account=patient):
        claims_manager.withdrawPayment(sender=patient)
    before = token.balanceOf(new_key)
    claims_manager.withdrawPayment(sender=new_key)
    assert token.balanceOf(new_key) - before == approved.amount
    assert claims_manager.creditOf(patient) == 0


def test_a_patient_never_recovered_still_withdraws_its_own_credit_once(
    claims_manager: Any,
    token: Any,
    policy: Any,
    patient: AccountAPI,
    insurer: AccountAPI,
    submit_claim: Callable[..., Any],
) -> None:
    claim = submit_claim(policy.id, 300 * USD, sender=patient, pay_patient=True)
    claims_manager.approveClaim(claim.id, 150 * USD, sender=insurer)
    before = token.balanceOf(patient)
    tx = claims_manager.withdrawPayment(sender=patient)
    (event,) = claims_manager.PaymentWithdrawn.from_receipt(tx)
    assert (event.payee, event.amount, event.holder) == (
        patient.address,
        150 * USD,
        patient.address,
    )
    assert token.balanceOf(patient) - before == 150 * USD
    with reverts(claims_manager.ClaimNothingToWithdraw, account=patient):
        claims_manager.withdrawPayment(sender=patient)
