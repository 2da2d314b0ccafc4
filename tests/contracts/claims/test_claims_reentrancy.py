"""ClaimsManager against a token that calls back into it in the middle of a transfer.

``MockReentrantToken`` can be armed to call a target with given calldata from inside its next
transfer (as a malicious token, or a token with receiver hooks and a malicious receiver,
would). To make the worst case real, the token account itself is the insured patient here:
it registers, lets the clinic care for it, consents to the insurer (a category grant for
FINANCIAL records) and submits its own claims (through ``execute``), so that it holds a credit
of its own and a re-entrant ``withdrawPayment`` or ``submitClaim`` would be made by a payee
that is owed money or by the insured patient.

Three transactions transfer tokens out, all under the guard: ``submitClaim`` (an automatic
settlement pays the payee at once), ``withdrawPayment`` and ``reclaimPool``; and
``fundPolicy`` transfers tokens in. Every re-entry must revert with OpenZeppelin's
``ReentrancyGuardReentrantCall()``, roll the whole transaction back, and leave the money
where it was; the honest transaction afterwards pays exactly once.

A revert raised in the manager but reaching the test through ``token.execute`` is asserted
with the error of the ``project.ClaimsManager`` container: Ape names the transaction's target
(the token) as the source, and the container's error names no address to compare.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import pytest
from hexbytes import HexBytes

from ..support import (
    MAX_UINT40,
    NO_RECORD,
    ZERO_ADDRESS,
    Category,
    assert_events,
    digest,
    key_proof,
    new_key,
    reverts,
)
from .conftest import ENVELOPE, PAYMENT, TERMS_DIGEST
from .model import COVERED, DAY, USD, ClaimState, patient_claim_id

if TYPE_CHECKING:
    from collections.abc import Callable

    from ape.api import AccountAPI

CATEGORY_SCOPE = 1  # IConsentManager.ScopeKind.Category
TERM = 30 * DAY
_SERVICES = itertools.count()


@pytest.fixture(scope="module")
def reentrant_token(project: Any, admin: AccountAPI) -> Any:
    return project.MockReentrantToken.deploy(sender=admin)


@pytest.fixture(scope="module")
def manager(deploy_claims_manager: Callable[..., Any], reentrant_token: Any) -> Any:
    """A ClaimsManager paying in the reentrant token."""
    return deploy_claims_manager(reentrant_token)


@pytest.fixture(scope="module")
def token_patient(
    reentrant_token: Any,
    provider_registry: Any,
    consent_manager: Any,
    clinic: AccountAPI,
    insurer: AccountAPI,
    world: None,
) -> Any:
    """Makes the token account a registered patient in the clinic's care, that consents to
    the insurer reading its FINANCIAL records for payment; returns the token."""
    token = reentrant_token
    key = new_key()
    register = provider_registry.registerPatient.encode_input(
        key, key_proof(provider_registry, token, key)
    )
    token.execute(provider_registry, register, sender=insurer)
    care = provider_registry.authorizeCare.encode_input(token, clinic, MAX_UINT40)
    token.execute(provider_registry, care, sender=insurer)
    grant = consent_manager.grant.encode_input(
        token,
        insurer,
        CATEGORY_SCOPE,
        int(Category.FINANCIAL).to_bytes(32, "big"),
        PAYMENT,
        MAX_UINT40,
        ENVELOPE,
    )
    token.execute(consent_manager, grant, sender=insurer)
    return token


@pytest.fixture(scope="module")
def policy_id(
    manager: Any, reentrant_token: Any, insurer: AccountAPI, token_patient: Any, chain: Any
) -> int:
    """A policy insuring the token account for 30 days (full coverage, no deductible,
    automatic settlement up to 500), funded with 1,000 units."""
    start = int(chain.blocks.head.timestamp) - DAY
    terms = (
        reentrant_token.address,
        start,
        start + TERM,
        10_000,
        0,
        5_000 * USD,
        500 * USD,
        COVERED.root,
        TERMS_DIGEST,
    )
    manager.issuePolicy(terms, sender=insurer)
    reentrant_token.mint(insurer, 1_000 * USD, sender=insurer)
    reentrant_token.approve(manager, 1_000 * USD, sender=insurer)
    manager.fundPolicy(1, 1_000 * USD, sender=insurer)
    return 1


@pytest.fixture(scope="module", autouse=True)
def reentrancy_world(policy_id: int) -> None:
    """Sets up every module fixture before any test (see the contract conftest on isolation)."""


@pytest.fixture(scope="module")
def claim_record(
    record_registry: Any, clinic: AccountAPI, token_patient: Any
) -> Callable[[], HexBytes]:
    """``claim_record()``: the clinic anchors a new FINANCIAL record of the token patient."""
    counter = itertools.count()

    def anchor() -> HexBytes:
        n = next(counter)
        tx = record_registry.anchor(
            token_patient,
            digest(f"token-claim-{n}"),
            digest(f"token-salt-{n}"),
            Category.FINANCIAL,
            NO_RECORD,
            sender=clinic,
        )
        return HexBytes(record_registry.RecordAnchored.from_receipt(tx)[0].id)

    return anchor


def submission(policy_id: int, record: bytes, billed: int, *, pay_patient: bool) -> tuple:
    """A small proven claim (settled at once when the clinic submits it)."""
    return (
        policy_id,
        billed,
        pay_patient,
        record,
        [],
        [COVERED.hashes["99213"]],
        [COVERED.proof("99213")],
        digest(f"service-{next(_SERVICES)}"),
        bytes(32),
    )


@pytest.fixture
def credited(
    manager: Any,
    reentrant_token: Any,
    insurer: AccountAPI,
    stranger: AccountAPI,
    policy_id: int,
    claim_record: Callable[[], HexBytes],
) -> Callable[[int], int]:
    """``credited(amount)``: the token patient submits a claim itself (always reviewed) and the
    insurer approves ``amount`` of it, credited to the token; returns the claim id."""

    def credit(amount: int) -> int:
        record = claim_record()
        claim = submission(policy_id, record, amount, pay_patient=True)
        reentrant_token.execute(manager, manager.submitClaim.encode_input(claim), sender=stranger)
        claim_id = patient_claim_id(record)  # the patient's claim has its own id
        assert manager.getClaim(claim_id).state == ClaimState.SUBMITTED
        manager.approveClaim(claim_id, amount, sender=insurer)
        return claim_id

    return credit


# ============================================================================ submitClaim


@pytest.mark.parametrize("pay_patient", [True, False], ids=["pays-patient", "pays-clinic"])
def test_automatic_settlement_pays_at_once_by_a_transfer(
    manager: Any,
    reentrant_token: Any,
    clinic: AccountAPI,
    policy_id: int,
    claim_record: Callable[[], HexBytes],
    pay_patient: bool,
) -> None:
    token = reentrant_token
    payee = token if pay_patient else clinic
    record = claim_record()

    tx = manager.submitClaim(
        submission(policy_id, record, 300 * USD, pay_patient=pay_patient), sender=clinic
    )

    (transfer,) = token.Transfer.from_receipt(tx)
    assert (transfer["from"], transfer.to, transfer.value) == (
        manager.address,
        payee.address,
        300 * USD,
    )
    assert token.balanceOf(payee) == 300 * USD
    assert manager.creditOf(payee) == 0
    assert token.balanceOf(manager) == 700 * USD


@pytest.mark.parametrize("reentry", ["withdrawPayment", "submitClaim", "fundPolicy", "reclaimPool"])
def test_reentry_during_an_automatic_settlements_transfer_reverts_the_submission(
    project: Any,
    manager: Any,
    reentrant_token: Any,
    clinic: AccountAPI,
    stranger: AccountAPI,
    policy_id: int,
    claim_record: Callable[[], HexBytes],
    credited: Callable[[int], int],
    reentry: str,
) -> None:
    """The payee (the token patient, owed 100 already) re-enters while being paid: to
    withdraw its credit on top, to submit another claim of its own, to fund, to reclaim."""
    token = reentrant_token
    credited(100 * USD)
    other = claim_record()
    calldata = {
        "withdrawPayment": lambda: manager.withdrawPayment.encode_input(),
        "submitClaim": lambda: manager.submitClaim.encode_input(
            submission(policy_id, other, 200 * USD, pay_patient=True)
        ),
        "fundPolicy": lambda: manager.fundPolicy.encode_input(policy_id, 1),
        "reclaimPool": lambda: manager.reclaimPool.encode_input(policy_id),
    }[reentry]()
    token.arm(manager, calldata, sender=stranger)
    record = claim_record()
    claim = submission(policy_id, record, 300 * USD, pay_patient=True)

    with reverts(manager.ReentrancyGuardReentrantCall):
        manager.submitClaim(claim, sender=clinic)

    claim_id = int.from_bytes(bytes(record), "big")
    with reverts(manager.ClaimUnknownClaim, claimId=claim_id):
        manager.getClaim(claim_id)
    assert manager.getPolicy(policy_id).paid == 100 * USD
    assert manager.creditOf(token) == 100 * USD
    assert token.balanceOf(token) == 0
    assert token.balanceOf(manager) == 1_000 * USD
    assert token.reentered() == 0
    assert token.target() == manager.address, "the reverted transfer disarmed nothing"
    token.arm(ZERO_ADDRESS, b"", sender=stranger)
    manager.submitClaim(claim, sender=clinic)  # the honest submission, paid once
    assert token.balanceOf(token) == 300 * USD
    assert manager.getPolicy(policy_id).paid == 400 * USD


# ============================================================================ withdrawPayment


def test_reentrant_withdrawal_by_a_payee_owed_money_reverts_and_moves_nothing(
    project: Any,
    manager: Any,
    reentrant_token: Any,
    stranger: AccountAPI,
    credited: Callable[[int], int],
) -> None:
    token = reentrant_token
    credited(300 * USD)
    credited(200 * USD)
    assert manager.creditOf(token) == 500 * USD
    withdraw = manager.withdrawPayment.encode_input()
    token.arm(manager, withdraw, sender=stranger)

    with reverts(project.ClaimsManager.ReentrancyGuardReentrantCall):
        token.execute(manager, withdraw, sender=stranger)

    assert manager.creditOf(token) == 500 * USD
    assert token.balanceOf(manager) == 1_000 * USD
    assert token.balanceOf(token) == 0
    assert token.reentered() == 0
    assert token.target() == manager.address, "the reverted transfer disarmed nothing"


def test_withdrawal_after_a_failed_reentry_pays_exactly_once(
    project: Any,
    manager: Any,
    reentrant_token: Any,
    stranger: AccountAPI,
    credited: Callable[[int], int],
) -> None:
    token = reentrant_token
    credited(300 * USD)
    withdraw = manager.withdrawPayment.encode_input()
    token.arm(manager, withdraw, sender=stranger)
    with reverts(project.ClaimsManager.ReentrancyGuardReentrantCall):
        token.execute(manager, withdraw, sender=stranger)
    token.arm(ZERO_ADDRESS, b"", sender=stranger)

    tx = token.execute(manager, withdraw, sender=stranger)

    assert_events(
        tx,
        manager.PaymentWithdrawn(payee=token, amount=300 * USD, holder=token),
        token.Transfer(**{"from": manager, "to": token, "value": 300 * USD}),
    )
    assert token.balanceOf(token) == 300 * USD
    assert token.balanceOf(manager) == 700 * USD
    assert manager.creditOf(token) == 0
    with reverts(project.ClaimsManager.ClaimNothingToWithdraw, account=token):
        token.execute(manager, withdraw, sender=stranger)


@pytest.mark.parametrize("reentry", ["fundPolicy", "submitClaim"])
def test_reentry_into_funding_or_submission_during_a_withdrawal_reverts(
    project: Any,
    manager: Any,
    reentrant_token: Any,
    stranger: AccountAPI,
    policy_id: int,
    claim_record: Callable[[], HexBytes],
    credited: Callable[[int], int],
    reentry: str,
) -> None:
    token = reentrant_token
    credited(300 * USD)
    calldata = (
        manager.fundPolicy.encode_input(policy_id, 1)
        if reentry == "fundPolicy"
        else manager.submitClaim.encode_input(
            submission(policy_id, claim_record(), 100 * USD, pay_patient=True)
        )
    )
    token.arm(manager, calldata, sender=stranger)

    with reverts(project.ClaimsManager.ReentrancyGuardReentrantCall):
        token.execute(manager, manager.withdrawPayment.encode_input(), sender=stranger)

    assert manager.creditOf(token) == 300 * USD
    assert manager.getPolicy(policy_id).funded == 1_000 * USD
    assert manager.openClaimsOf(policy_id) == 0


# ============================================================================ fundPolicy


def test_reentrant_funding_cannot_count_one_transfer_twice(
    manager: Any,
    reentrant_token: Any,
    insurer: AccountAPI,
    stranger: AccountAPI,
    policy_id: int,
) -> None:
    """Without the guard, a nested ``fundPolicy`` inside the outer one's ``transferFrom`` would
    make the outer call see the inner call's tokens arrive too, and credit them twice."""
    token = reentrant_token
    token.mint(token, 100 * USD, sender=stranger)
    token.execute(token, token.approve.encode_input(manager, 100 * USD), sender=stranger)
    token.mint(insurer, 100 * USD, sender=insurer)
    token.approve(manager, 100 * USD, sender=insurer)
    token.arm(manager, manager.fundPolicy.encode_input(policy_id, 100 * USD), sender=stranger)

    with reverts(manager.ReentrancyGuardReentrantCall):
        manager.fundPolicy(policy_id, 100 * USD, sender=insurer)

    assert manager.getPolicy(policy_id).funded == 1_000 * USD
    assert token.balanceOf(manager) == 1_000 * USD
    assert token.balanceOf(insurer) == 100 * USD


# ============================================================================ reclaimPool


@pytest.mark.parametrize("reentry", ["withdrawPayment", "reclaimPool"])
def test_reentry_during_the_return_of_a_pool_reverts_it(
    project: Any,
    manager: Any,
    reentrant_token: Any,
    insurer: AccountAPI,
    stranger: AccountAPI,
    policy_id: int,
    credited: Callable[[int], int],
    advance_time: Callable[[int], int],
    reentry: str,
) -> None:
    """The token patient, owed 300, re-enters while the insurer takes back the 700 left: to
    withdraw on top, or to have the pool returned twice."""
    token = reentrant_token
    credited(300 * USD)
    advance_time(TERM + 8 * DAY)  # the term and the last decision's dispute window are over
    calldata = (
        manager.withdrawPayment.encode_input()
        if reentry == "withdrawPayment"
        else manager.reclaimPool.encode_input(policy_id)
    )
    token.arm(manager, calldata, sender=stranger)

    with reverts(manager.ReentrancyGuardReentrantCall):
        manager.reclaimPool(policy_id, sender=insurer)

    policy = manager.getPolicy(policy_id)
    assert (policy.funded, policy.paid) == (1_000 * USD, 300 * USD)
    assert manager.creditOf(token) == 300 * USD
    assert token.balanceOf(manager) == 1_000 * USD
    token.arm(ZERO_ADDRESS, b"", sender=stranger)
    tx = manager.reclaimPool(policy_id, sender=insurer)
    assert_events(
        tx,
        manager.PoolReclaimed(policyId=policy_id, insurer=insurer, amount=700 * USD),
        token.Transfer(**{"from": manager, "to": insurer, "value": 700 * USD}),
    )
    assert token.balanceOf(manager) == manager.creditOf(token) == 300 * USD


# ============================================================================ the mock itself


def test_a_transfer_that_does_not_re_enter_goes_through(
    manager: Any,
    reentrant_token: Any,
    clinic: AccountAPI,
    stranger: AccountAPI,
    policy_id: int,
    claim_record: Callable[[], HexBytes],
) -> None:
    """The mock's call back itself works: armed with a harmless view, the transfer of an
    automatic settlement succeeds and counts the call (so the reverts above come from the
    guard, not from the mock)."""
    token = reentrant_token
    token.arm(manager, manager.policyCount.encode_input(), sender=stranger)

    manager.submitClaim(
        submission(policy_id, claim_record(), 300 * USD, pay_patient=True), sender=clinic
    )

    assert token.reentered() == 1
    assert token.balanceOf(token) == 300 * USD
